"""The simulated vehicle: hover, gravity, step responses of the emulated flight controller, frames and signs, wind,
ground effect, motor model, input validation and determinism. Real PyBullet DIRECT clients with a ground plane."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pybullet as p
import pytest

from sim_envs.airframe import AIRFRAME_NAMES, GRAVITY, Airframe, load_airframe
from sim_envs.rotors import GROUND_EFFECT_MAX_RATIO, RPM_TO_RAD_S, Rotors, ground_effect_ratio
from sim_envs.vehicle import PhysicsSwitches, Vehicle
from sim_envs.wind import Wind, WindConfig

PHYSICS_HZ = 240
TICKS_PER_FRAME = 8  # the world samples state and wind at 30 Hz
FRAME_DT = TICKS_PER_FRAME / PHYSICS_HZ
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
STATE_INDEX = {"vx": 0, "vy": 1, "vz": 2, "yaw_rate": 5}
# Step responses must settle into a ±5 % band within this time and overshoot by less than this share of the step.
SETTLING_LIMIT = 1.5  # s
OVERSHOOT_LIMIT = 0.10


@contextlib.contextmanager
def physics_client() -> Iterator[int]:
    """A DIRECT client set up as the world sets its physics client: 240 Hz, gravity, a ground plane at z = 0."""
    client = p.connect(p.DIRECT)
    try:
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / PHYSICS_HZ, physicsClientId=client)
        p.setGravity(0, 0, -GRAVITY, physicsClientId=client)
        p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client), physicsClientId=client)
        yield client
    finally:
        p.disconnect(client)


@pytest.fixture
def client() -> Iterator[int]:
    with physics_client() as client:
        yield client


def fly(vehicle: Vehicle, client: int, setpoint: tuple[float, float, float, float], seconds: float,
        air: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Hold `setpoint` for `seconds`; the state vector at each 30 Hz frame, shape (frames, 7)."""
    states = []
    for _ in range(round(seconds / FRAME_DT)):
        for _ in range(TICKS_PER_FRAME):
            vehicle.pre_step(setpoint, air)
            p.stepSimulation(physicsClientId=client)
        states.append(vehicle.state_vector())
    return np.array(states)


def step_response(client: int, airframe: Airframe, axis: str, size: float,
                  switches: PhysicsSwitches = PhysicsSwitches()) -> tuple[float, float]:
    """(settling time into the ±5 % band, overshoot as a share of the step) of a step from hover in `axis`."""
    vehicle = Vehicle(client, airframe, PHYSICS_HZ, switches)
    vehicle.reset((0.0, 0.0, 5.0), 0.0)
    setpoint = [0.0, 0.0, 0.0, 0.0]
    setpoint[list(STATE_INDEX).index(axis)] = size
    response = fly(vehicle, client, tuple(setpoint), 4.0)[:, STATE_INDEX[axis]]
    outside = np.nonzero(np.abs(response - size) > 0.05 * size)[0]
    settling = (outside[-1] + 1) * FRAME_DT if len(outside) else 0.0
    return settling, float(response.max() - size) / size


def detuned(airframe: Airframe, **gains: float) -> Airframe:
    return dataclasses.replace(airframe, gains=dataclasses.replace(airframe.gains, **gains))


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
def test_zero_setpoint_hovers_at_hover_rpm(client, name):
    airframe = load_airframe(name)
    vehicle = Vehicle(client, airframe)
    vehicle.reset((1.0, -2.0, 2.0), 0.7)
    states = fly(vehicle, client, (0.0, 0.0, 0.0, 0.0), 5.0)
    assert np.max(np.abs(states[:, 6] - 2.0)) < 0.03
    final = vehicle.observe()
    assert np.allclose(final.position[:2], (1.0, -2.0), atol=0.03)
    assert final.yaw == pytest.approx(0.7, abs=1e-3)
    assert airframe.hover_rpm == pytest.approx(math.sqrt(airframe.mass * GRAVITY / (4 * airframe.kf)))
    assert np.allclose(final.rpm, airframe.hover_rpm, rtol=0.005)


