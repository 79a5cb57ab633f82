"""Videos that browsers play (H.264, yuv420p, moov first), written atomically, never over a file the user keeps; and
the chase view they show, whose ground is drawn from a photograph instead of by TinyRenderer."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pybullet as p
import pytest

import sim_envs
from navigator.dataset.preview import write_video
from navigator.dataset.synthetic import synthetic_episode
from navigator.errors import UserError
from navigator.video import VideoWriter
from sim_envs.bodies import sphere_body
from sim_envs.camera import Renderer
from sim_envs.world import HIDDEN


def probe(path: Path) -> tuple[str, str, int, int, int]:
    """(codec, pixel format, width, height, decoded frames) as a player sees them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, stream.codec_context.pix_fmt, stream.width, stream.height, frames


def frames(count: int, height: int = 61, width: int = 83) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_h264_yuv420p_even_size_moov_first_and_no_temporary_left(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 30) as video:
        for frame in frames(12):
            video.write(frame, "caption")
    assert probe(path) == ("h264", "yuv420p", 84, 62, 12)  # odd sizes padded: yuv420p halves both
    head = path.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < max(head.find(b"mdat"), len(head))  # faststart: plays while downloading
    assert list(tmp_path.iterdir()) == [path]


def test_existing_file_is_kept_unless_overwrite_is_asked_for(tmp_path):
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"the user's video")
    with pytest.raises(UserError, match="already exists; choose another name or pass --overwrite"):
        VideoWriter(path, 30)
    assert path.read_bytes() == b"the user's video"
    with VideoWriter(path, 30, overwrite=True) as video:
        video.write(frames(1)[0])
    assert probe(path)[0] == "h264"


def test_interrupted_run_leaves_nothing_and_keeps_its_error(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(folder / "flight.mp4", 30) as video:
            for frame in frames(5):
                video.write(frame)
            raise KeyboardInterrupt
    assert list(folder.iterdir()) == []
    # A clean-up that cannot succeed (its folder is gone) must not replace the error on its way.
    with pytest.raises(RuntimeError, match="the original error"):
        with VideoWriter(folder / "flight.mp4", 30) as video:
            video.write(frames(1)[0])
            shutil.rmtree(folder)
            raise RuntimeError("the original error")


def test_encoder_error_reaches_the_caller_and_removes_the_temporary(tmp_path):
    video = VideoWriter(tmp_path / "bad.mp4", 30)
    video.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="frame size"):
        video.write(np.zeros((10, 8, 3), np.uint8))
    video.write(np.zeros((8, 8, 4), np.uint8))  # RGBA: PyAV refuses it in the encoder thread
    with pytest.raises(ValueError):
        video.close()
    assert list(tmp_path.iterdir()) == []


def test_closing_again_returns_the_file_it_finished(tmp_path):
    """An explicit close() inside a `with` block, followed by the block's own close, raised FileNotFoundError (the
    temporary file had already been moved into place)."""
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 30) as video:
        video.write(np.zeros((48, 64, 3), np.uint8))
        assert video.close() == path
    assert video.close() == path and path.stat().st_size > 0 and list(tmp_path.iterdir()) == [path]
    with VideoWriter(tmp_path / "none.mp4", 30) as empty:
        assert empty.close() is None
    assert empty.close() is None and list(tmp_path.iterdir()) == [path]


