import os

# Tests run on two cores next to each other: keep each process's math libraries to one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")


import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def onboard_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtual environment with only `liquid-navigator[onboard]` installed, as on a companion
    computer: no torch, pybullet or gymnasium. Built once per test session (about 30 s, from pip's wheel cache)."""
    venv = tmp_path_factory.mktemp("onboard-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The test run's own pip installs into the new environment: no pip bootstrap in it.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "-c",
                    str(REPO / "constraints.txt"), "-e", f"{REPO}[onboard]"], check=True, capture_output=True)
    return python
