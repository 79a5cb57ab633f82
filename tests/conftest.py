import os

# Tests run on two cores next to each other: keep each process's math libraries to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")


import hashlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt in this process for the test's duration, as in a terminal, even where the test
    runner was started with SIGINT ignored (a `&` job of a script ignores it, and Python then installs no handler):
    for tests that send this process a Ctrl-C (tests/signals_support.py does the same for subprocesses)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _onboard_venv_key() -> str:
    """What the onboard-only venv is built from: the project's declared dependencies and pins, this Python, and the
    checkout it installs (editable, so code changes need no rebuild; a dependency change makes a new key)."""
    digest = hashlib.sha256()
    for part in ((REPO / "pyproject.toml").read_bytes(), (REPO / "constraints.txt").read_bytes(),
                 sys.version.encode(), sys.executable.encode(), str(REPO).encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def onboard_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The Python of a fresh virtual environment with only `liquid-navigator[onboard]` installed, as on a companion
    computer: no torch, pybullet or gymnasium. Built once (about 50 s, from pip's wheel cache) into pytest's cache
    folder, so the suite's two passes and later runs share it while the dependencies stay the same; one venv is kept
    there, the one for the current key. Test processes (pytest-xdist's `-n`) take turns through a file lock."""
    from filelock import FileLock

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider: a per-run folder then
    if cache is not None:
        root = Path(cache.mkdir("onboard-venv"))
    else:
        root = tmp_path_factory.getbasetemp()
        if worker_id != "master":  # one of several test processes: their temporary folders share a parent
            root = root.parent
    venv = root / _onboard_venv_key()
    python = venv / "bin" / "python"
    with FileLock(str(root / "build.lock")):
        if not (venv / ".complete").is_file():
            for stale in root.iterdir():  # bounded: venvs of older keys go
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            # The test run's own pip installs into the new environment: no pip bootstrap in it.
            subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "-c",
                            str(REPO / "constraints.txt"), "-e", f"{REPO}[onboard]"], check=True,
                           capture_output=True)
            (venv / ".complete").touch()
    return python
