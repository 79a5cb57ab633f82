"""The safety state machine: every state x event, then the rules the table does not show (clamping, acceleration
limit, NaN, latched geofence, the one mode request)."""

import math

import numpy as np
import pytest

from navigator.onboard.safety import Decision, Observation, SafetyLimits, SafetyMachine, State

LIMITS = SafetyLimits(action_scale=(2.0, 2.0, 1.0, 1.5), max_command=(1.0, 2.0, 1.0, 1.5),
                      max_accel=(3.0, 3.0, 2.0, 6.0), stale_frame_s=0.3, telemetry_timeout_s=0.5,
                      heartbeat_timeout_s=3.0, geofence_radius_m=50.0, geofence_max_height_m=20.0, pre_stream_s=1.0)
HEALTHY = dict(heartbeat_age=0.1, engaged_mode=True, mode_name="OFFBOARD", frame_age=0.02, new_frame=True,
               telemetry_age=0.02, position=(0.0, 0.0, 2.0))
EVENTS = {
    "no heartbeat yet": dict(heartbeat_age=None),
    "heartbeat lost": dict(heartbeat_age=5.0),
    "mode left": dict(engaged_mode=False, mode_name="POSCTL"),
    "healthy in mode": {},
    "frame stale": dict(frame_age=1.0),
    "no frame": dict(frame_age=None, new_frame=False),
    "telemetry stale": dict(telemetry_age=1.0),
    "too high": dict(position=(0.0, 0.0, 25.0)),
    "too far": dict(position=(60.0, 0.0, 2.0)),
}


def observe(now: float, **changes) -> Observation:
    return Observation(now=now, **{**HEALTHY, **changes})


def machine_in(state: State) -> SafetyMachine:
    machine = SafetyMachine(LIMITS)
    if state is State.WAITING_FOR_AUTOPILOT:
        return machine
    if state is State.STANDBY:
        machine.update(observe(0.0, engaged_mode=False))
    else:
        machine.update(observe(0.0))  # engaged at (0, 0)
        machine.command(np.zeros(4), 1 / 30)
        if state is State.HOLD:
            machine.update(observe(0.1, frame_age=1.0))
        elif state is State.LINK_LOST:
            machine.update(observe(0.1, heartbeat_age=5.0))
    assert machine.state is state
    return machine


def sends(decision: Decision) -> str:
    if decision.run_policy:
        return "policy"
    if decision.setpoint is None:
        return "nothing"
    return "zero" if not np.any(decision.setpoint) else "command"


W, S, E, H, L = (State.WAITING_FOR_AUTOPILOT, State.STANDBY, State.ENGAGED, State.HOLD, State.LINK_LOST)
# (state, event) -> (next state, what is sent). A new engagement (from W, S) centres the geofence where it begins,
# so "too far" is only a breach for a machine already engaged at (0, 0) (E, H, and L, which remembers it).
TABLE = {
    **{(state, "no heartbeat yet"): (W, "nothing") for state in State},
    **{(state, "heartbeat lost"): (L, "nothing") for state in State},
    **{(state, "mode left"): (S, "zero") for state in State},
    **{(state, "healthy in mode"): (E, "policy") for state in State},
    **{(state, "frame stale"): (H, "zero") for state in State},
    **{(state, "no frame"): (H, "zero") for state in State},
    **{(state, "telemetry stale"): (H, "zero") for state in State},
    **{(state, "too high"): (H, "zero") for state in State},
    **{(state, "too far"): (E if state in (W, S) else H, "policy" if state in (W, S) else "zero") for state in State},
}


@pytest.mark.parametrize(("state", "event"), list(TABLE))
def test_transition_table(state: State, event: str) -> None:
    machine = machine_in(state)
    decision = machine.update(observe(1.0, **EVENTS[event]))
    assert (decision.state, sends(decision)) == TABLE[(state, event)], decision.reason
    # Every entry into ENGAGED starts the policy from a reset hidden state; staying engaged does not reset.
    assert decision.reset_hidden == (decision.state is E and state is not E)
    if (state, event) == (E, "mode left") or (state, event) == (H, "mode left"):
        assert "left the engaged mode" in decision.reason