def test_free_fall_without_rotor_forces_follows_gravity(client):
    # No pre_step: no thrust and no drag, so PyBullet alone moves the body. This pins the body's set-up (gravity
    # from the client, PyBullet's default damping removed).
    vehicle = Vehicle(client, load_airframe("x500"))
    vehicle.reset((0.0, 0.0, 10.0), 0.0)
    ticks = PHYSICS_HZ
    for _ in range(ticks):
        p.stepSimulation(physicsClientId=client)
    t = ticks / PHYSICS_HZ
    state = vehicle.observe()
    # Semi-implicit Euler falls g·t·dt/2 further than g·t²/2 after t seconds.
    assert state.height == pytest.approx(10.0 - 0.5 * GRAVITY * t**2, abs=GRAVITY * t / PHYSICS_HZ)
    assert state.velocity[2] == pytest.approx(-GRAVITY * t, rel=1e-6)
    assert np.allclose(state.velocity[:2], 0.0) and np.allclose(state.angular_velocity_body, 0.0)


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
@pytest.mark.parametrize("axis, size", [("vx", 1.0), ("vy", 1.0), ("vz", 0.5), ("yaw_rate", 1.0)])
def test_step_responses_settle_fast_without_overshoot(client, name, axis, size):
    settling, overshoot = step_response(client, load_airframe(name), axis, size)
    assert settling < SETTLING_LIMIT
    assert overshoot < OVERSHOOT_LIMIT


@pytest.mark.parametrize("axis, size, gains, failure", [
    ("vx", 1.0, {"velocity_xy_p": 0.8}, "slow"),  # sluggish velocity loop
    ("vx", 1.0, {"velocity_xy_i": 4.0}, "overshoot"),  # integrator far too strong
    ("vz", 0.5, {"velocity_z_p": 1.0}, "slow"),
    ("vz", 0.5, {"velocity_z_i": 6.0}, "overshoot"),
    ("yaw_rate", 1.0, {"yaw_reference_time_constant": 0.8}, "slow"),
    ("yaw_rate", 1.0, {"yaw_p": 8.0, "yaw_rate_p": 6.0}, "overshoot"),
])
def test_step_response_bounds_reject_bad_tuning(client, axis, size, gains, failure):
    settling, overshoot = step_response(client, detuned(load_airframe("x500"), **gains), axis, size)
    if failure == "slow":
        assert settling > SETTLING_LIMIT
    else:
        assert overshoot > OVERSHOOT_LIMIT


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_positive_yaw_rate_turns_counter_clockwise(client, sign):
    vehicle = Vehicle(client, load_airframe("x500"))
    vehicle.reset((0.0, 0.0, 3.0), 0.0)
    states = fly(vehicle, client, (0.0, 0.0, 0.0, sign * 0.5), 1.0)
    assert sign * states[-1, STATE_INDEX["yaw_rate"]] > 0.45
    assert sign * vehicle.observe().yaw == pytest.approx(0.5 * (1.0 - 0.2), abs=0.05)  # 1 s less the reference lag


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
def test_setpoints_are_in_the_heading_frame(client, name):
    vehicle = Vehicle(client, load_airframe(name))
    vehicle.reset((0.0, 0.0, 3.0), math.pi / 2)  # facing world +y
    fly(vehicle, client, (1.0, 0.0, 0.0, 0.0), 3.0)
    state = vehicle.observe()
    assert np.allclose(state.velocity, (0.0, 1.0, 0.0), atol=0.05)  # forward is world +y
    assert np.allclose(state.velocity_heading, (1.0, 0.0, 0.0), atol=0.05)
    fly(vehicle, client, (0.0, 1.0, 0.0, 0.0), 3.0)
    assert np.allclose(vehicle.observe().velocity, (-1.0, 0.0, 0.0), atol=0.05)  # left is world -x


def test_forward_flight_pitches_nose_down(client):
    vehicle = Vehicle(client, load_airframe("x500"))
    vehicle.reset((0.0, 0.0, 3.0), 0.0)
    states = fly(vehicle, client, (2.0, 0.0, 0.0, 0.0), 0.3)
    assert states[-1, 4] > 0.1  # state pitch: positive while accelerating forward
    states = fly(vehicle, client, (0.0, 2.0, 0.0, 0.0), 0.3)
    assert states[-1, 3] < -0.1  # state roll: negative (left side down) while accelerating left


