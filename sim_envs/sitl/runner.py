"""The real-time SITL loop: steps the task env against the wall clock and serves it as a MAVLink vehicle with a camera.

One thread does everything but the camera stream's client threads: it steps the env at the camera rate (the last
setpoint is held between steps), publishes each frame, sends ATTITUDE and LOCAL_POSITION_NED right after each step
and the slower telemetry in between, and answers MAVLink messages while it waits for the next step. A step that
starts late is an overrun (counted and reported per episode); a loop more than a whole step behind re-anchors its
clock instead of racing to catch up, so simulated time then runs slower than the wall clock, never faster.

With `engage_wait_s`, each episode's world stands still after its reset (no step: the vehicle hovers, the same frame
and state go out at the camera's rate, MAVLink is answered) until a client switches the vehicle to its setpoint mode
(OFFBOARD / GUIDED), or the wait's limit passes; then its clock starts, and its time limit and faults count from
there. A rehearsal started by hand in two terminals then loses nothing to the time it takes to start the second.

Events (`on_event`, plain dicts with an "event" key) tell a harness what happens: "ready" (sockets bound, first frame
published: clients may connect), "episode_start", "clock_start" (only with `engage_wait_s`: the wait ended, "by"
"engage" or "wait limit", after "waited_s"), "mode" (every flight-mode change, with who made it), "fault" (a fault
window starts or ends), "episode" (an episode ended: EpisodeReport.to_dict(); its wall_s counts from the clock's start).
"""

from __future__ import annotations

import errno
import math
import select
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim_envs.sitl.autopilot import FLAVOURS, Autopilot
from sim_envs.sitl.camera_stream import CameraStream, corrupt_jpeg, encode_jpeg
from sim_envs.sitl.config import SitlConfig
from sim_envs.sitl.faults import Fault
from sim_envs.sitl.link import BindError, MavlinkLink, PortInUseError, TcpServer, UdpPeer, bind_socket
from sim_envs.sitl.telemetry import Parameters, Snapshot, Telemetry
from sim_envs.sitl.vehicle import SEVERITY_NOTICE, SEVERITY_WARNING, MavlinkVehicle

OVERRUN_FRACTION = 0.25  # a step starting this fraction of a period late is an overrun
_MAX_WAIT_S = 0.01  # the loop polls sockets at least this often


@dataclass
class EpisodeReport:
    """How one SITL episode went. `time_s` is simulated time, `wall_s` wall-clock time; real-time figures: steps,
    overruns (steps started > OVERRUN_FRACTION of a period late), the worst lateness and the median env.step time."""

    episode: int
    seed: int
    ending: str
    success: bool
    time_s: float
    wall_s: float
    final_distance_m: float | None
    steps: int
    overruns: int
    max_late_ms: float
    step_ms_median: float
    frames_published: int
    mavlink_sent: int
    mavlink_dropped: int

    def to_dict(self) -> dict[str, Any]:
        return {"event": "episode", **asdict(self)}


