"""The safety state machine: what the companion computer may send, decided from the link, the flight mode, the
camera and the policy's output. Pure (no I/O, no clock: time comes in with each observation), so that every
transition is tested.

States, and what is sent in each (setpoints are SET_POSITION_TARGET_LOCAL_NED body velocity + yaw rate):

| state | meaning | sends |
| --- | --- | --- |
| WAITING_FOR_AUTOPILOT | no autopilot HEARTBEAT yet | nothing |
| STANDBY | connected; the autopilot is not in its engaged mode | zero-velocity setpoints (1); mode request (2) |
| ENGAGED | in the engaged mode, every check passes | the policy's command (3) |
| HOLD | in the engaged mode, a check fails | zero-velocity setpoints: the vehicle stops, stays in the mode |
| LINK_LOST | no message from the autopilot for `heartbeat_timeout_s` (7) | nothing: its own failsafe is in charge (4) |

(1) PX4 accepts a switch to OFFBOARD only while setpoints stream. (2) With `request_mode` only (below).
(3) Clipped to [-1, 1], scaled by the bundle's action limits, clamped to `max_command`, acceleration-limited.
(4) PX4 COM_OF_LOSS_T then its failsafe action; ArduPilot GUIDED stops after GUID_TIMEOUT.
(7) A HEARTBEAT or telemetry: on a lossy link single heartbeats go missing while ATTITUDE streams at 30-50 Hz.
The engaged mode is PX4 OFFBOARD or ArduPilot GUIDED (navigator/onboard/autopilot.py).

Transitions, checked in this order at every step (the first that applies wins):

| condition | next state |
| --- | --- |
| never a heartbeat | WAITING_FOR_AUTOPILOT |
| the last message from the autopilot older than `heartbeat_timeout_s` | LINK_LOST |
| the mode is not the engaged one | STANDBY (5) |
| telemetry (ATTITUDE, LOCAL_POSITION_NED) older than `telemetry_timeout_s` | HOLD |
| geofence breached since this engagement (6) | HOLD, latched until the mode is left |
| no camera frame, or the newest older than `stale_frame_s` | HOLD |
| otherwise | ENGAGED: the policy runs on each new frame; a step without one repeats the last command |
| (after the policy ran) an action that is NaN or infinite | HOLD for this step |

(5) "left the engaged mode" when it was ENGAGED or HOLD (or in the mode before a link loss): the runtime never
requests the mode again in this run. (6) Height above `geofence_max_height_m`, or farther than `geofence_radius_m`
horizontally from where the mode was engaged.

Every entry into ENGAGED (a new engagement, or recovery from HOLD or LINK_LOST) starts the policy from a reset
hidden state (`Decision.reset_hidden`), so a NaN, a stale camera or a gap never carries into the next flight
segment; the first step after a reset uses the nominal dt. The acceleration limit ramps each command from the last
one sent, starting from zero (the vehicle held still before); HOLD sends zero at once (the autopilot's velocity
controller has its own acceleration limits). Recovery is automatic when a fault clears: frames fresh again or
telemetry back -> ENGAGED; heartbeat back -> STANDBY or ENGAGED by the mode the autopilot reports.

Engagement is the operator's: switching the autopilot to its engaged mode (by RC or a ground station) hands control
to the policy, any other mode takes it back and always wins. With `request_mode` (`navigator onboard --engage`),
the runtime itself requests the mode once per run, after streaming zero setpoints for the autopilot's pre-stream time
with a fresh camera frame and telemetry: the request is resent (MAVLink's command protocol) every
`request_timeout_s` without a COMMAND_ACK, up to `request_attempts` times, and abandoned on a refusal, once the
mode is entered, or once the operator has left it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

MAV_RESULT_ACCEPTED = 0
MAV_RESULT_IN_PROGRESS = 5


class State(str, Enum):
    WAITING_FOR_AUTOPILOT = "WAITING_FOR_AUTOPILOT"
    STANDBY = "STANDBY"
    ENGAGED = "ENGAGED"
    HOLD = "HOLD"
    LINK_LOST = "LINK_LOST"


@dataclass(frozen=True)
class SafetyLimits:
    """Thresholds of the machine. Vectors are FLU [vx, vy, vz, yaw rate] (m/s, rad/s; accelerations per second).

    action_scale: the bundle's action limits (normalised action 1 -> this command); max_command: the largest
    absolute command sent (the smaller of the bundle's and the configured limits); max_accel: per-axis rate limit."""

    action_scale: tuple[float, float, float, float]
    max_command: tuple[float, float, float, float]
    max_accel: tuple[float, float, float, float]
    stale_frame_s: float
    telemetry_timeout_s: float
    heartbeat_timeout_s: float
    geofence_radius_m: float
    geofence_max_height_m: float
    pre_stream_s: float = 1.0
    request_mode: bool = False
    request_timeout_s: float = 1.0
    request_attempts: int = 5


@dataclass(frozen=True)
class Observation:
    """What the runtime knows at one step. Ages are seconds (None: never received). `position` is (north, east,
    height) in metres from LOCAL_POSITION_NED. `mode_ack` is the result of the newest COMMAND_ACK to DO_SET_MODE
    since the last request (None: none)."""

    now: float
    heartbeat_age: float | None
    engaged_mode: bool
    mode_name: str = ""
    frame_age: float | None = None
    new_frame: bool = False
    telemetry_age: float | None = None
    position: tuple[float, float, float] | None = None
    mode_ack: int | None = None


@dataclass(frozen=True)
class Decision:
    """What to do this step. `setpoint` is the FLU command to send (m/s, rad/s), or None to send nothing;
    `run_policy` asks the runtime to step the policy on the new frame and pass its action to `SafetyMachine.command`
    (which then gives the setpoint); `reset_hidden` to reset the policy's hidden state first; `request_mode` to send
    the DO_SET_MODE request now."""

    state: State
    reason: str
    setpoint: np.ndarray | None
    run_policy: bool = False
    reset_hidden: bool = False
    request_mode: bool = False


ZERO = np.zeros(4, dtype=np.float64)


class SafetyMachine:
    """Call `update(observation)` once per control step; when it says `run_policy`, call `command(action, dt)` with
    the policy's normalised action. Both return the Decision to act on; `state` and `reason` are the latest."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self._scale = np.asarray(limits.action_scale, dtype=np.float64)
        self._max = np.asarray(limits.max_command, dtype=np.float64)
        self._accel = np.asarray(limits.max_accel, dtype=np.float64)
        self.state = State.WAITING_FOR_AUTOPILOT
        self.reason = "waiting for the autopilot's heartbeat"
        self._last = ZERO.copy()  # the last command sent in ENGAGED (FLU), the start of the acceleration ramp
        self._engage_point: tuple[float, float] | None = None
        self._geofence_breach: str | None = None  # latched until the mode is left
        self._was_engaged = False  # the autopilot was in the engaged mode at our last look (before a link loss too)
        self._mode_left = False  # the operator (or a failsafe) left the engaged mode after it was entered
        self._standby_since: float | None = None
        self._requests = 0
        self._last_request: float | None = None
        self._request_closed = False  # refused, accepted, or no longer wanted
        self._request_outcome = ""  # why a request was given up, kept as the STANDBY reason

    def update(self, obs: Observation) -> Decision:
        """Advance the machine with this step's observation."""
        limits = self.limits
        previous = self.state
        if obs.heartbeat_age is None:
            return self._enter(State.WAITING_FOR_AUTOPILOT, "waiting for the autopilot's heartbeat", None)
        if obs.heartbeat_age > limits.heartbeat_timeout_s:
            return self._enter(State.LINK_LOST, f"no heartbeat for {obs.heartbeat_age:.1f} s: the autopilot's "
                                                f"failsafe is in charge", None)
        if not obs.engaged_mode:
            if self._was_engaged:
                self._mode_left = True
                self._request_closed = True
                left = f"operator left the engaged mode (now {obs.mode_name or 'another mode'})"
                self._was_engaged = False
                self._engage_point, self._geofence_breach = None, None
                self._standby_since = obs.now
                return self._enter(State.STANDBY, left, ZERO)
            if previous is not State.STANDBY or self._standby_since is None:
                self._standby_since = obs.now
            return self._standby(obs)

        if not self._was_engaged:  # a new engagement: the geofence centres where it began
            self._engage_point, self._geofence_breach = None, None
        self._was_engaged = True
        self._request_closed = True
        self._standby_since = None
        if obs.telemetry_age is None or obs.telemetry_age > limits.telemetry_timeout_s or obs.position is None:
            age = "none yet" if obs.telemetry_age is None else f"{obs.telemetry_age:.2f} s old"
            return self._hold(f"telemetry stale ({age})")
        if self._engage_point is None:
            self._engage_point = (obs.position[0], obs.position[1])
        if self._geofence_breach is None:
            self._geofence_breach = self._geofence(obs.position)
        if self._geofence_breach is not None:
            return self._hold(self._geofence_breach)
        if obs.frame_age is None or obs.frame_age > limits.stale_frame_s:
            age = "no frame yet" if obs.frame_age is None else f"newest {obs.frame_age:.2f} s old"
            return self._hold(f"camera frame stale ({age})")
        if previous is not State.ENGAGED:
            self._last = ZERO.copy()
            # Until the first new frame, the vehicle keeps the zero command it held.
            return self._enter(State.ENGAGED, "policy flying", None if obs.new_frame else ZERO,
                               run_policy=obs.new_frame, reset_hidden=True)
        if not obs.new_frame:  # between frames: keep streaming the last command
            return self._enter(State.ENGAGED, "policy flying (no new frame: last command repeated)",
                               self._last.copy())
        return self._enter(State.ENGAGED, "policy flying", None, run_policy=True)

    def command(self, action: np.ndarray, dt: float) -> Decision:
        """The setpoint for the policy's normalised FLU `action` (4,), `dt` seconds after the last command."""
        if self.state is not State.ENGAGED:
            raise RuntimeError(f"command() called in state {self.state.value}; only after update() asked to run "
                               f"the policy")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            return self._hold("non-finite policy output: hidden state reset")
        wanted = np.clip(np.clip(action, -1.0, 1.0) * self._scale, -self._max, self._max)
        step = self._accel * max(dt, 0.0)
        self._last = self._last + np.clip(wanted - self._last, -step, step)
        return self._enter(State.ENGAGED, "policy flying", self._last.copy())

    def _standby(self, obs: Observation) -> Decision:
        limits = self.limits
        reason = "connected; waiting for the operator to switch to the engaged mode"
        request = False
        if limits.request_mode and not self._request_closed and not self._mode_left:
            if obs.mode_ack is not None and obs.mode_ack not in (MAV_RESULT_ACCEPTED, MAV_RESULT_IN_PROGRESS):
                self._close_request(f"mode request refused by the autopilot (MAV_RESULT {obs.mode_ack}); switch "
                                    f"modes by hand")
                reason = self._request_outcome
            elif obs.mode_ack is not None:
                reason = "mode request accepted; waiting for the mode"
            elif self._requests >= limits.request_attempts and obs.now - (self._last_request or 0.0) >= \
                    limits.request_timeout_s:
                self._close_request(f"mode request unanswered after {self._requests} attempts; switch modes by "
                                    f"hand")
                reason = self._request_outcome
            elif self._requests == 0:
                since = obs.now if self._standby_since is None else self._standby_since
                ready = (obs.now - since >= limits.pre_stream_s
                         and obs.frame_age is not None and obs.frame_age <= limits.stale_frame_s
                         and obs.telemetry_age is not None and obs.telemetry_age <= limits.telemetry_timeout_s)
                request = ready
                reason = "requesting the engaged mode" if ready else "streaming zero setpoints before the request"
            elif obs.now - (self._last_request or 0.0) >= limits.request_timeout_s:
                request = True
                reason = f"mode request unanswered: attempt {self._requests + 1}"
            else:
                reason = "mode requested; waiting for the answer"
            if request:
                self._requests += 1
                self._last_request = obs.now
        elif self._mode_left:
            reason = "the operator left the engaged mode; switch back to it to re-engage"
        elif self._request_outcome:
            reason = self._request_outcome
        return self._enter(State.STANDBY, reason, ZERO, request_mode=request)

    def _close_request(self, outcome: str) -> None:
        self._request_closed = True
        self._request_outcome = outcome

    def _geofence(self, position: tuple[float, float, float]) -> str | None:
        north, east, height = position
        if height > self.limits.geofence_max_height_m:
            return f"geofence: height {height:.1f} m above {self.limits.geofence_max_height_m:g} m"
        assert self._engage_point is not None
        distance = math.hypot(north - self._engage_point[0], east - self._engage_point[1])
        if distance > self.limits.geofence_radius_m:
            return (f"geofence: {distance:.1f} m from the engage point, beyond {self.limits.geofence_radius_m:g} m; "
                    f"leave the mode to reset")
        return None

    def _hold(self, reason: str) -> Decision:
        self._last = ZERO.copy()
        return self._enter(State.HOLD, reason, ZERO)

    def _enter(self, state: State, reason: str, setpoint: np.ndarray | None, **flags: bool) -> Decision:
        if state is not State.STANDBY:
            self._standby_since = None
        self.state, self.reason = state, reason
        return Decision(state, reason, None if setpoint is None else setpoint.copy(), **flags)