@pytest.mark.parametrize("name, speed, max_drift", [("x500", 3.0, 0.8), ("cf2x", 1.5, 0.6)])
def test_velocity_integrator_holds_position_in_steady_wind(client, name, speed, max_drift):
    vehicle = Vehicle(client, load_airframe(name))
    vehicle.reset((0.0, 0.0, 3.0), 0.4)
    wind = Wind(WindConfig(steady_speed=speed, steady_direction=0.0))
    wind.reset(np.random.default_rng(0))
    positions = []
    for _ in range(round(10.0 / FRAME_DT)):
        air = tuple(wind.step(FRAME_DT).tolist())
        fly(vehicle, client, (0.0, 0.0, 0.0, 0.0), FRAME_DT, air)
        positions.append(vehicle.observe().position)
    positions = np.array(positions)
    assert positions[-1, 0] > 0.05  # pushed downwind (+x) before the integrator caught up
    assert np.max(np.linalg.norm(positions[:, :2], axis=1)) < max_drift
    assert np.max(np.abs(positions[:, 2] - 3.0)) < 0.1
    assert np.linalg.norm(vehicle.observe().velocity) < 0.02  # stopped: the integrator balances the drag


def test_wind_acts_only_through_drag():
    def trajectory(air: tuple[float, float, float]) -> np.ndarray:
        with physics_client() as client:
            vehicle = Vehicle(client, load_airframe("x500"), switches=PhysicsSwitches(drag=False))
            vehicle.reset((0.0, 0.0, 3.0), 0.0)
            return fly(vehicle, client, (1.0, 0.0, 0.0, 0.3), 2.0, air)

    assert np.array_equal(trajectory((0.0, 0.0, 0.0)), trajectory((4.0, -3.0, 1.0)))


def test_ground_effect_ratio_follows_cheeseman_bennett():
    radius = 0.127
    assert ground_effect_ratio(radius, 1.0) == pytest.approx(1.0 / (1.0 - (radius / 4.0) ** 2))
    assert ground_effect_ratio(radius, 0.1) > ground_effect_ratio(radius, 0.2) > ground_effect_ratio(radius, 0.5) > 1
    assert ground_effect_ratio(radius, 0.001) == GROUND_EFFECT_MAX_RATIO
    assert ground_effect_ratio(radius, -0.1) == GROUND_EFFECT_MAX_RATIO


def hover_thrust(airframe: Airframe, height: float, ground_effect: bool) -> float:
    rotors = Rotors(airframe, 1.0 / PHYSICS_HZ, ground_effect=ground_effect)
    rotors.reset(airframe.hover_rpm)
    hover = (airframe.hover_rpm,) * 4
    return rotors.step(hover, IDENTITY, height, (0.0, 0.0, 0.0))[2]


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
def test_ground_effect_increases_thrust_near_the_ground(name):
    airframe = load_airframe(name)
    weight = airframe.mass * GRAVITY
    assert hover_thrust(airframe, 50.0, True) == pytest.approx(weight, rel=1e-9)
    near = airframe.rotor_radius
    assert hover_thrust(airframe, near, True) == pytest.approx(weight * ground_effect_ratio(near, near), rel=1e-9)
    assert hover_thrust(airframe, near, True) > 1.05 * weight
    assert hover_thrust(airframe, near, False) == pytest.approx(weight, rel=1e-9)


def test_ground_effect_lifts_a_vehicle_at_hover_rpm(client):
    # The flight controller does not know about ground effect: right after reset near the ground (before its
    # integrator reacts) the vehicle climbs.
    vehicle = Vehicle(client, load_airframe("x500"))
    vehicle.reset((0.0, 0.0, 0.15), 0.0)
    states = fly(vehicle, client, (0.0, 0.0, 0.0, 0.0), 0.2)
    assert states[-1, 2] > 0.02