class Sitl:
    """A SITL vehicle for `config`: binds its sockets (PortInUseError names the option whose port is taken; BindError
    a host it cannot resolve or bind), starts the camera stream and builds the env, in that order, so that a taken
    port costs nothing. Use as a context manager, or call `close()`; `run()` flies the episodes. Everything runs in
    the calling thread except the stream's client threads; to run it in-process, construct and run it in one
    background thread and end it with `stop`."""

    def __init__(self, config: SitlConfig, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.flavour = FLAVOURS[config.autopilot]
        self.link_config = config.link.resolved(config.autopilot)
        self._on_event = on_event or (lambda event: None)
        self._closers: list[Callable[[], None]] = []
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        from sim_envs import make_env
        from sim_envs.camera import CameraConfig

        config, link = self.config, self.link_config
        try:
            host = socket.gethostbyname(link.host)
        except (OSError, UnicodeError) as error:  # socket.gaierror, or a name IDNA cannot encode
            raise BindError(errno.EADDRNOTAVAIL, f"cannot resolve host {link.host!r} "
                                                 f"({getattr(error, 'strerror', None) or error})") from None
        self.link = MavlinkLink([], link.system_id)
        self._closers.append(self.link.close)
        if config.autopilot == "px4":
            sock = bind_socket(socket.SOCK_DGRAM, host, link.local_port, "mavlink local port")
            self.link.transports.append(UdpPeer(sock, (host, link.port)))
        else:
            self.link.transports.append(TcpServer(bind_socket(socket.SOCK_STREAM, host, link.port, "mavlink port")))
        if link.gcs_port:
            sock = bind_socket(socket.SOCK_DGRAM, host, 0, "gcs link")
            self.link.transports.append(UdpPeer(sock, (host, link.gcs_port)))
        try:
            self.camera = CameraStream(config.camera.host, config.camera.port)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError("camera port", (config.camera.host, config.camera.port), "TCP") from None
            raise
        self._closers.append(self.camera.close)
        self.env = make_env(config.task, preset=config.preset, airframe=config.airframe,
                            camera=CameraConfig(**config.camera.camera()), max_seconds=config.max_seconds,
                            task_fov_deg=config.task_fov_deg, render_mode="human" if config.gui else None)
        self._closers.append(self.env.close)
        description = self.env.unwrapped.description()
        self.limits = np.asarray(description.action_limits.as_array(), np.float64)
        self.dt = float(description.dt)
        self.autopilot = Autopilot(self.flavour, config.setpoint_timeout_s)
        self.telemetry = Telemetry(self.link.mav, self.autopilot, config.home, self.dt)
        self.parameters = Parameters(self.autopilot, tuple(self.limits.tolist()))
        self._boot = time.monotonic()
        self.vehicle = MavlinkVehicle(self.autopilot, self.telemetry, self.parameters, self._send, self._snapshot,
                                      link.system_id)

    # --- where clients connect --------------------------------------------------------------------------------
    def endpoints(self) -> dict[str, str | None]:
        """Connection strings: "mavlink" (a pymavlink/MAVSDK-style URL for the offboard client: `udpin:HOST:PORT`
        for PX4, `tcp:HOST:PORT` for ArduPilot), "gcs" (`udpin:HOST:PORT` or None), "camera" (the stream URL) and
        "vehicle_udp" (PX4: HOST:PORT of the vehicle's own UDP socket, for a client that sends first, e.g.
        `udpout:HOST:PORT`; None for ArduPilot)."""
        link = self.link_config
        host = link.host
        if self.config.autopilot == "px4":
            mavlink = f"udpin:{host}:{link.port}"
        else:
            mavlink = f"tcp:{host}:{self.link.transports[0].local[1]}"
        gcs = f"udpin:{host}:{link.gcs_port}" if link.gcs_port else None
        return {"mavlink": mavlink, "gcs": gcs, "camera": self.camera.url,
                "vehicle_udp": (f"{host}:{self.link.transports[0].local[1]}" if self.config.autopilot == "px4"
                                else None)}

    # --- the loop ---------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> list[EpisodeReport]:
        """Fly the episodes (seeds seed, seed+1, ...) in real time; returns their reports. `stop` (set from another
        thread) ends the run at once; the episode in progress is then not reported."""
        reports = []
        for index in range(self.config.episodes):
            report = self._episode(index, self.config.seed + index, stop)
            if report is None:
                break
            reports.append(report)
            self._on_event(report.to_dict())
        if len(reports) == self.config.episodes:
            self.vehicle.text(f"SITL: all {len(reports)} episodes done", SEVERITY_NOTICE)
            self.link.poll(math.inf)  # let delayed packets go before the sockets close
        return reports

    def _episode(self, index: int, seed: int, stop: threading.Event | None) -> EpisodeReport | None:
        config, env = self.config, self.env
        _, info = env.reset(seed=seed)
        self.autopilot.reset()
        rng = np.random.default_rng(seed)
        self.link.rng = np.random.default_rng(rng.integers(2**63))
        self._fault_rng = np.random.default_rng(rng.integers(2**63))
        self.link.set_faults(0.0, 0.0, False)
        self._active_faults: set[Fault] = set()
        self._mode_changes: dict[Fault, str] = {}
        self._publish(0.0)
        now = time.monotonic()
        self._send_state(now, after_step=True)
        if index == 0:
            self._on_event({"event": "ready", **self.endpoints(), "autopilot": config.autopilot})
        engage_mode = self.flavour.setpoint_mode
        self._on_event({"event": "episode_start", "episode": index, "seed": seed,
                        "engage_wait_s": config.engage_wait_s, "engage_mode": engage_mode})
        self.vehicle.text(f"Episode {index + 1}/{config.episodes} seed {seed}: "
                          + (f"waiting for {engage_mode}" if config.engage_wait_s else "start"), SEVERITY_NOTICE)
        self._mode = self.autopilot.mode.name
        sent0, dropped0 = self.link.sent, self.link.dropped
        frames, late, step_times, overruns = 0, 0.0, [], 0
        start = now
        next_step = now + self.dt
        # Until a client engages the vehicle (or this monotonic time passes) the world stands still: a user who starts
        # the onboard runtime a minute later still gets the whole episode. None: the clock runs.
        wait_end = now + config.engage_wait_s if config.engage_wait_s else None
        while True:
            if stop is not None and stop.is_set():
                return None
            now = time.monotonic()
            self._apply_faults(env.unwrapped.time, now)
            for message in self.link.poll(now):
                self.vehicle.handle(message, now)
            self._note_mode("command")
            failsafe = self.autopilot.update(now)
            if failsafe:
                self.vehicle.text(failsafe, SEVERITY_WARNING)
                self._note_mode("failsafe")
            self._send_state(now, after_step=False)
            if wait_end is not None:
                engaged = self.autopilot.mode.behaviour == "setpoints"
                if engaged or now >= wait_end:
                    self._on_event({"event": "clock_start", "episode": index, "waited_s": round(now - start, 3),
                                    "by": "engage" if engaged else "wait limit"})
                    self.vehicle.text(f"Episode {index + 1} seed {seed}: start", SEVERITY_NOTICE)
                    wait_end, start, next_step = None, now, now + self.dt
                elif now >= next_step:  # standing still: the same frame and state, at the camera's rate
                    self._publish(env.unwrapped.time)
                    self._send_state(time.monotonic(), after_step=True)
                    next_step = max(next_step + self.dt, time.monotonic() - self.dt)
            elif now >= next_step:
                lateness = now - next_step
                late = max(late, lateness)
                overruns += lateness > OVERRUN_FRACTION * self.dt
                began = time.perf_counter()
                _, _, terminated, truncated, info = env.step(self._action())
                step_times.append(time.perf_counter() - began)
                frames += self._publish(env.unwrapped.time)
                self._send_state(time.monotonic(), after_step=True)
                # Behind by more than a step: re-anchor rather than run steps back to back to catch up.
                next_step = max(next_step + self.dt, time.monotonic() - self.dt)
                if terminated or truncated:
                    break
            self._wait(min(next_step, self.link.next_due() or math.inf))
        ending = info["ending"]
        distance = info.get("distance")
        report = EpisodeReport(
            episode=index, seed=seed, ending=ending, success=bool(info["success"]), time_s=round(info["time"], 3),
            wall_s=round(time.monotonic() - start, 3),
            final_distance_m=round(distance, 3) if distance is not None and math.isfinite(distance) else None,
            steps=len(step_times), overruns=int(overruns), max_late_ms=round(late * 1000, 1),
            step_ms_median=round(statistics.median(step_times) * 1000, 2) if step_times else 0.0,
            frames_published=frames, mavlink_sent=self.link.sent - sent0, mavlink_dropped=self.link.dropped - dropped0)
        self.vehicle.text(f"Episode {index + 1} seed {seed}: {ending} after {info['time']:.1f} s",
                          SEVERITY_NOTICE if report.success else SEVERITY_WARNING)
        return report

    def _wait(self, until: float) -> None:
        """Sleep until `until` (monotonic s) or until a MAVLink packet arrives, whichever is first."""
        timeout = min(until - time.monotonic(), _MAX_WAIT_S)
        if timeout > 0:
            select.select(self.link.sockets(), [], [], timeout)

    def _action(self) -> np.ndarray:
        """The normalised env action for the setpoint in force (zero: hold)."""
        setpoint = self.autopilot.active_setpoint()
        if setpoint is None:
            return np.zeros(4, np.float32)
        command = np.asarray(setpoint.to_flu(self.env.unwrapped.vehicle_state.yaw), np.float64)
        return np.clip(command / self.limits, -1.0, 1.0).astype(np.float32)

    def _publish(self, t: float) -> int:
        """Publish the env's newest camera image to the stream, subject to the camera faults; 1 if published."""
        faults = self.config.faults
        if faults.active("camera-stall", t):
            return 0
        drop = faults.value("camera-drop", t)
        if drop is not None and self._fault_rng.random() < drop:
            return 0
        jpeg = encode_jpeg(self.env.unwrapped.last_image, self.config.camera.quality)
        corrupt = faults.value("camera-corrupt", t)
        if corrupt is not None and self._fault_rng.random() < corrupt:
            jpeg = corrupt_jpeg(jpeg, self._fault_rng)
        self.camera.publish(jpeg)
        return 1

    def _apply_faults(self, t: float, now: float) -> None:
        faults = self.config.faults
        for fault in faults.faults:
            active = fault.active(t)
            if active == (fault in self._active_faults):
                continue
            if active:
                self._active_faults.add(fault)
            else:
                self._active_faults.discard(fault)
            self._on_event({"event": "fault", "fault": fault.spec(), "state": "start" if active else "end",
                            "time": round(t, 3)})
            if fault.kind == "mode-change":
                self._operator_mode_change(fault, active, now)
        latency = faults.value("mavlink-latency", t)
        self.link.set_faults(faults.value("mavlink-loss", t) or 0.0, (latency or 0.0) / 1000.0,
                             faults.active("heartbeat-silence", t))

    def _operator_mode_change(self, fault: Fault, starting: bool, now: float) -> None:
        """An operator switches to the hold mode (starting) and later back to the mode they left."""
        hold = self.flavour.mode(self.flavour.hold_mode)
        if starting:
            self._mode_changes[fault] = self.autopilot.mode.name
            target = hold
        else:
            target = self.flavour.mode(self._mode_changes.pop(fault, hold.name))
        answer = self.autopilot.request_mode(target.custom_mode, now)
        self.vehicle.text(f"Operator: mode {target.name} {answer.result.name.lower()}", SEVERITY_NOTICE)
        if answer.text:
            self.vehicle.text(answer.text, SEVERITY_WARNING)
        self._note_mode("operator")

    def _note_mode(self, by: str) -> None:
        """A "mode" event when the mode changed since the last note; `by`: command, failsafe or operator."""
        if self.autopilot.mode.name != self._mode:
            self._mode = self.autopilot.mode.name
            self._on_event({"event": "mode", "mode": self._mode, "by": by, "time": round(self.env.unwrapped.time, 3)})

    # --- telemetry --------------------------------------------------------------------------------------------
    def _send(self, message: Any) -> None:
        self.link.send(message, time.monotonic())

    def _snapshot(self) -> Snapshot:
        state = self.env.unwrapped.vehicle_state
        return Snapshot(time_boot_ms=int((time.monotonic() - self._boot) * 1000),
                        position=tuple(float(v) for v in state.position),
                        velocity=tuple(float(v) for v in state.velocity), roll=float(state.roll),
                        pitch=float(state.pitch), yaw=float(state.yaw),
                        rates=tuple(float(v) for v in state.angular_velocity_body))

    def _send_state(self, now: float, after_step: bool) -> None:
        names = self.telemetry.due(now, after_step)
        if names:
            state = self._snapshot()
            for name in names:
                self._send(self.telemetry.encode(name, state))

    def close(self) -> None:
        """Close the sockets, the stream and the env (idempotent)."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> Sitl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