def test_command_is_clipped_scaled_clamped_and_acceleration_limited() -> None:
    machine = machine_in(State.ENGAGED)
    # Normalised 5 clips to 1 -> 2 m/s, clamped to max_command vx 1 m/s; the ramp allows 3 m/s^2 x 0.1 s = 0.3.
    decision = machine.update(observe(1.0))
    decision = machine.command(np.array([5.0, -0.5, 0.5, 1.0]), 0.1)
    np.testing.assert_allclose(decision.setpoint, [0.3, -0.3, 0.2, 0.6])
    for _ in range(20):
        machine.update(observe(2.0))
        decision = machine.command(np.array([5.0, -0.5, 0.5, 1.0]), 0.1)
    np.testing.assert_allclose(decision.setpoint, [1.0, -1.0, 0.5, 1.5])
    # Between frames the last command is repeated, unchanged.
    repeat = machine.update(observe(2.1, new_frame=False))
    assert not repeat.run_policy and repeat.state is E
    np.testing.assert_allclose(repeat.setpoint, decision.setpoint)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_output_holds_then_restarts_with_reset_hidden(bad: float) -> None:
    machine = machine_in(State.ENGAGED)
    machine.update(observe(1.0))
    decision = machine.command(np.array([0.1, bad, 0.0, 0.0]), 1 / 30)
    assert decision.state is H and "non-finite" in decision.reason and not np.any(decision.setpoint)
    again = machine.update(observe(1.05))
    assert again.state is E and again.reset_hidden and again.run_policy


def test_geofence_breach_is_latched_until_the_mode_is_left() -> None:
    machine = machine_in(State.ENGAGED)
    assert machine.update(observe(1.0, position=(30.0, 45.0, 2.0))).state is H  # 54 m from the engage point
    decision = machine.update(observe(1.1, position=(0.0, 0.0, 2.0)))  # back inside: still held
    assert decision.state is H and "geofence" in decision.reason
    assert machine.update(observe(1.2, engaged_mode=False)).state is S
    # Re-engaging far away centres the fence there.
    assert machine.update(observe(1.3, position=(100.0, 0.0, 2.0))).state is E


def test_link_lost_recovery_follows_the_current_mode() -> None:
    machine = machine_in(State.LINK_LOST)
    assert machine.update(observe(5.0, heartbeat_age=0.1)).state is E
    machine = machine_in(State.LINK_LOST)
    decision = machine.update(observe(5.0, heartbeat_age=0.1, engaged_mode=False, mode_name="AUTO.LOITER"))
    assert decision.state is S and "AUTO.LOITER" in decision.reason


def engage_limits(**changes) -> SafetyLimits:
    values = {**LIMITS.__dict__, "request_mode": True, "request_timeout_s": 1.0, "request_attempts": 3, **changes}
    return SafetyLimits(**values)


def standby(now: float, **changes) -> Observation:
    return observe(now, engaged_mode=False, mode_name="AUTO.LOITER", **changes)


def test_mode_request_after_pre_stream_resent_until_answered() -> None:
    machine = SafetyMachine(engage_limits())
    requests = [t for t in np.arange(0.0, 10.0, 0.1) if machine.update(standby(float(t))).request_mode]
    # First after 1 s of zero setpoints, then every 1 s without an answer, 3 attempts in all.
    np.testing.assert_allclose(requests, [1.0, 2.0, 3.0], atol=1e-9)
    assert "unanswered" in machine.reason


def test_mode_request_waits_for_fresh_frame_and_telemetry() -> None:
    machine = SafetyMachine(engage_limits())
    assert not any(machine.update(standby(t, frame_age=1.0)).request_mode for t in np.arange(0, 3, 0.1))
    assert machine.update(standby(3.0)).request_mode  # a fresh frame: request now


def test_refused_mode_request_is_not_repeated() -> None:
    machine = SafetyMachine(engage_limits())
    assert [t for t in np.arange(0, 1.05, 0.05) if machine.update(standby(t)).request_mode] == [pytest.approx(1.0)]
    decision = machine.update(standby(1.1, mode_ack=2))  # MAV_RESULT_DENIED
    assert "refused" in decision.reason
    assert not any(machine.update(standby(t)).request_mode for t in np.arange(1.2, 6.0, 0.1))


def test_mode_is_never_requested_again_after_the_operator_left_it() -> None:
    machine = SafetyMachine(engage_limits())
    machine.update(standby(0.0))
    assert machine.update(standby(1.0)).request_mode
    assert machine.update(observe(1.5)).state is E  # the autopilot switched
    assert machine.update(standby(2.0)).state is S  # the operator took it back
    assert not any(machine.update(standby(t)).request_mode for t in np.arange(2.1, 8.0, 0.1))
    assert "switch back" in machine.reason


def test_command_outside_engaged_is_a_bug() -> None:
    machine = machine_in(State.STANDBY)
    with pytest.raises(RuntimeError, match="STANDBY"):
        machine.command(np.zeros(4), 0.1)


def test_limits_vectors_are_per_axis() -> None:
    # yaw rate clamp and ramp use rad/s: 1.5 rad/s at 6 rad/s^2 is reached in 0.25 s.
    machine = machine_in(State.ENGAGED)
    machine.update(observe(1.0))
    decision = machine.command(np.array([0.0, 0.0, 0.0, 1.0]), 0.25)
    assert math.isclose(decision.setpoint[3], 1.5)