def test_rotor_speed_lags_and_saturates():
    airframe = load_airframe("x500")
    dt = 1.0 / PHYSICS_HZ
    rotors = Rotors(airframe, dt)
    rotors.reset(airframe.hover_rpm)
    command = (2.0 * airframe.max_rpm,) * 4  # beyond the limit: the motors run at most at max_rpm
    alpha = 1.0 - math.exp(-dt / airframe.motor_time_constant)
    rotors.step(command, IDENTITY, 10.0, (0.0, 0.0, 0.0))
    expected = airframe.hover_rpm + alpha * (airframe.max_rpm - airframe.hover_rpm)
    assert rotors.rpm == pytest.approx([expected] * 4)
    for _ in range(round(airframe.motor_time_constant / dt) - 1):
        rotors.step(command, IDENTITY, 10.0, (0.0, 0.0, 0.0))
    gained = (rotors.rpm[0] - airframe.hover_rpm) / (airframe.max_rpm - airframe.hover_rpm)
    assert gained == pytest.approx(1.0 - math.exp(-1.0), abs=0.02)  # 63 % after one time constant

    instant = Rotors(airframe, dt, motor_lag=False)
    instant.reset(airframe.hover_rpm)
    instant.step((0.0,) * 4, IDENTITY, 10.0, (0.0, 0.0, 0.0))
    assert instant.rpm == [airframe.min_rpm] * 4  # below the limit: idle


def test_rotor_torques_follow_the_x_layout():
    airframe = load_airframe("x500")
    rotors = Rotors(airframe, 1.0 / PHYSICS_HZ, motor_lag=False)
    hover, fast = airframe.hover_rpm, 1.1 * airframe.hover_rpm

    def torque(rpm: tuple[float, float, float, float]) -> tuple[float, ...]:
        return rotors.step(rpm, IDENTITY, 10.0, (0.0, 0.0, 0.0))[3:]

    assert torque((hover,) * 4) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    roll = torque((hover, fast, fast, hover))  # left rotors (1, 2) faster: left side up, positive roll torque
    assert roll[0] > 0 and roll[1] == pytest.approx(0.0, abs=1e-12)
    pitch = torque((hover, fast, hover, fast))  # rear rotors (1, 3) faster: nose down, positive pitch torque
    assert pitch[1] > 0 and pitch[0] == pytest.approx(0.0, abs=1e-12)
    yaw = torque((hover, hover, fast, fast))  # clockwise rotors (2, 3) faster: body turns counter-clockwise
    assert yaw[2] == pytest.approx(2 * airframe.km * (fast**2 - hover**2))


def test_drag_opposes_the_air_relative_velocity():
    airframe = load_airframe("x500")
    rotors = Rotors(airframe, 1.0 / PHYSICS_HZ, motor_lag=False, ground_effect=False)
    hover = (airframe.hover_rpm,) * 4
    fx, fy, fz = rotors.step(hover, IDENTITY, 10.0, (2.0, 0.0, 0.0))[:3]
    linear = airframe.drag.rotor_xy * 4 * airframe.hover_rpm * RPM_TO_RAD_S
    quadratic = 0.5 * 1.225 * airframe.drag.body_area_xy * 2.0
    assert fx == pytest.approx(-(linear + quadratic) * 2.0)
    assert fy == 0.0 and fz == pytest.approx(airframe.mass * GRAVITY)
    still = Rotors(airframe, 1.0 / PHYSICS_HZ, motor_lag=False, drag=False)
    assert still.step(hover, IDENTITY, 10.0, (2.0, 0.0, 0.0))[0] == 0.0


@pytest.mark.parametrize("setpoint", [
    (math.nan, 0.0, 0.0, 0.0), (0.0, 0.0, math.inf, 0.0), np.array([0.0, -math.inf, 0.0, 0.0]),
    (0.0, 0.0, 0.0), np.zeros((4, 1)), np.zeros(5), ("fast", 0.0, 0.0, 0.0), None,
])
def test_bad_setpoints_raise_value_error(client, setpoint):
    vehicle = Vehicle(client, load_airframe("cf2x"))
    with pytest.raises(ValueError, match="setpoint"):
        vehicle.pre_step(setpoint, (0.0, 0.0, 0.0))


@pytest.mark.parametrize("air", [(math.nan, 0.0, 0.0), (0.0, 0.0), np.zeros(4)])
def test_bad_air_velocity_raises_value_error(client, air):
    vehicle = Vehicle(client, load_airframe("cf2x"))
    with pytest.raises(ValueError, match="air_velocity"):
        vehicle.pre_step((0.0, 0.0, 0.0, 0.0), air)


