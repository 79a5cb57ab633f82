"""What an environment holds and leaves behind: memory over many resets, files, PyBullet clients, the GUI window."""

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pybullet as p
import pytest

import sim_envs
from sim_envs.errors import ClosedEnvironmentError

ROOT = Path(__file__).resolve().parents[1]

# Resident memory over resets, one family of scenery per line: trees (trunks and crowns), bare trees, pillars,
# decoys, several targets. Before the fix a reset leaked ~1 MiB with trees and ~120 KiB with pillars (the ground
# texture); 30 resets then grow by 3.5 MiB at least, well above the allocator's noise (~0.3 MiB).
MEMORY_PROBE = textwrap.dedent("""
    import os, sys
    import sim_envs

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    for task, preset in [("fly-to-target", "summer"), ("hike", "winter"), ("follow", "pillars+distractors")]:
        env = sim_envs.make_env(task, preset=preset, camera={"width": 16, "height": 12})
        for seed in range(10):  # warm-up: allocator pools, caches of parsed meshes
            env.reset(seed=seed)
        before = rss_mib()
        for seed in range(1000, 1030):  # seeds never seen, so nothing can come from a cache
            env.reset(seed=seed)
        print(task, preset, round(rss_mib() - before, 2))
        env.close()
""")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from Linux's /proc")
def test_resident_memory_stays_flat_over_many_resets():
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    growth = {" ".join(line.split()[:2]): float(line.split()[2]) for line in result.stdout.splitlines()}
    assert len(growth) == 3, result.stdout
    assert all(mib < 1.5 for mib in growth.values()), f"resident memory grew over 30 resets (MiB): {growth}"


def test_resets_and_close_leave_no_files_in_the_temp_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = sim_envs.make_env("fly-to-target")
    for seed in range(3):
        env.reset(seed=seed)
        assert list(tmp_path.iterdir()) == []
    env.close()
    assert list(tmp_path.iterdir()) == []


def world_clients(env) -> list[int]:
    world = env.unwrapped.world
    return [client for client in (world.physics, world.render_client, world.chase_client) if client is not None]


def test_closing_twice_does_not_disconnect_a_newer_environment():
    first = sim_envs.make_env("fly-to-target")
    first.reset(seed=0)
    first.close()
    second = sim_envs.make_env("fly-to-target")  # PyBullet hands it the ids the first one just released
    first.close()
    first.unwrapped.close()
    assert all(p.isConnected(client) for client in world_clients(second))
    second.reset(seed=1)
    second.step(np.zeros(4, np.float32))
    for use in (lambda: first.reset(seed=2), lambda: first.step(np.zeros(4, np.float32)), first.render):
        with pytest.raises(ClosedEnvironmentError, match="closed"):  # its old ids are the second one's now
            use()
    second.step(np.zeros(4, np.float32))
    second.close()
    assert not any(p.isConnected(client) for client in world_clients(second))


@pytest.mark.parametrize("filmed", [False, True], ids=["unfilmed", "filmed"])
def test_an_environment_dropped_without_close_releases_its_clients(filmed):
    env = sim_envs.make_env("fly-to-target")
    env.reset(seed=0)
    if filmed:  # the chase view connects a client of its own
        env.unwrapped.side_by_side_frame()
    clients = world_clients(env)
    assert len(clients) == 2 + filmed
    del env
    gc.collect()
    assert not any(p.isConnected(client) for client in clients)


# In a subprocess: before the fix PyBullet ended the process (or hung) instead of raising.
GUI_PROBE = textwrap.dedent("""
    import gymnasium, pybullet as p, sim_envs
    from sim_envs.errors import NoDisplayError
    next_id = p.connect(p.DIRECT)  # PyBullet gives out the lowest free id: the one the environment would get
    p.disconnect(next_id)
    try:
        gymnasium.make("navigator/FlyToTarget-v0", render_mode="human")
    except NoDisplayError as error:
        print("raised:", error)
    print("a client was left connected:", bool(p.isConnected(next_id)))
""")


def free_display_number() -> int:
    """A display number with no X server behind it on this machine."""
    return next(n for n in range(99, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="X11 displays only")
@pytest.mark.parametrize("display", [None, "dead"])
def test_human_render_mode_without_a_display_is_a_clear_error(display):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    if display == "dead":
        env["DISPLAY"] = f":{free_display_number()}"
    result = subprocess.run([sys.executable, "-c", GUI_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "raised:" in result.stdout and "xvfb-run" in result.stdout
    assert ("not set" if display is None else "does not answer") in result.stdout
    assert "a client was left connected: False" in result.stdout


GUI_RUN = textwrap.dedent("""
    import numpy as np, pybullet as p, sim_envs
    headless = sim_envs.make_env("hike", render_mode=None)
    gui = sim_envs.make_env("hike", render_mode="human")
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 4)).astype(np.float32)
    a, _ = headless.reset(seed=5)
    b, _ = gui.reset(seed=5)
    same = np.array_equal(a["image"], b["image"])
    world = gui.unwrapped.world
    for action in actions:
        a, *_ = headless.step(action)
        b, *_ = gui.step(action)
        same = same and np.array_equal(a["image"], b["image"])
        drone, _ = p.getBasePositionAndOrientation(world._gui_drone, physicsClientId=world.gui_client)
        assert np.allclose(drone, gui.unwrapped.vehicle_state.position), "the GUI's drone is not at the vehicle"
    print("onboard images identical:", same)
    gui.close(); headless.close()
""")


# CI installs Xvfb (.ci/run), so there the test always runs; elsewhere it needs `apt-get install xvfb`.
@pytest.mark.skipif(shutil.which("xvfb-run") is None and not os.environ.get("CI"),
                    reason="needs xvfb-run (apt-get install xvfb)")
def test_gui_shows_the_vehicle_and_leaves_onboard_images_unchanged():
    result = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", GUI_RUN], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "onboard images identical: True" in result.stdout
