"""The one-way dependencies of shared/DESIGN.md, as tests, so that the design cannot drift silently.

- `sim_envs` and `policies` never import `navigator` or each other (checked statically, every import statement of
  every module, including imports inside functions).
- The light parts import no torch, pybullet or gymnasium when loaded (checked in a fresh interpreter): the CLI's
  parser (so `navigator --help` is fast), the dataset package (read by tools without the simulator) and the image
  preprocessing that the onboard runtime will share.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pybullet", "gymnasium")

FORBIDDEN = {
    "sim_envs": ("navigator", "policies"),
    "policies": ("navigator", "sim_envs"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    violations = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                  for path in sorted((ROOT / package).rglob("*.py"))
                  for line, name in imported_modules(path) if name in FORBIDDEN[package]]
    assert not violations, "\n".join(violations)


def test_the_import_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from navigator.errors import UserError\n    import policies.registry\n")
    assert [name for _, name in imported_modules(module)] == ["navigator", "policies"]


def loaded_heavy_modules(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "from navigator.cli import build_parser; build_parser().format_help()",
    "import navigator.dataset, navigator.dataset.reader, navigator.dataset.check, navigator.dataset.summary",
    "import policies, policies.preprocessing",
    "import navigator.config, navigator.errors, navigator.json_fields, navigator.output_folders, navigator.figures",
])
def test_light_parts_load_no_torch_pybullet_or_gymnasium(code: str) -> None:
    assert loaded_heavy_modules(code) == []


@pytest.mark.parametrize("command", ["fly", "collect", "train", "data"])
def test_command_help_loads_no_torch(command: str) -> None:
    """`navigator COMMAND --help` shows each option's default from the config dataclasses: reading them must not
    cost a torch import (seconds)."""
    code = (f"from navigator.cli import build_parser\nimport contextlib, io\n"
            f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            f"    build_parser().parse_args([{command!r}, '--help'])")
    assert "torch" not in loaded_heavy_modules(code)


def test_the_import_probe_sees_a_heavy_import() -> None:
    assert loaded_heavy_modules("import policies.policy") == ["torch"]
