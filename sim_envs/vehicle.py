"""The simulated vehicle: an airframe's rigid body in a PyBullet client, flown by the emulated flight controller.

Per physics tick the world calls `pre_step(setpoint, air_velocity)`, which runs the flight controller and the rotors
once and applies the net force and torque (world frame, at the centre of mass), then `pybullet.stepSimulation`.

Frames: the world is ENU-like with z up. Setpoints are in the heading frame, FLU (x forward along the yaw, y left,
z up, rotated by yaw only), yaw rate counter-clockwise positive. Angles are right-handed about the FLU axes in Z-Y-X
order: positive roll lowers the right side, positive pitch lowers the nose, positive yaw turns counter-clockwise. A
MAVLink (FRD/NED) flight controller reports the same roll, the opposite pitch and the opposite yaw rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybullet as p

from sim_envs.airframe import GRAVITY, Airframe
from sim_envs.flight_controller import FlightController
from sim_envs.rotors import Rotors

# Inertia exactly as the URDF states it (not recomputed from the collision shape), and the collision cylinder as a
# true cylinder rather than PyBullet's default convex-hull approximation of it.
URDF_FLAGS = p.URDF_USE_INERTIA_FROM_FILE | p.URDF_USE_IMPLICIT_CYLINDER


@dataclass(frozen=True)
class PhysicsSwitches:
    """Parts of the physics that can be turned off, for ablations and tests."""

    drag: bool = True
    ground_effect: bool = True
    motor_lag: bool = True


@dataclass
class VehicleState:
    position: np.ndarray  # (3,) world, m, of the centre of mass
    velocity: np.ndarray  # (3,) world, m/s
    quaternion: np.ndarray  # (4,) x, y, z, w, body-to-world
    roll: float  # rad, positive lowers the right side
    pitch: float  # rad, positive lowers the nose
    yaw: float  # rad, counter-clockwise from world +x
    angular_velocity_body: np.ndarray  # (3,) FLU, rad/s
    velocity_heading: np.ndarray  # (3,) heading frame FLU, m/s
    height: float  # m, centre of mass above the flat ground at z = 0
    rpm: np.ndarray  # (4,) rotor speeds, rotor order of sim_envs/rotors.py


class Vehicle:
    def __init__(self, client: int, airframe: Airframe, physics_hz: int = 240,
                 switches: PhysicsSwitches = PhysicsSwitches()) -> None:
        """Load the airframe into PyBullet client `client`, which must already step at 1/physics_hz s and have
        gravity (0, 0, -9.81): the flight controller's timing and hover thrust assume both."""
        params = p.getPhysicsEngineParameters(physicsClientId=client)
        if not math.isclose(params["fixedTimeStep"], 1.0 / physics_hz, rel_tol=1e-9):
            raise ValueError(f"the physics client steps {params['fixedTimeStep']} s but the vehicle runs at "
                             f"{physics_hz} Hz; call pybullet.setPhysicsEngineParameter(fixedTimeStep=1/{physics_hz})")
        gravity = (params["gravityAccelerationX"], params["gravityAccelerationY"], params["gravityAccelerationZ"])
        if gravity != (0.0, 0.0, -GRAVITY):
            raise ValueError(f"the physics client's gravity is {gravity}; the vehicle needs "
                             f"pybullet.setGravity(0, 0, -{GRAVITY})")
        self.airframe = airframe
        self.switches = switches
        self._client = client
        self.body_id: int = p.loadURDF(str(airframe.urdf_path), flags=URDF_FLAGS, physicsClientId=client)
        # PyBullet damps every body by default (0.04); the drag model is the only damping wanted.
        p.changeDynamics(self.body_id, -1, linearDamping=0.0, angularDamping=0.0, physicsClientId=client)
        dt = 1.0 / physics_hz
        self._controller = FlightController(airframe, dt)
        self._rotors = Rotors(airframe, dt, motor_lag=switches.motor_lag, drag=switches.drag,
                              ground_effect=switches.ground_effect)
        self.reset((0.0, 0.0, 1.0), 0.0)

    def reset(self, position: Sequence[float], yaw: float) -> None:
        """Hover at rest at `position` (world, m) facing `yaw` (rad): zero velocities, rotors at hover speed,
        controller integrators cleared."""
        x, y, z = _finite_floats(position, 3, "position")
        (yaw,) = _finite_floats((yaw,), 1, "yaw")
        client = self._client
        p.resetBasePositionAndOrientation(self.body_id, (x, y, z), p.getQuaternionFromEuler((0.0, 0.0, yaw)),
                                          physicsClientId=client)
        p.resetBaseVelocity(self.body_id, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=client)
        self._rotors.reset(self.airframe.hover_rpm)
        self._controller.reset(yaw)

    def pre_step(self, setpoint: Sequence[float], air_velocity: Sequence[float]) -> None:
        """One physics tick of flight controller and rotors; applies the wrench for the next stepSimulation.

        setpoint: (vx, vy, vz, yaw_rate) in the heading frame, m/s and rad/s; air_velocity: (3,) world, m/s."""
        # Fast path for what the world passes (tuples of floats); anything else goes through full validation.
        try:
            vx, vy, vz, yaw_rate = setpoint if type(setpoint) is tuple else _finite_floats(setpoint, 4, "setpoint")
            ax, ay, az = (air_velocity if type(air_velocity) is tuple
                          else _finite_floats(air_velocity, 3, "air_velocity"))
            finite = math.isfinite(vx + vy + vz + yaw_rate + ax + ay + az)
        except (TypeError, ValueError):
            _finite_floats(setpoint, 4, "setpoint")
            _finite_floats(air_velocity, 3, "air_velocity")
            raise
        if not finite:
            _finite_floats(setpoint, 4, "setpoint")
            _finite_floats(air_velocity, 3, "air_velocity")

        client, body = self._client, self.body_id
        position, (qx, qy, qz, qw) = p.getBasePositionAndOrientation(body, physicsClientId=client)
        velocity, angular_velocity = p.getBaseVelocity(body, physicsClientId=client)
        rot = _rotation(qx, qy, qz, qw)
        commands = self._controller.update(vx, vy, vz, yaw_rate, rot, velocity, angular_velocity)
        relative = (velocity[0] - ax, velocity[1] - ay, velocity[2] - az)
        fx, fy, fz, tx, ty, tz = self._rotors.step(commands, rot, position[2], relative)
        p.applyExternalForce(body, -1, (fx, fy, fz), position, p.WORLD_FRAME, physicsClientId=client)
        p.applyExternalTorque(body, -1, (tx, ty, tz), p.WORLD_FRAME, physicsClientId=client)

    def observe(self) -> VehicleState:
        client, body = self._client, self.body_id
        position, quaternion = p.getBasePositionAndOrientation(body, physicsClientId=client)
        velocity, angular_velocity = p.getBaseVelocity(body, physicsClientId=client)
        r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation(*quaternion)
        cos_pitch = math.sqrt(r00 * r00 + r10 * r10)
        yaw = math.atan2(r10, r00)
        cy, sy = math.cos(yaw), math.sin(yaw)
        vx, vy, vz = velocity
        wx, wy, wz = angular_velocity
        return VehicleState(
            position=np.array(position),
            velocity=np.array(velocity),
            quaternion=np.array(quaternion),
            roll=math.atan2(r21, r22),
            pitch=math.atan2(-r20, cos_pitch),
            yaw=yaw,
            angular_velocity_body=np.array([r00 * wx + r10 * wy + r20 * wz,
                                            r01 * wx + r11 * wy + r21 * wz,
                                            r02 * wx + r12 * wy + r22 * wz]),
            velocity_heading=np.array([cy * vx + sy * vy, -sy * vx + cy * vy, vz]),
            height=position[2],
            rpm=np.array(self._rotors.rpm),
        )

    def state_vector(self) -> np.ndarray:
        """float32 [vx, vy, vz (heading frame FLU), roll, pitch, yaw_rate, height]: what a flight controller reports.

        yaw_rate is the body rate about the body z axis (ATTITUDE.yawspeed, sign flipped to counter-clockwise)."""
        state = self.observe()
        return np.array([*state.velocity_heading, state.roll, state.pitch, state.angular_velocity_body[2],
                         state.height], dtype=np.float32)


def _rotation(qx: float, qy: float, qz: float, qw: float) -> tuple[float, ...]:
    """Body-to-world rotation matrix, row-major, of a unit quaternion."""
    xx, yy, zz = qx * qx, qy * qy, qz * qz
    xy, xz, yz = qx * qy, qx * qz, qy * qz
    wx, wy, wz = qw * qx, qw * qy, qw * qz
    return (1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
            2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
            2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy))


def _finite_floats(value: object, count: int, name: str) -> tuple[float, ...]:
    """`value` as `count` finite floats, or a ValueError that says what is wrong with it."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {count} numbers, got {value!r}") from None
    if array.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return tuple(array.tolist())
