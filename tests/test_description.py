"""`NavigationEnv.description()`: the environment's contract as plain data, the same as the world it describes."""

import json
import math

import pytest

from sim_envs import make_env
from sim_envs.camera import CameraConfig
from sim_envs.description import EnvDescription


@pytest.fixture(scope="module")
def hike_cf2x():
    env = make_env("hike", preset="Winter + Wind", airframe="cf2x",
                   camera=CameraConfig(width=96, height=72, fov_deg=90.0, tilt_deg=10.0, rate_hz=20), max_seconds=12)
    yield env
    env.close()


def test_description_says_what_the_world_is(hike_cf2x):
    description = hike_cf2x.unwrapped.description()
    task = hike_cf2x.unwrapped
    assert (description.task, description.preset, description.airframe) == ("hike", "winter+wind", "cf2x")
    assert (description.camera.width, description.camera.height, description.camera.fov_deg,
            description.camera.tilt_deg, description.camera.rate_hz) == (96, 72, 90.0, 10.0, 20)
    assert description.dt == pytest.approx(1 / 20) == task.dt
    assert description.physics_hz == 240 and description.max_seconds == 12.0
    assert description.action_limits == task.airframe.limits
    assert description.state_fields == ("vx", "vy", "vz", "roll", "pitch", "yaw_rate", "height")
    assert len(description.state_fields) == hike_cf2x.observation_space["state"].shape[0]
    # The observation the env gives is the camera the description names.
    assert hike_cf2x.observation_space["image"].shape == (72, 96, 3)


def test_default_description_and_action_scale():
    env = make_env("fly-to-target")
    try:
        description = env.unwrapped.description()
    finally:
        env.close()
    assert (description.task, description.preset, description.airframe) == ("fly-to-target", "summer", "x500")
    assert description.max_seconds == 30.0
    limits = description.action_limits
    assert limits.yaw_rate == pytest.approx(math.pi / 2) and limits.vx > 0 and limits.vz > 0


def test_json_round_trip_is_exact(hike_cf2x):
    description = hike_cf2x.unwrapped.description()
    text = json.dumps(description.to_dict())
    assert EnvDescription.from_dict(json.loads(text)) == description
    assert json.loads(text)["camera"] == {"width": 96, "height": 72, "fov_deg": 90.0, "tilt_deg": 10.0,
                                          "rate_hz": 20}


def test_from_dict_refuses_missing_and_unknown_keys(hike_cf2x):
    data = hike_cf2x.unwrapped.description().to_dict()
    with pytest.raises(ValueError, match=r"missing \['dt'\]"):
        EnvDescription.from_dict({k: v for k, v in data.items() if k != "dt"})
    with pytest.raises(ValueError, match=r"unknown \['gravity'\]"):
        EnvDescription.from_dict({**data, "gravity": 9.81})


def test_description_is_immutable(hike_cf2x):
    description = hike_cf2x.unwrapped.description()
    with pytest.raises(AttributeError):
        description.dt = 0.1