@pytest.fixture
def unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot create files in: a read-only one, or sysfs for root (who may write anywhere
    else)."""
    if os.geteuid() != 0:
        tmp_path.chmod(0o500)
        yield tmp_path
        tmp_path.chmod(0o700)
        return
    try:
        Path("/sys/.navigator-probe").touch()
    except OSError:
        yield Path("/sys")
    else:
        Path("/sys/.navigator-probe").unlink()
        pytest.skip("root can write to /sys here")


def test_an_unwritable_folder_is_reported_before_any_frame(unwritable_folder):
    with pytest.raises(UserError, match=f"cannot write the video into folder {unwritable_folder} .*choose a folder"):
        VideoWriter(unwritable_folder / "flight.mp4", 30)
    assert not (unwritable_folder / "flight.mp4").exists()


def test_preview_video_is_h264(tmp_path):
    episodes = [synthetic_episode(seed, frames=5) for seed in range(2)]
    assert write_video(episodes, tmp_path / "preview.mp4", scale=3) == 10
    assert probe(tmp_path / "preview.mp4")[:2] == ("h264", "yuv420p")


# --- the chase view ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flying_env():
    env = sim_envs.make_env("fly-to-target", preset="summer", airframe="x500", max_seconds=30)
    env.reset(seed=3)
    for _ in range(45):
        env.step(np.array([0.6, 0.0, 0.0, 0.2], np.float32))
    yield env.unwrapped
    env.close()


def chase_pose(task) -> tuple[tuple[float, float, float], tuple[float, float, float], float]:
    """(eye, vehicle position, camera distance) as World.chase_image places its camera."""
    state, distance = task.vehicle_state, max(1.5, 12 * task.world.airframe.arm_length)
    x, y, z = state.position
    eye = (x - distance * math.cos(state.yaw), y - distance * math.sin(state.yaw), z + 0.45 * distance)
    return eye, (x, y, z), distance


def test_chase_view_matches_tinyrenderer_drawing_everything(flying_env):
    task = flying_env
    image = task.world.chase_image(task.vehicle_state, 320, 240)
    assert task.world._chase.warps_ground  # the fast path: a scenery change that loses it must say so
    eye, vehicle, distance = chase_pose(task)
    reference = Renderer(task.world.chase_client, 320, 240, 70.0, 0.7 * distance, task.camera.far)
    reference.set_environment(task.scenery.sky_top, task.scenery.sky_horizon, task.layout.lighting)
    task.world.show_vehicle(task.vehicle_state)
    expected = reference.render(eye, tuple(np.subtract(vehicle, eye)), (0.0, 0.0, 1.0))
    difference = np.abs(image.astype(int) - expected).mean(axis=2)
    assert difference.mean() < 7 and np.mean(difference > 60) < 0.03


def test_chase_view_shows_the_vehicle_and_not_what_lies_under_the_ground(flying_env):
    task = flying_env
    image = task.world.chase_image(task.vehicle_state, 320, 240)
    eye, vehicle, _ = chase_pose(task)
    p.resetBasePositionAndOrientation(task.world._chase_drone, HIDDEN, (0, 0, 0, 1),
                                      physicsClientId=task.world.chase_client)
    without_vehicle = task.world._chase.render(eye, vehicle)
    changed = np.argwhere(np.abs(image.astype(int) - without_vehicle).max(axis=2) > 40)
    assert len(changed) > 30  # the vehicle is there, in the middle, where the camera looks
    assert np.all(np.abs(changed - (120, 160)) < (40, 60))
    ahead = np.add(vehicle, np.subtract(vehicle, eye))
    buried = sphere_body(task.world.chase_client, 1.0, (1.0, 0.0, 1.0), (ahead[0], ahead[1], -2.0))
    try:
        again = task.world.chase_image(task.vehicle_state, 320, 240)
    finally:
        p.removeBody(buried, physicsClientId=task.world.chase_client)
    assert np.array_equal(again, image)


def test_a_ctrl_c_while_the_video_is_stopped_still_waits_for_its_encoder(tmp_path, monkeypatch, ctrl_c_raises):
    """A Ctrl-C raised inside the join of the encoder thread (Python 3.11 then takes it for ended) left it encoding
    as Python ended: a daemon thread inside OpenCV or FFmpeg then aborts the process. The partial file is removed."""
    import os
    import signal
    import threading
    import time

    def slow_encode(self, frame, caption):
        time.sleep(1.5)  # long enough that the Ctrl-C lands during close() even on a loaded machine

    monkeypatch.setattr(VideoWriter, "_encode", slow_encode)
    path = tmp_path / "v.mp4"
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))  # arrives while the frames are encoded
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, 30) as video:
            for _ in range(2):
                video.write(np.zeros((48, 64, 3), np.uint8))
            timer.start()
            video.close()
    timer.join()
    assert not any(thread.name == "video-encoder" for thread in threading.enumerate())
    assert not path.exists() and list(tmp_path.iterdir()) == []
