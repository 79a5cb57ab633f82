"""The emulated flight controller: a PX4-style multicopter cascade, run once per physics tick.

    velocity setpoint (heading frame FLU) -> velocity PI (world frame) -> acceleration setpoint
    -> thrust vector (tilt limited to max_tilt) -> collective thrust + roll/pitch setpoint
    -> attitude P, with yaw held around a setpoint that integrates the (smoothed) yaw-rate command
    -> body-rate setpoint (Euler kinematics) -> body-rate PID -> torques (× inertia) -> X mixer -> rpm commands

Angles are right-handed about the FLU axes with Z-Y-X (yaw, pitch, roll) order: positive roll lowers the right side,
positive pitch lowers the nose (and so accelerates forward), positive yaw turns counter-clockwise seen from above.

Like a real flight controller it knows the airframe's nominal mass, inertia and rotor constants but not the drag, the
wind or the ground effect: its integrators absorb those.

Plain floats throughout: this runs 240 times per simulated second, where numpy's per-call overhead on 3-vectors costs
more than the arithmetic.
"""

from __future__ import annotations

import math

from sim_envs.airframe import GRAVITY, Airframe

# The least vertical specific force (m/s²) commanded while descending: keeps the rotors loaded so that attitude stays
# controllable, as PX4's minimum collective thrust does.
MIN_VERTICAL_FORCE = 0.3 * GRAVITY
# The share of total rotor thrust the velocity loop may ask for; the rest is kept for attitude control.
THRUST_MARGIN = 0.9
# The largest heading error (rad) the yaw hold keeps; beyond it the setpoint follows the vehicle (anti-windup).
MAX_YAW_ERROR = 0.5
# The most angular acceleration (rad/s²) the body-rate integrators may add.
RATE_I_LIMIT = 20.0


