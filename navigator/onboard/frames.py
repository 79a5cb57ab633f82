"""Frame conventions between the policy (FLU, heading frame) and MAVLink (NED, FRD body), in two tested functions.

* `flu_ned`: a 4-vector [x, y, z, yaw rate] between the policy's action frame (x forward, y left, z up, yaw rate
  counter-clockwise) and MAVLink's body NED setpoint frame (x forward, y right, z down, yaw rate clockwise). Both
  frames are rotated by the vehicle's yaw only (PX4 reads MAV_FRAME_BODY_NED and ArduPilot MAV_FRAME_BODY_OFFSET_NED
  velocities that way), so the conversion is a sign flip of y, z and the yaw rate, and it is its own inverse: the one
  function converts both ways.
* `state_vector`: the policy's 7-vector [vx, vy, vz (heading frame FLU, m/s), roll, pitch (rad), yaw rate (rad/s,
  counter-clockwise), height (m)] from ATTITUDE and LOCAL_POSITION_NED, as the simulator computes it
  (sim_envs.vehicle: positive roll lowers the right side, as MAVLink's; positive pitch lowers the nose, opposite to
  MAVLink's; yaw rate counter-clockwise, opposite to MAVLink's yawspeed).

Height is -z of LOCAL_POSITION_NED: the height above the local origin, which PX4 and ArduPilot place where the
estimator started (on the ground, at take-off, in normal use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Sign of each component between FLU and body NED: x kept, y, z and the yaw rate flipped.
_FLU_NED_SIGNS = np.array([1.0, -1.0, -1.0, -1.0], dtype=np.float64)


def flu_ned(vector: np.ndarray | tuple[float, float, float, float]) -> np.ndarray:
    """[vx forward, vy left, vz up, yaw rate CCW] (FLU) <-> [vx forward, vy right, vz down, yaw rate CW] (body NED).

    Units pass through (m/s, rad/s). Returns float64 (4,); raises ValueError for a vector of another shape."""
    array = np.asarray(vector, dtype=np.float64)
    if array.shape != (4,):
        raise ValueError(f"expected a 4-vector [vx, vy, vz, yaw_rate], got shape {array.shape}")
    return array * _FLU_NED_SIGNS


@dataclass(frozen=True)
class Attitude:
    """MAVLink ATTITUDE: roll, pitch, yaw (rad, FRD/NED: pitch positive nose up, yaw clockwise from north) and
    yawspeed (rad/s, clockwise)."""

    roll: float
    pitch: float
    yaw: float
    yawspeed: float


@dataclass(frozen=True)
class LocalPosition:
    """MAVLink LOCAL_POSITION_NED: position (m) and velocity (m/s), north-east-down."""

    x: float
    y: float
    z: float
    vx: float
    vy: float
    vz: float


def state_vector(attitude: Attitude, position: LocalPosition) -> np.ndarray:
    """float32 (7,) [vx, vy, vz (heading frame FLU, m/s), roll, pitch (rad), yaw rate (rad/s CCW), height (m)].

    The heading frame is the world rotated by the yaw only: forward is the horizontal direction the nose points to,
    left is 90 degrees counter-clockwise from it, up is up."""
    cos_yaw, sin_yaw = math.cos(attitude.yaw), math.sin(attitude.yaw)
    forward = cos_yaw * position.vx + sin_yaw * position.vy
    left = sin_yaw * position.vx - cos_yaw * position.vy
    return np.array([forward, left, -position.vz, attitude.roll, -attitude.pitch, -attitude.yawspeed, -position.z],
                    dtype=np.float32)