def test_numpy_setpoints_fly_like_tuples():
    def trajectory(setpoint) -> np.ndarray:
        with physics_client() as client:
            vehicle = Vehicle(client, load_airframe("cf2x"))
            vehicle.reset((0.0, 0.0, 1.0), 0.0)
            return fly(vehicle, client, setpoint, 0.5)

    assert np.array_equal(trajectory((0.5, 0.2, 0.1, 0.3)), trajectory(np.array([0.5, 0.2, 0.1, 0.3])))


def test_state_vector_reports_what_a_flight_controller_does(client):
    vehicle = Vehicle(client, load_airframe("x500"))
    vehicle.reset((0.0, 0.0, 2.5), 1.0)
    vector = vehicle.state_vector()
    assert vector.dtype == np.float32 and vector.shape == (7,)
    assert np.allclose(vector, (0, 0, 0, 0, 0, 0, 2.5))
    state = vehicle.observe()
    assert state.yaw == pytest.approx(1.0)
    assert np.allclose(state.rpm, vehicle.airframe.hover_rpm)


def test_vehicle_refuses_a_client_it_cannot_fly_in(client):
    p.setPhysicsEngineParameter(fixedTimeStep=1.0 / 100, physicsClientId=client)
    with pytest.raises(ValueError, match="fixedTimeStep"):
        Vehicle(client, load_airframe("x500"))
    p.setPhysicsEngineParameter(fixedTimeStep=1.0 / PHYSICS_HZ, physicsClientId=client)
    p.setGravity(0, 0, 0, physicsClientId=client)
    with pytest.raises(ValueError, match="setGravity"):
        Vehicle(client, load_airframe("x500"))


def test_identical_inputs_give_bit_identical_trajectories():
    def trajectory() -> np.ndarray:
        with physics_client() as client:
            vehicle = Vehicle(client, load_airframe("x500"))
            vehicle.reset((0.0, 0.0, 0.5), 0.3)
            wind = Wind(WindConfig(steady_speed=2.0, gust_std=1.0, gust_time_constant=1.0))
            wind.reset(np.random.default_rng(7))
            rows = []
            for frame in range(60):
                air = tuple(wind.step(FRAME_DT).tolist())
                setpoint = (math.sin(0.1 * frame), 0.5, -0.2 * math.cos(0.2 * frame), 0.4)
                fly(vehicle, client, setpoint, FRAME_DT, air)
                state = vehicle.observe()
                rows.append(np.concatenate([state.position, state.quaternion, state.velocity, state.rpm]))
            return np.array(rows)

    assert np.array_equal(trajectory(), trajectory())


def test_wind_gusts_have_the_configured_statistics():
    config = WindConfig(steady_speed=2.0, steady_direction=math.pi / 2, gust_std=1.0, gust_time_constant=0.5)
    wind = Wind(config)
    wind.reset(np.random.default_rng(3))
    samples = np.array([wind.step(FRAME_DT) for _ in range(30000)])
    assert np.allclose(samples.mean(axis=0), (0.0, 2.0, 0.0), atol=0.1)
    assert np.allclose(samples.std(axis=0), (1.0, 1.0, 0.5), rtol=0.1)
    lag = round(config.gust_time_constant / FRAME_DT)  # correlation e^-1 one time constant apart
    gust = samples[:, 0]
    assert np.corrcoef(gust[:-lag], gust[lag:])[0, 1] == pytest.approx(math.exp(-lag * FRAME_DT / 0.5), abs=0.05)


def test_wind_direction_is_random_per_reset_unless_given():
    wind = Wind(WindConfig(steady_speed=3.0))
    rng = np.random.default_rng(0)
    directions = set()
    for _ in range(5):
        wind.reset(rng)
        air = wind.step(FRAME_DT)
        assert np.linalg.norm(air[:2]) == pytest.approx(3.0) and air[2] == 0.0
        directions.add(round(math.atan2(air[1], air[0]), 6))
    assert len(directions) == 5
    with pytest.raises(RuntimeError):
        Wind(WindConfig()).step(FRAME_DT)
    with pytest.raises(ValueError, match="gust_std"):
        WindConfig(gust_std=-1.0)
