import os

# Tests run on two cores next to each other: keep each process's math libraries to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")


import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def onboard_python(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The Python of a fresh virtual environment with only `liquid-navigator[onboard]` installed, as on a companion
    computer: no torch, pybullet or gymnasium. Built once per test run (about 30 s, from pip's wheel cache), shared
    by the run's test processes (pytest-xdist's `-n`) through a file lock in the folder their temporary folders
    share."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # one of several test processes: their temporary folders share a parent
        root = root.parent
    venv = root / "onboard-venv"
    python = venv / "bin" / "python"
    with FileLock(str(root / "onboard-venv.lock")):
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            # The test run's own pip installs into the new environment: no pip bootstrap in it.
            subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "-c",
                            str(REPO / "constraints.txt"), "-e", f"{REPO}[onboard]"], check=True,
                           capture_output=True)
            (venv / ".complete").touch()
    return python
