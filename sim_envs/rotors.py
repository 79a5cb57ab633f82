"""The rotors and the air: motor speed lag and limits, thrust and reaction torque ∝ rpm², drag, ground effect.

Rotor layout (X configuration, PX4's quad-X numbering), body FLU, d = arm_length / √2:

    index  position     spin (seen from above)
      0    (+d, -d)     front right, counter-clockwise
      1    (-d, +d)     rear left,   counter-clockwise
      2    (+d, +d)     front left,  clockwise
      3    (-d, -d)     rear right,  clockwise

A rotor spinning counter-clockwise pushes the body clockwise: reaction torque about +z is -spin·km·rpm².

This runs once per physics tick (240 Hz), so it uses plain floats with the four rotors unrolled: numpy's per-call
overhead costs more than the arithmetic on 3- and 4-vectors.
"""

from __future__ import annotations

import math

from sim_envs.airframe import Airframe

AIR_DENSITY = 1.225  # kg/m³, sea level ISA
RPM_TO_RAD_S = 2.0 * math.pi / 60.0
# Cheeseman–Bennett thrust ratio 1 / (1 - (R / 4h)²) grows without bound as h -> R/4; real rotors gain at most
# a few tens of percent on the ground, so the ratio is capped here.
GROUND_EFFECT_MAX_RATIO = 1.4
# Above this many rotor radii the ground-effect gain is below 0.1 % and is skipped.
GROUND_EFFECT_FAR = 8.0


def ground_effect_ratio(rotor_radius: float, height: float) -> float:
    """Cheeseman–Bennett in-ground-effect thrust ratio for a rotor `height` above flat ground, capped."""
    if height <= 0.0:
        return GROUND_EFFECT_MAX_RATIO
    q = rotor_radius / (4.0 * height)
    q *= q
    if q >= 1.0 - 1.0 / GROUND_EFFECT_MAX_RATIO:
        return GROUND_EFFECT_MAX_RATIO
    return 1.0 / (1.0 - q)


class Rotors:
    """Rotor speeds (state) and the wrench they and the air exert on the body."""

    __slots__ = ("rpm", "_kf", "_km", "_d", "_radius", "_min_rpm", "_max_rpm", "_alpha", "_drag",
                 "_rotor_xy", "_rotor_z", "_body_xy", "_body_z", "_ground_effect", "_ground_far")

    def __init__(self, airframe: Airframe, dt: float, motor_lag: bool = True, drag: bool = True,
                 ground_effect: bool = True) -> None:
        self._kf = airframe.kf
        self._km = airframe.km
        self._d = airframe.arm_length / math.sqrt(2.0)
        self._radius = airframe.rotor_radius
        self._min_rpm = airframe.min_rpm
        self._max_rpm = airframe.max_rpm
        # Exact discretisation of d(rpm)/dt = (command - rpm) / tau for a command held over one tick.
        self._alpha = 1.0 - math.exp(-dt / airframe.motor_time_constant) if motor_lag else 1.0
        self._drag = drag
        self._rotor_xy = airframe.drag.rotor_xy * RPM_TO_RAD_S
        self._rotor_z = airframe.drag.rotor_z * RPM_TO_RAD_S
        self._body_xy = 0.5 * AIR_DENSITY * airframe.drag.body_area_xy
        self._body_z = 0.5 * AIR_DENSITY * airframe.drag.body_area_z
        self._ground_effect = ground_effect
        self._ground_far = GROUND_EFFECT_FAR * airframe.rotor_radius + airframe.arm_length
        self.rpm: list[float] = [0.0, 0.0, 0.0, 0.0]

    def reset(self, rpm: float) -> None:
        self.rpm = [rpm, rpm, rpm, rpm]

    def step(self, commands: tuple[float, float, float, float], rot: tuple[float, ...], height: float,
             air_relative_velocity: tuple[float, float, float]) -> tuple[float, float, float, float, float, float]:
        """Advance the rotor speeds one tick towards `commands` (rpm) and return the world-frame wrench
        (fx, fy, fz, tx, ty, tz) on the centre of mass.

        rot: the body-to-world rotation matrix, row-major (9 floats); height: the centre of mass above the ground;
        air_relative_velocity: the body's velocity minus the air's, world frame.
        """
        lo, hi, a = self._min_rpm, self._max_rpm, self._alpha
        rpm = self.rpm
        c0, c1, c2, c3 = commands
        w0 = rpm[0] + a * ((lo if c0 < lo else hi if c0 > hi else c0) - rpm[0])
        w1 = rpm[1] + a * ((lo if c1 < lo else hi if c1 > hi else c1) - rpm[1])
        w2 = rpm[2] + a * ((lo if c2 < lo else hi if c2 > hi else c2) - rpm[2])
        w3 = rpm[3] + a * ((lo if c3 < lo else hi if c3 > hi else c3) - rpm[3])
        self.rpm = [w0, w1, w2, w3]

        kf = self._kf
        t0, t1, t2, t3 = kf * w0 * w0, kf * w1 * w1, kf * w2 * w2, kf * w3 * w3
        r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
        d = self._d
        if self._ground_effect and height < self._ground_far:
            # Each rotor's own height: a tilted vehicle gets more lift on its low side, as a real one does.
            radius = self._radius
            dx, dy = r20 * d, r21 * d
            t0 *= ground_effect_ratio(radius, height + dx - dy)
            t1 *= ground_effect_ratio(radius, height - dx + dy)
            t2 *= ground_effect_ratio(radius, height + dx + dy)
            t3 *= ground_effect_ratio(radius, height - dx - dy)

        # Body-frame force: thrust along +z, then drag on the air-relative velocity.
        fx = fy = 0.0
        fz = t0 + t1 + t2 + t3
        if self._drag:
            ux, uy, uz = air_relative_velocity
            bx = r00 * ux + r10 * uy + r20 * uz
            by = r01 * ux + r11 * uy + r21 * uz
            bz = r02 * ux + r12 * uy + r22 * uz
            speed = math.sqrt(bx * bx + by * by + bz * bz)
            spin = w0 + w1 + w2 + w3
            kxy = self._rotor_xy * spin + self._body_xy * speed
            fx = -kxy * bx
            fy = -kxy * by
            fz -= (self._rotor_z * spin + self._body_z * speed) * bz

        # Body-frame torque: r × F for thrust at (x, y, 0), and the rotors' reaction torques.
        tx = d * (-t0 + t1 + t2 - t3)
        ty = -d * (t0 - t1 + t2 - t3)
        tz = self._km * (-w0 * w0 - w1 * w1 + w2 * w2 + w3 * w3)

        return (r00 * fx + r01 * fy + r02 * fz,
                r10 * fx + r11 * fy + r12 * fz,
                r20 * fx + r21 * fy + r22 * fz,
                r00 * tx + r01 * ty + r02 * tz,
                r10 * tx + r11 * ty + r12 * tz,
                r20 * tx + r21 * ty + r22 * tz)
