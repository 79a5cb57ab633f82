"""Frame conversions between the simulated world and MAVLink: the world's ENU-like frame (x east, y north, z up;
yaw counter-clockwise from east; body FLU) and MAVLink's local NED (x north, y east, z down; yaw clockwise from north;
body FRD), and velocity setpoints from SET_POSITION_TARGET_LOCAL_NED to the env's heading-frame FLU command.

The local NED origin is the world origin on the ground (z = 0), so LOCAL_POSITION_NED.z = -height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAV_FRAME_LOCAL_NED = 1
MAV_FRAME_LOCAL_OFFSET_NED = 7
MAV_FRAME_BODY_NED = 8
MAV_FRAME_BODY_OFFSET_NED = 9
BODY_FRAMES = (MAV_FRAME_BODY_NED, MAV_FRAME_BODY_OFFSET_NED)
LOCAL_FRAMES = (MAV_FRAME_LOCAL_NED, MAV_FRAME_LOCAL_OFFSET_NED)
SUPPORTED_FRAMES = BODY_FRAMES + LOCAL_FRAMES

# SET_POSITION_TARGET type_mask bits (set = ignore this field)
IGNORE_POSITION = 0b111
IGNORE_VELOCITY = 0b111 << 3
IGNORE_YAW = 1 << 10
IGNORE_YAW_RATE = 1 << 11
YAW_GAIN = 2.0  # 1/s: a yaw-angle setpoint is flown as yaw rate = gain x heading error (clipped by the caller)


def enu_to_ned(x: float, y: float, z: float) -> tuple[float, float, float]:
    """A world (ENU) vector -> local NED."""
    return y, x, -z


def yaw_enu_to_ned(yaw: float) -> float:
    """World yaw (CCW from east, rad) -> NED yaw (CW from north), wrapped to (-pi, pi]."""
    return wrap_angle(math.pi / 2 - yaw)


def flu_to_frd(x: float, y: float, z: float) -> tuple[float, float, float]:
    """A body FLU vector (or angular rate) -> body FRD."""
    return x, -y, -z


def wrap_angle(angle: float) -> float:
    """An angle in rad wrapped to (-pi, pi]."""
    wrapped = math.remainder(angle, 2 * math.pi)
    return math.pi if wrapped == -math.pi else wrapped


class UnsupportedSetpoint(ValueError):
    """A SET_POSITION_TARGET_LOCAL_NED SITL cannot fly (position targets, an unknown frame, no velocity)."""


@dataclass(frozen=True)
class VelocitySetpoint:
    """A velocity (+ yaw rate or yaw) setpoint as MAVLink sent it: `frame` (MAV_FRAME), velocity (m/s) in that NED
    frame, yaw rate (rad/s clockwise) or None, yaw (rad, NED heading) or None."""

    frame: int
    vx: float
    vy: float
    vz: float
    yaw_rate: float | None
    yaw: float | None

    @classmethod
    def from_message(cls, frame: int, type_mask: int, vx: float, vy: float, vz: float, yaw: float,
                     yaw_rate: float) -> VelocitySetpoint:
        """From SET_POSITION_TARGET_LOCAL_NED fields; UnsupportedSetpoint if it asks for a position, has no
        velocity, is not finite, or is in a frame SITL does not fly (body: 8, 9; local: 1, 7)."""
        if frame not in SUPPORTED_FRAMES:
            raise UnsupportedSetpoint(f"frame {frame} not supported (use MAV_FRAME_BODY_NED 8, BODY_OFFSET_NED 9, "
                                      f"LOCAL_NED 1)")
        if type_mask & IGNORE_POSITION != IGNORE_POSITION:
            raise UnsupportedSetpoint("position targets not supported: send velocity (type_mask 0x05C7)")
        if type_mask & IGNORE_VELOCITY:
            raise UnsupportedSetpoint("no velocity in setpoint: send velocity (type_mask 0x05C7)")
        rate = None if type_mask & IGNORE_YAW_RATE else float(yaw_rate)
        heading = None if type_mask & IGNORE_YAW or rate is not None else float(yaw)
        values = (vx, vy, vz) + tuple(v for v in (rate, heading) if v is not None)
        if not all(math.isfinite(v) for v in values):
            raise UnsupportedSetpoint("setpoint is not finite")
        return cls(frame, float(vx), float(vy), float(vz), rate, heading)

    def to_flu(self, yaw_world: float) -> tuple[float, float, float, float]:
        """The env's command (vx forward, vy left, vz up m/s, yaw rate CCW rad/s) in the heading frame (the world
        rotated by the vehicle's yaw `yaw_world`, CCW from east). Body frames are MAVLink's yaw-rotated (heading)
        frames, as PX4 and ArduPilot fly them; local-frame velocities are rotated by the current yaw."""
        if self.frame in BODY_FRAMES:
            forward, left = self.vx, -self.vy
        else:
            east, north = self.vy, self.vx
            c, s = math.cos(yaw_world), math.sin(yaw_world)
            forward, left = c * east + s * north, -s * east + c * north
        if self.yaw_rate is not None:
            yaw_rate = -self.yaw_rate
        elif self.yaw is not None:
            yaw_rate = -YAW_GAIN * wrap_angle(self.yaw - yaw_enu_to_ned(yaw_world))
        else:
            yaw_rate = 0.0
        return forward, left, -self.vz, yaw_rate
