"""A companion computer installs only `liquid-navigator[onboard]`: the runtime imports and runs there, with no torch,
pybullet or gymnasium installed, and the commands that need the simulator say which extra to install."""

import subprocess
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "policies" / "pretrained" / "bundles" / "fly-to-target"

# Imports every module of navigator.onboard, runs the shipped bundle on camera frames larger than the policy's (the
# crop and resize of the shared preprocessing), then lists which heavy packages ended up imported.
PROBE = """
import importlib, pkgutil, sys
import numpy as np
import navigator.onboard
from navigator.onboard.bundle import BundlePolicy, load_bundle
from policies.preprocessing import crop_and_resize
for module in pkgutil.walk_packages(navigator.onboard.__path__, "navigator.onboard."):
    importlib.import_module(module.name)
bundle = load_bundle(sys.argv[1])
spec = bundle.image_spec_for(320, 240, 100.0)
policy = BundlePolicy(bundle)
rng = np.random.default_rng(0)
for _ in range(5):
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    action = policy.step(crop_and_resize(frame, spec), np.zeros(7, np.float32), bundle.dt)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)
print(",".join(sorted(m for m in ("torch", "pybullet", "gymnasium", "sim_envs", "matplotlib", "ncps")
                      if m in sys.modules)) or "none")
"""


def test_onboard_install_has_no_training_or_simulation_packages(onboard_python: Path) -> None:
    missing = subprocess.run(
        [str(onboard_python), "-c", "import importlib.util as u; print([m for m in ('torch', 'pybullet', "
         "'gymnasium', 'ncps') if u.find_spec(m) is not None])"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert missing == "[]"


def test_onboard_runtime_runs_a_bundle_without_torch(onboard_python: Path) -> None:
    result = subprocess.run([str(onboard_python), "-c", PROBE, str(BUNDLE)], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


def test_onboard_install_runs_the_cli(onboard_python: Path) -> None:
    navigator = onboard_python.parent / "navigator"
    help_text = subprocess.run([str(navigator), "onboard", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0, help_text.stderr
    assert "--mavlink" in help_text.stdout


def test_simulator_commands_name_the_missing_extra(onboard_python: Path) -> None:
    navigator = onboard_python.parent / "navigator"
    for argv, extra in ((["fly", "--episodes", "1"], "sim"), (["sitl", "--episodes", "1"], "sim"),
                        (["train", "--help"], "sim")):  # help shows the recipe's defaults, which need the simulator
        result = subprocess.run([str(navigator), *argv], capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"liquid-navigator[{extra}]" in result.stderr
