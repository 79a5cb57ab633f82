"""FLU <-> body NED conversion and the policy state vector from MAVLink telemetry, with known vectors."""

import math

import numpy as np
import pytest

from navigator.onboard.frames import Attitude, LocalPosition, flu_ned, state_vector


@pytest.mark.parametrize(("flu", "ned"), [
    ((1.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)),   # forward stays forward
    ((0.0, 1.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0)),  # left is negative right
    ((0.0, 0.0, 1.0, 0.0), (0.0, 0.0, -1.0, 0.0)),  # up is negative down
    ((0.0, 0.0, 0.0, 0.5), (0.0, 0.0, 0.0, -0.5)),  # counter-clockwise is negative clockwise
    ((1.5, -0.25, -0.5, -1.0), (1.5, 0.25, 0.5, 1.0)),
])
def test_flu_ned_known_vectors_both_ways(flu, ned) -> None:
    np.testing.assert_array_equal(flu_ned(flu), ned)
    np.testing.assert_array_equal(flu_ned(ned), flu)  # the same function converts back


def test_flu_ned_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match="4-vector"):
        flu_ned(np.zeros(3))


def test_state_vector_heading_frame_and_signs() -> None:
    # Nose pointing east (yaw +90 deg clockwise from north), flying east at 2 m/s, drifting south at 1 m/s, climbing
    # at 0.5 m/s (vz -0.5 NED), 3 m above the origin.
    attitude = Attitude(roll=0.1, pitch=0.2, yaw=math.pi / 2, yawspeed=0.3)
    position = LocalPosition(x=5.0, y=7.0, z=-3.0, vx=-1.0, vy=2.0, vz=-0.5)
    state = state_vector(attitude, position)
    assert state.dtype == np.float32 and state.shape == (7,)
    # forward = east 2; left of an east-facing nose is north: south drift 1 is -1 left; up 0.5.
    np.testing.assert_allclose(state, [2.0, -1.0, 0.5, 0.1, -0.2, -0.3, 3.0], atol=1e-6)


def test_state_vector_yaw_zero_is_north_forward() -> None:
    state = state_vector(Attitude(0.0, 0.0, 0.0, 0.0), LocalPosition(0.0, 0.0, -1.0, 1.0, 1.0, 0.0))
    # Facing north: north velocity is forward, east velocity is to the right (negative left).
    np.testing.assert_allclose(state[:3], [1.0, -1.0, 0.0], atol=1e-6)


def test_state_vector_agrees_with_the_simulators_heading_frame() -> None:
    # The simulator (z up, yaw counter-clockwise from +x) computes velocity_heading = R(-yaw) v. A MAVLink vehicle
    # reporting the same motion in NED (north = +x, east = -y, down = -z, yaw clockwise) must give the same vector.
    rng = np.random.default_rng(0)
    for _ in range(20):
        yaw = rng.uniform(-math.pi, math.pi)
        vx, vy, vz = rng.normal(size=3)
        expected = [math.cos(yaw) * vx + math.sin(yaw) * vy, -math.sin(yaw) * vx + math.cos(yaw) * vy, vz]
        state = state_vector(Attitude(0.0, 0.0, -yaw, 0.0), LocalPosition(0.0, 0.0, -1.0, vx, -vy, -vz))
        np.testing.assert_allclose(state[:3], expected, atol=1e-5)