class FlightController:
    __slots__ = ("_dt", "_mass", "_ixx", "_iyy", "_izz", "_kf", "_quarter_over_d", "_quarter_over_k",
                 "_thrust_min", "_thrust_max", "_tan_tilt", "_force_max",
                 "_vxy_p", "_vxy_i", "_vz_p", "_vz_i", "_v_i_limit", "_att_p", "_yaw_p", "_yaw_ref_alpha",
                 "_rate_p", "_rate_i", "_rate_d_over_dt", "_yaw_rate_p", "_yaw_rate_i",
                 "_ix", "_iy", "_iz", "_ip", "_iq", "_ir", "_prev_p", "_prev_q", "_yaw_sp", "_yaw_rate_ref")

    def __init__(self, airframe: Airframe, dt: float) -> None:
        gains = airframe.gains
        self._dt = dt
        self._mass = airframe.mass
        self._ixx, self._iyy, self._izz = airframe.inertia
        self._kf = airframe.kf
        d = airframe.arm_length / math.sqrt(2.0)
        self._quarter_over_d = 0.25 / d
        self._quarter_over_k = 0.25 * airframe.kf / airframe.km
        self._thrust_min = airframe.kf * airframe.min_rpm**2
        self._thrust_max = airframe.kf * airframe.max_rpm**2
        self._tan_tilt = math.tan(airframe.max_tilt)
        self._force_max = THRUST_MARGIN * 4.0 * self._thrust_max / airframe.mass
        self._vxy_p, self._vxy_i = gains.velocity_xy_p, gains.velocity_xy_i
        self._vz_p, self._vz_i = gains.velocity_z_p, gains.velocity_z_i
        self._v_i_limit = gains.velocity_i_limit
        self._att_p, self._yaw_p = gains.attitude_p, gains.yaw_p
        # The yaw-rate command is smoothed to a first-order reference that the rate loop can follow, so that the
        # heading hold does not build up a lag it must then overshoot to recover.
        time_constant = gains.yaw_reference_time_constant
        self._yaw_ref_alpha = 1.0 - math.exp(-dt / time_constant) if time_constant > 0.0 else 1.0
        self._rate_p, self._rate_i = gains.rate_p, gains.rate_i
        self._rate_d_over_dt = gains.rate_d / dt
        self._yaw_rate_p, self._yaw_rate_i = gains.yaw_rate_p, gains.yaw_rate_i
        self.reset(0.0)

    def reset(self, yaw: float) -> None:
        """Clear the integrators and hold heading `yaw` (rad)."""
        self._ix = self._iy = self._iz = 0.0
        self._ip = self._iq = self._ir = 0.0
        self._prev_p = self._prev_q = 0.0
        self._yaw_sp = yaw
        self._yaw_rate_ref = 0.0

    def update(self, vx_sp: float, vy_sp: float, vz_sp: float, yaw_rate_sp: float, rot: tuple[float, ...],
               velocity: tuple[float, float, float],
               angular_velocity: tuple[float, float, float]) -> tuple[float, float, float, float]:
        """One control tick: setpoints in the heading frame (m/s, rad/s CCW); rot: body-to-world rotation, row-major;
        velocity and angular_velocity in the world frame. Returns the four rotor speed commands (rpm)."""
        r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
        dt = self._dt

        # Euler angles and heading straight from the rotation matrix; cos(pitch) = |forward axis on the ground|.
        cos_pitch = math.sqrt(r00 * r00 + r10 * r10)
        if cos_pitch < 1e-6:  # nose straight up or down: heading undefined, any will do
            cos_pitch, cy, sy = 1e-6, 1.0, 0.0
        else:
            cy, sy = r00 / cos_pitch, r10 / cos_pitch
        roll = math.atan2(r21, r22)
        pitch = math.atan2(-r20, cos_pitch)
        yaw = math.atan2(r10, r00)

        # Velocity PI in the world frame (integrators stay put in the world while the vehicle yaws, as wind does).
        vx, vy, vz = velocity
        ex = cy * vx_sp - sy * vy_sp - vx
        ey = sy * vx_sp + cy * vy_sp - vy
        ez = vz_sp - vz
        ax = self._vxy_p * ex + self._ix
        ay = self._vxy_p * ey + self._iy
        fz = GRAVITY + self._vz_p * ez + self._iz
        # Vertical has priority, then the tilt limit and the remaining thrust bound the horizontal part. Anti-windup:
        # a saturated horizontal part stops integrating; a saturated vertical one integrates only to unwind.
        integrate_z = True
        force_max = self._force_max
        if fz > force_max:
            fz, integrate_z = force_max, ez < 0.0
        elif fz < MIN_VERTICAL_FORCE:
            fz, integrate_z = MIN_VERTICAL_FORCE, ez > 0.0
        horizontal_max = min(fz * self._tan_tilt, math.sqrt(force_max * force_max - fz * fz))
        horizontal = math.sqrt(ax * ax + ay * ay)
        limit = self._v_i_limit
        if horizontal > horizontal_max:
            scale = horizontal_max / horizontal
            ax *= scale
            ay *= scale
        else:
            ix = self._ix + self._vxy_i * ex * dt
            iy = self._iy + self._vxy_i * ey * dt
            self._ix = limit if ix > limit else -limit if ix < -limit else ix
            self._iy = limit if iy > limit else -limit if iy < -limit else iy
        if integrate_z:
            iz = self._iz + self._vz_i * ez * dt
            self._iz = limit if iz > limit else -limit if iz < -limit else iz

        # Thrust vector -> roll/pitch setpoint in the heading frame, and the collective thrust along the actual body z
        # (so that a vehicle still rotating towards its setpoint does not gain or lose height meanwhile).
        fx_h = cy * ax + sy * ay
        fy_h = -sy * ax + cy * ay
        roll_sp = math.asin(-fy_h / math.sqrt(fx_h * fx_h + fy_h * fy_h + fz * fz))
        pitch_sp = math.atan2(fx_h, fz)
        thrust = self._mass * (ax * r02 + ay * r12 + fz * r22)
        if thrust < 0.0:
            thrust = 0.0

        # Heading hold around a setpoint that integrates the smoothed yaw-rate command.
        rate_ref = self._yaw_rate_ref + self._yaw_ref_alpha * (yaw_rate_sp - self._yaw_rate_ref)
        self._yaw_rate_ref = rate_ref
        yaw_error = self._yaw_sp + rate_ref * dt - yaw
        if yaw_error > math.pi:
            yaw_error -= 2.0 * math.pi
        elif yaw_error < -math.pi:
            yaw_error += 2.0 * math.pi
        if yaw_error > MAX_YAW_ERROR:
            yaw_error = MAX_YAW_ERROR
        elif yaw_error < -MAX_YAW_ERROR:
            yaw_error = -MAX_YAW_ERROR
        self._yaw_sp = yaw + yaw_error

        # Attitude P on Euler angles, mapped to body rates by the Z-Y-X kinematics.
        roll_rate = self._att_p * (roll_sp - roll)
        pitch_rate = self._att_p * (pitch_sp - pitch)
        yaw_rate = rate_ref + self._yaw_p * yaw_error
        sin_roll, cos_roll = r21 / cos_pitch, r22 / cos_pitch
        p_sp = roll_rate + r20 * yaw_rate
        q_sp = cos_roll * pitch_rate + r21 * yaw_rate
        r_sp = -sin_roll * pitch_rate + r22 * yaw_rate

        # Body-rate PID (derivative on the measurement, so setpoint steps do not kick) -> torques.
        wx, wy, wz = angular_velocity
        p = r00 * wx + r10 * wy + r20 * wz
        q = r01 * wx + r11 * wy + r21 * wz
        r = r02 * wx + r12 * wy + r22 * wz
        ep, eq, er = p_sp - p, q_sp - q, r_sp - r
        ki_dt, limit = self._rate_i * dt, RATE_I_LIMIT
        ip = self._ip + ki_dt * ep
        iq = self._iq + ki_dt * eq
        ir = self._ir + self._yaw_rate_i * dt * er
        self._ip = ip = limit if ip > limit else -limit if ip < -limit else ip
        self._iq = iq = limit if iq > limit else -limit if iq < -limit else iq
        self._ir = ir = limit if ir > limit else -limit if ir < -limit else ir
        kd = self._rate_d_over_dt
        torque_x = self._ixx * (self._rate_p * ep + ip - kd * (p - self._prev_p))
        torque_y = self._iyy * (self._rate_p * eq + iq - kd * (q - self._prev_q))
        torque_z = self._izz * (self._yaw_rate_p * er + ir)
        self._prev_p, self._prev_q = p, q
        return self._mix(thrust, torque_x, torque_y, torque_z)

    def _mix(self, thrust: float, torque_x: float, torque_y: float,
             torque_z: float) -> tuple[float, float, float, float]:
        """Collective thrust (N) and body torques (N·m) -> rotor speed commands (rpm), within the rotors' limits.

        Priorities when the rotors saturate, as in PX4's mixer: roll and pitch first, then collective thrust, and
        yaw gets what is left (yaw authority is weak and yaw errors are harmless)."""
        t_min, t_max = self._thrust_min, self._thrust_max
        a = torque_x * self._quarter_over_d
        b = torque_y * self._quarter_over_d
        base = 0.25 * thrust
        # Roll/pitch deltas of rotors 0..3 (layout in sim_envs/rotors.py): -a-b, +a+b, +a-b, -a+b.
        spread = abs(a) + abs(b)
        if 2.0 * spread > t_max - t_min:
            shrink = (t_max - t_min) / (2.0 * spread)
            a, b, spread = a * shrink, b * shrink, 0.5 * (t_max - t_min)
        if base > t_max - spread:
            base = t_max - spread
        elif base < t_min + spread:
            base = t_min + spread
        u0, u1, u2, u3 = base - a - b, base + a + b, base + a - b, base - a + b
        # Yaw: rotors 0 and 1 spin counter-clockwise (-y), 2 and 3 clockwise (+y).
        y = torque_z * self._quarter_over_k
        if y > 0.0:
            y = min(y, u0 - t_min, u1 - t_min, t_max - u2, t_max - u3)
        else:
            y = max(y, u0 - t_max, u1 - t_max, t_min - u2, t_min - u3)
        # Each rotor's thrust is now within [t_min, t_max] >= 0, up to rounding: abs() guards sqrt against -1e-20.
        inv_kf = 1.0 / self._kf
        return (math.sqrt(abs(u0 - y) * inv_kf), math.sqrt(abs(u1 - y) * inv_kf),
                math.sqrt(abs(u2 + y) * inv_kf), math.sqrt(abs(u3 + y) * inv_kf))
