"""The control loop of the companion computer: camera frame -> shared preprocessing -> policy -> safety -> MAVLink
setpoint, one step at a time, logged.

Each step takes the newest camera frame (never waiting on the camera itself: `CameraReader` reads on its own
thread), crops and resizes it to the policy's trained field of view and size (`policies.preprocessing.
crop_and_resize` with `Bundle.image_spec_for(camera width, height, hfov)`), builds the state vector from the newest
ATTITUDE and LOCAL_POSITION_NED (`frames.state_vector`), steps the ONNX policy with dt = the time between the
arrivals of the two frames it used (the nominal dt after a reset), passes its action through the safety machine and
sends what the machine decides.

Pacing: a step runs as soon as a new frame arrives, but never sooner than 0.75 periods after the last policy step
(a faster camera is decimated to the policy's rate); with no new frame for 1.5 periods a step runs anyway, so the
setpoint stream (and the stale-frame check) never waits on the camera. The period is 1 / rate_hz (the bundle's
rate unless the config sets one).

Ending (`--duration`, Ctrl-C, SIGTERM: the two signals are one stop request): the loop stops at the next step; if the
policy was commanding (ENGAGED or HOLD), three zero-velocity setpoints are sent first, so that the vehicle stops
rather than keep the last velocity (ArduPilot GUIDED holds it for up to 3 s), then nothing more: the autopilot's
offboard-loss handling takes over (PX4 leaves OFFBOARD after COM_OF_LOSS_T, ArduPilot GUIDED stops at GUID_TIMEOUT).
The log is closed with an end record saying why ("duration", "stopped by SIGTERM", "stopped by SIGINT").
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from navigator.onboard.bundle import Bundle, BundlePolicy
from navigator.onboard.camera import CameraReader, Frame
from navigator.onboard.config import OnboardConfig
from navigator.onboard.frames import flu_ned, state_vector
from navigator.onboard.link import LinkStatus, MavlinkLink
from navigator.onboard.log import FlightLog
from navigator.onboard.safety import Decision, Observation, SafetyLimits, SafetyMachine, State
from policies.preprocessing import ImageSpec, crop_and_resize

FINAL_ZERO_SETPOINTS = 3


@dataclass
class RunSummary:
    """How a run went: counts of steps and of steps per safety state, timings (ms, s), why it ended."""

    ended: str = ""
    steps: int = 0
    policy_steps: int = 0
    seconds: float = 0.0
    setpoints_sent: int = 0
    states: Counter = field(default_factory=Counter)
    inference_ms: list[float] = field(default_factory=list)
    camera_reopens: int = 0
    log: str | None = None  # the oldest part of the run's log still on disk (any part names the run to `plot`)
    log_parts: int = 0  # how many parts remain

    def to_dict(self) -> dict[str, object]:
        timings = np.asarray(self.inference_ms) if self.inference_ms else np.full(1, np.nan)
        return {"ended": self.ended, "steps": self.steps, "policy_steps": self.policy_steps,
                "seconds": round(self.seconds, 3), "setpoints_sent": self.setpoints_sent,
                "states": {state.value: self.states.get(state, 0) for state in State},
                "inference_ms_median": None if not self.inference_ms else round(float(np.median(timings)), 4),
                "inference_ms_p95": None if not self.inference_ms else round(float(np.percentile(timings, 95)), 4),
                "camera_reopens": self.camera_reopens, "log": self.log, "log_parts": self.log_parts}


def safety_limits(config: OnboardConfig, bundle: Bundle, pre_stream_s: float, engage: bool) -> SafetyLimits:
    """The safety machine's thresholds from the config and the bundle's action limits."""
    scale = tuple(float(v) for v in bundle.action_limits)
    return SafetyLimits(
        action_scale=scale, max_command=config.limits.max_command(scale), max_accel=config.limits.max_accel(),
        stale_frame_s=config.camera.stale_frame_s, telemetry_timeout_s=config.link.telemetry_timeout_s,
        heartbeat_timeout_s=config.link.heartbeat_timeout_s, geofence_radius_m=config.geofence.radius_m,
        geofence_max_height_m=config.geofence.max_height_m, pre_stream_s=pre_stream_s, request_mode=engage,
        request_timeout_s=config.engage.request_timeout_s, request_attempts=config.engage.request_attempts)


class PolicyStepper:
    """Frame -> action: the crop and resize for this camera, then the ONNX policy, dt measured between the frames
    used. `image_spec` is the camera-to-policy preprocessing (fixed at start: the camera's size and field of view)."""

    def __init__(self, bundle: Bundle, policy: BundlePolicy, image_spec: ImageSpec) -> None:
        self.bundle, self.policy, self.image_spec = bundle, policy, image_spec
        self._last_arrival: float | None = None

    def reset(self) -> None:
        """A new policy segment: zero hidden state, and the next step uses the nominal dt."""
        self.policy.reset()
        self._last_arrival = None

    def step(self, frame: Frame, state: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(normalised action (4,), dt s, milliseconds spent preprocessing + inferring)."""
        started = time.perf_counter()
        dt = self.bundle.dt if self._last_arrival is None else frame.arrival - self._last_arrival
        self._last_arrival = frame.arrival
        action = self.policy.step(crop_and_resize(frame.image, self.image_spec), state, dt)
        return action, dt, (time.perf_counter() - started) * 1000.0


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """While inside, the first Ctrl-C (SIGINT) or SIGTERM sets `stop` (the loop ends cleanly) and its name is
    appended to the list yielded; a second Ctrl-C interrupts at once. Does nothing off the main thread (signals go
    to the main thread only)."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class OnboardRuntime:
    """Runs the loop with parts already opened and checked: `stepper` (bundle, policy, preprocessing), a started
    `camera`, a `link` whose autopilot is known, an optional `log`. `on_change(decision)` is called at every change
    of safety state (console messages)."""

    def __init__(self, config: OnboardConfig, stepper: PolicyStepper, camera: CameraReader, link: MavlinkLink,
                 log: FlightLog | None, engage: bool = False,
                 on_change: Callable[[Decision], None] | None = None) -> None:
        status = link.status()
        assert status.autopilot is not None, "open the link and wait for the autopilot first"
        self.config, self.stepper, self.camera, self.link, self.log = config, stepper, camera, link, log
        self.autopilot = status.autopilot
        self.period = 1.0 / (config.rate_hz or stepper.bundle.rate_hz)
        self.safety = SafetyMachine(safety_limits(config, stepper.bundle, self.autopilot.pre_stream_s, engage))
        self.on_change = on_change
        self._frame_shape = (stepper.image_spec.input_height, stepper.image_spec.input_width, 3)
        self._last_state: State | None = None
        self._last_reason = ""

    def run(self, duration: float | None = None, stop: threading.Event | None = None) -> RunSummary:
        """Run until `duration` seconds pass or `stop` is set (or a signal: see `stop_on_signals`)."""
        stop = stop or threading.Event()
        summary = RunSummary()
        started = time.monotonic()
        last_sequence = -1
        usable: Frame | None = None  # the newest frame of the camera's size
        last_step = started
        last_policy = started - self.period
        try:
            with stop_on_signals(stop) as signals:
                while not stop.is_set():
                    now = time.monotonic()
                    if duration is not None and now - started >= duration:
                        summary.ended = "duration"
                        break
                    earliest = last_policy + 0.75 * self.period
                    if now < earliest:
                        stop.wait(earliest - now)
                    frame = self.camera.wait_newer(last_sequence, max(0.0, last_step + 1.5 * self.period -
                                                                      time.monotonic()))
                    new_frame = frame is not None and frame.image.shape == self._frame_shape
                    if frame is not None:
                        last_sequence = frame.sequence
                    if new_frame:
                        usable = frame
                    now = last_step = time.monotonic()
                    status = self.link.status()
                    decision = self.safety.update(self._observe(now, status, usable, new_frame))
                    if decision.request_mode:
                        self.link.request_mode()
                    if decision.reset_hidden:
                        self.stepper.reset()
                    action = dt = inference_ms = None
                    if decision.run_policy:
                        assert usable is not None
                        state = self._state(status)
                        action, dt, inference_ms = self.stepper.step(usable, state)
                        decision = self.safety.command(action, dt)
                        last_policy = now
                        summary.policy_steps += 1
                        summary.inference_ms.append(inference_ms)
                    if decision.setpoint is not None and self.link.send_velocity(decision.setpoint):
                        summary.setpoints_sent += 1
                    self._record(summary, decision, status, usable, now, action, dt, inference_ms)
                else:
                    summary.ended = f"stopped by {signals[0]}" if signals else "stopped"
        except KeyboardInterrupt:  # a second Ctrl-C: still stop the vehicle and close the log
            summary.ended = "interrupted"
        finally:
            summary.seconds = time.monotonic() - started
            if self.safety.state in (State.ENGAGED, State.HOLD):
                for _ in range(FINAL_ZERO_SETPOINTS):
                    summary.setpoints_sent += int(self.link.send_velocity(np.zeros(4)))
                    time.sleep(0.02)
            summary.camera_reopens = self.camera.reopens
            if self.log is not None:
                self.log.close(ended=summary.ended or "error", **{k: v for k, v in summary.to_dict().items()
                                                                   if k not in ("ended", "steps", "log", "log_parts")})
                # Named after closing: rotation may have deleted the first parts, the path the run began with.
                summary.log, summary.log_parts = str(self.log.parts[0]), len(self.log.parts)
        return summary

    def _observe(self, now: float, status: LinkStatus, frame: Frame | None, new_frame: bool) -> Observation:
        position = None if status.position is None else (status.position.x, status.position.y, -status.position.z)
        return Observation(now=now, heartbeat_age=status.heartbeat_age(now), engaged_mode=status.engaged(),
                           mode_name=status.mode_name(), frame_age=None if frame is None else now - frame.arrival,
                           new_frame=new_frame, telemetry_age=status.telemetry_age(now), position=position,
                           mode_ack=status.mode_ack)

    @staticmethod
    def _state(status: LinkStatus) -> np.ndarray | None:
        if status.attitude is None or status.position is None:
            return None
        return state_vector(status.attitude, status.position)

    def _record(self, summary: RunSummary, decision: Decision, status: LinkStatus, frame: Frame | None, now: float,
                action: np.ndarray | None, dt: float | None, inference_ms: float | None) -> None:
        # A change of state, or of reason other than its figures (ages count up every step), is news.
        reason = re.sub(r"[0-9.]+", "#", decision.reason)
        changed = decision.state is not self._last_state or reason != self._last_reason
        self._last_state, self._last_reason = decision.state, reason
        summary.steps += 1
        summary.states[decision.state] += 1
        if changed and self.on_change is not None:
            self.on_change(decision)
        if self.log is not None:
            self.log.step(t=time.time(), frame_age_s=None if frame is None else now - frame.arrival,
                          inference_ms=inference_ms, dt_s=dt, action=action,
                          command_ned=None if decision.setpoint is None else flu_ned(decision.setpoint),
                          state=self._state(status), safety=decision.state.value, reason=decision.reason,
                          mode=status.mode_name())

