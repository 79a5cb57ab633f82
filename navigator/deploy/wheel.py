"""The project's wheel, built here from the source checkout, and the key of the venv it installs into.

The wheel is pure Python (`py3-none-any`), so one built on a laptop installs on an aarch64 companion computer. It is
built from a copy of the files the wheel holds (pyproject.toml, the README and the packages pyproject.toml names),
never in the checkout itself: an in-tree setuptools build leaves build/ behind, and files deleted from the source
would live on there and in later wheels. `--no-build-isolation` uses this environment's setuptools (no index needed),
and SOURCE_DATE_EPOCH makes the archive reproducible.

`venv_key` names the virtual environment a deploy needs: the same wheel content (the sha256 of its RECORD, which
lists every file's sha256), the same dependency source (the index, or the names and sizes of the wheelhouse's
files), the same extras and the same target Python and machine give the same key, and the venv is reused.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

from navigator.deploy.ssh import Step
from navigator.errors import UserError

EXTRA = "onboard"
# Any fixed time: the wheel's bytes then depend only on its content (zip entries otherwise carry each file's mtime).
SOURCE_DATE_EPOCH = "1700000000"


def source_tree() -> Path:
    """The checkout navigator runs from (the folder holding pyproject.toml); UserError when navigator was installed
    from a wheel and there is no source to build one from."""
    tree = Path(__file__).resolve().parents[2]
    pyproject = tree / "pyproject.toml"
    if not pyproject.is_file() or tomllib.loads(pyproject.read_text())["project"]["name"] != "liquid-navigator":
        raise UserError("navigator deploy builds the wheel it installs from the project's source checkout, and this "
                        "navigator is not installed from one; run it from a checkout (pip install -e .)")
    if importlib.util.find_spec("setuptools") is None:
        raise UserError("building the wheel needs setuptools in this environment; pip install setuptools")
    return tree


def copy_sources(tree: Path, destination: Path) -> Path:
    """Copy what the wheel is built from (pyproject.toml, its readme, the packages it includes) to `destination`;
    returns `destination`."""
    pyproject = tomllib.loads((tree / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", pyproject["project"].get("readme", "README.md")):
        shutil.copy2(tree / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for package in sorted(tree.iterdir()):
        if (package / "__init__.py").is_file() and any(fnmatch.fnmatch(package.name, p) for p in patterns):
            shutil.copytree(package, destination / package.name, ignore=ignore)
    return destination


def build_step(source: Path, out: Path) -> Step:
    """The local step that builds the wheel of source copy `source` (see `copy_sources`) into folder `out`."""
    argv = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
            "-q", "-w", str(out), str(source))
    return Step("build the wheel", argv, env=(("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH),))


def built_wheel(out: Path) -> Path:
    """The one .whl `build_step` wrote into `out`."""
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def wheel_content_sha256(wheel: Path) -> str:
    """sha256 of the wheel's RECORD (every file's path and sha256), lines sorted: the same for the same content."""
    with zipfile.ZipFile(wheel) as archive:
        record = next(name for name in archive.namelist() if name.endswith(".dist-info/RECORD"))
        lines = sorted(archive.read(record).decode().splitlines())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def wheelhouse_files(wheelhouse: Path) -> list[Path]:
    """The distribution files of a wheelhouse folder (wheels and source archives); UserError when there are none."""
    if not wheelhouse.is_dir():
        found = "a file, not a folder" if wheelhouse.exists() else "no such folder"
        raise UserError(f"--wheelhouse {wheelhouse}: {found}; give a folder of wheels of the onboard dependencies for "
                        f"the drone's platform (the README's Deploying section gives the pip download command)")
    files = sorted(p for p in wheelhouse.iterdir() if p.is_file() and p.name.endswith((".whl", ".tar.gz", ".zip")))
    if not files:
        raise UserError(f"--wheelhouse {wheelhouse}: holds no .whl files")
    return files


def venv_key(wheel: Path, wheelhouse: list[Path] | None, python: str, machine: str) -> str:
    """16 hex digits naming the venv for this wheel content, dependency source (None: the target's package index),
    target Python version and machine."""
    identity = {"wheel": wheel_content_sha256(wheel), "extra": EXTRA, "python": python, "machine": machine,
                "dependencies": "index" if wheelhouse is None else [[p.name, p.stat().st_size] for p in wheelhouse]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
