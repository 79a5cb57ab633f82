"""The MAVLink link to the autopilot, through pymavlink: connect, announce the companion computer, follow the
vehicle's heartbeat, mode and telemetry, send setpoints and mode requests.

Threads: one daemon receive thread reads every message (select with a 50 ms timeout, so it stops promptly), keeps
the newest HEARTBEAT facts, ATTITUDE, LOCAL_POSITION_NED and DO_SET_MODE COMMAND_ACK with their monotonic arrival
times, and sends the companion's own HEARTBEAT at 1 Hz. The control loop reads a consistent `LinkStatus` snapshot
(under a lock, never blocking on the network) and sends from its own thread; a lock serialises every send (pymavlink's
sequence counter is not thread-safe).

Identity (FACTS): the companion's HEARTBEAT carries the vehicle's system id, component 191
(MAV_COMP_ID_ONBOARD_COMPUTER) and MAV_TYPE_ONBOARD_CONTROLLER, never a ground station's identity (which would mask
the autopilot's GCS-loss failsafe). Nothing is sent before the autopilot's first heartbeat (its system id is unknown
until then, and a `udpin` link learns where to send from it). The autopilot is the first system whose HEARTBEAT
names an autopilot (not MAV_AUTOPILOT_INVALID) and is not a ground station or companion; later messages from other
systems are ignored.

URLs are pymavlink's: `udpin:0.0.0.0:14540` (listen; PX4 SITL's offboard link sends there), `udpout:HOST:PORT`,
`tcp:127.0.0.1:5760` (ArduPilot SITL), `tcpin:`, or a serial device `/dev/ttyACM0` (`,BAUD` appended sets the baud
rate). MAVLink 2 framing; a TCP link that drops is reconnected by the receive thread (one attempt per second).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MAVLINK20", "1")  # pymavlink picks its framing from this when it is imported
from pymavlink import mavutil  # noqa: E402

from navigator.errors import UserError  # noqa: E402
from navigator.onboard.autopilot import MAV_CMD_DO_SET_MODE, VELOCITY_YAW_RATE_MASK, Autopilot, autopilot_for  # noqa: E402,E501
from navigator.onboard.frames import Attitude, LocalPosition, flu_ned  # noqa: E402

if mavutil.mavlink.WIRE_PROTOCOL_VERSION != "2.0":  # imported before us with MAVLink 1 framing
    mavutil.set_dialect(mavutil.current_dialect)

MAV_COMP_ID_ONBOARD_COMPUTER = 191
MAV_TYPE_ONBOARD_CONTROLLER = 18
MAV_TYPE_GCS = 6
MAV_AUTOPILOT_INVALID = 8
MAV_STATE_ACTIVE = 4
MAV_MODE_FLAG_SAFETY_ARMED = 128
HEARTBEAT_PERIOD_S = 1.0
_URL_PREFIXES = ("udpin:", "udpout:", "udp:", "udpbcast:", "tcp:", "tcpin:", "/dev/", "COM")


@dataclass(frozen=True)
class LinkStatus:
    """A snapshot of what the link knows. Times are time.monotonic() seconds of arrival; None: never received.
    `heartbeat_time` is the newest arrival of anything from the autopilot (its HEARTBEAT or telemetry).
    `mode_ack` is the result of the newest COMMAND_ACK to DO_SET_MODE since the last `request_mode` (None: none)."""

    autopilot: Autopilot | None
    system_id: int | None
    component_id: int | None
    heartbeat_time: float | None
    custom_mode: int
    armed: bool
    attitude: Attitude | None
    attitude_time: float | None
    position: LocalPosition | None
    position_time: float | None
    mode_ack: int | None
    statustext: str | None  # the newest STATUSTEXT from the autopilot

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.heartbeat_time is None else now - self.heartbeat_time

    def telemetry_age(self, now: float) -> float | None:
        """Age of the older of ATTITUDE and LOCAL_POSITION_NED (the state vector needs both)."""
        if self.attitude_time is None or self.position_time is None:
            return None
        return now - min(self.attitude_time, self.position_time)

    def engaged(self) -> bool:
        return self.autopilot is not None and self.autopilot.is_engaged(self.custom_mode)

    def mode_name(self) -> str:
        return "unknown" if self.autopilot is None else self.autopilot.mode_name(self.custom_mode)


def check_url(url: str) -> None:
    """UserError for a MAVLink URL pymavlink would not read as a network or serial link."""
    if not url.startswith(_URL_PREFIXES):
        raise UserError(f"--mavlink {url!r} is not a MAVLink connection URL; use e.g. udpin:0.0.0.0:14540 (PX4 "
                        f"SITL), tcp:127.0.0.1:5760 (ArduPilot SITL) or a serial device such as /dev/ttyACM0,921600")
    if url.startswith(("udp", "tcp")):
        host_port = url.split(":", 1)[1]
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"--mavlink {url!r}: expected HOST:PORT after {url.split(':', 1)[0]}:, e.g. "
                            f"udpin:0.0.0.0:14540")


class MavlinkLink:
    """A MAVLink connection to one autopilot. `open()` connects (UserError when the URL cannot be opened),
    `wait_for_autopilot(timeout)` waits for its heartbeat, `close()` stops the thread and closes the socket."""

    def __init__(self, url: str) -> None:
        check_url(url)
        self.url = url
        self._lock = threading.Lock()  # guards the status fields
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._heard = threading.Event()
        self._connection: mavutil.mavfile | None = None
        self._thread = threading.Thread(target=self._run, name="mavlink-link", daemon=True)
        self._start = time.monotonic()
        self._autopilot: Autopilot | None = None
        self._unsupported: int | None = None
        self._system_id: int | None = None
        self._component_id: int | None = None
        self._heartbeat_time: float | None = None
        self._custom_mode = 0
        self._armed = False
        self._attitude: Attitude | None = None
        self._attitude_time: float | None = None
        self._position: LocalPosition | None = None
        self._position_time: float | None = None
        self._mode_ack: int | None = None
        self._statustext: str | None = None
        self._confirmation = 0
        self.sent_setpoints = 0

    def open(self, timeout: float = 0.0) -> MavlinkLink:
        """Open the connection; a TCP server that refuses is retried for up to `timeout` s (it may be starting)."""
        device, baud = (self.url.split(",", 1) + ["115200"])[:2] if self.url.startswith(("/dev/", "COM")) else \
            (self.url, "115200")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connection = mavutil.mavlink_connection(
                    device, baud=int(baud), source_system=1, source_component=MAV_COMP_ID_ONBOARD_COMPUTER,
                    autoreconnect=True, retries=0, reconnect_delay=0)
                break
            except ConnectionRefusedError as error:
                if time.monotonic() >= deadline:
                    raise UserError(f"--mavlink {self.url}: connection refused ({error}); is the autopilot or SITL "
                                    f"listening there?") from None
                time.sleep(0.5)
            except (OSError, ValueError) as error:
                raise UserError(f"--mavlink {self.url}: cannot open the link ({error}); check the address and that "
                                f"the port is free (udpin)") from None
        self._thread.start()
        return self

    def wait_for_autopilot(self, timeout: float) -> LinkStatus:
        """The status once the autopilot's first heartbeat arrived; UserError after `timeout` s without one, or for
        an autopilot flavour the runtime does not fly."""
        if not self._heard.wait(timeout):
            raise UserError(f"--mavlink {self.url}: no autopilot heartbeat within {timeout:g} s; is the autopilot (or "
                            f"navigator sitl) running and sending to this address?")
        if self._unsupported is not None:
            raise UserError(f"--mavlink {self.url}: the autopilot reports MAV_AUTOPILOT {self._unsupported}; the "
                            f"runtime flies PX4 (12) and ArduPilot (3)")
        return self.status()

    def status(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(self._autopilot, self._system_id, self._component_id, self._heartbeat_time,
                              self._custom_mode, self._armed, self._attitude, self._attitude_time, self._position,
                              self._position_time, self._mode_ack, self._statustext)

    def send_velocity(self, command_flu: np.ndarray) -> bool:
        """Send a body-frame velocity + yaw-rate setpoint for FLU `command_flu` [vx, vy, vz m/s, yaw rate rad/s]
        (converted to body NED by `frames.flu_ned`) in the autopilot's body frame; False (nothing sent) before the
        autopilot is known."""
        autopilot, target = self._autopilot, self._system_id
        if autopilot is None or target is None or self._connection is None:
            return False
        vx, vy, vz, yaw_rate = (float(v) for v in flu_ned(command_flu))
        with self._send_lock:
            self._connection.mav.set_position_target_local_ned_send(
                self._boot_ms(), target, self._component_id or 1, autopilot.body_frame, VELOCITY_YAW_RATE_MASK,
                0.0, 0.0, 0.0, vx, vy, vz, 0.0, 0.0, 0.0, 0.0, yaw_rate)
        self.sent_setpoints += 1
        return True

    def request_mode(self) -> bool:
        """Send MAV_CMD_DO_SET_MODE into the autopilot's engaged mode (a resend counts up `confirmation`, as the
        command protocol asks); clears the last mode ack. False before the autopilot is known."""
        autopilot, target = self._autopilot, self._system_id
        if autopilot is None or target is None or self._connection is None:
            return False
        with self._lock:
            self._mode_ack = None
        with self._send_lock:
            self._connection.mav.command_long_send(target, self._component_id or 1, MAV_CMD_DO_SET_MODE,
                                                   self._confirmation, *autopilot.mode_request())
        self._confirmation = min(self._confirmation + 1, 255)
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        # pymavlink drops a TCP connection's socket (port None) when the autopilot closed it: nothing left to close.
        if self._connection is not None and getattr(self._connection, "port", None) is not None:
            self._connection.close()

    def _boot_ms(self) -> int:
        return int((time.monotonic() - self._start) * 1000) & 0xFFFFFFFF

    def _run(self) -> None:
        connection = self._connection
        assert connection is not None
        next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            try:
                message = connection.recv_match(blocking=True, timeout=0.05)
            except OSError:  # a TCP peer went away: pymavlink reconnects on the next read; try once a second
                self._stop.wait(1.0)
                continue
            if message is not None:
                self._handle(message)
            now = time.monotonic()
            if now >= next_heartbeat and self._system_id is not None:
                next_heartbeat = now + HEARTBEAT_PERIOD_S
                with self._send_lock:
                    try:
                        connection.mav.heartbeat_send(MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, 0, 0,
                                                      MAV_STATE_ACTIVE)
                    except OSError:
                        pass

    def _handle(self, message: object) -> None:
        kind = message.get_type()
        if kind == "BAD_DATA":
            return
        source = (message.get_srcSystem(), message.get_srcComponent())
        now = time.monotonic()
        if kind == "HEARTBEAT" and self._system_id is None:
            if message.autopilot == MAV_AUTOPILOT_INVALID or message.type in (MAV_TYPE_GCS,
                                                                               MAV_TYPE_ONBOARD_CONTROLLER):
                return
            autopilot = autopilot_for(message.autopilot)
            if autopilot is None:
                self._unsupported = message.autopilot
                self._heard.set()
                return
            with self._lock:
                self._system_id, self._component_id, self._autopilot = source[0], source[1], autopilot
            connection = self._connection
            assert connection is not None
            # Our messages carry the vehicle's system id (FACTS: a companion is part of its vehicle).
            connection.source_system = connection.mav.srcSystem = source[0]
        if source != (self._system_id, self._component_id):
            return
        with self._lock:
            # Anything the autopilot sends shows the link alive: on a link that drops one message in five, three
            # heartbeats in a row go missing now and then while telemetry still streams at 30-50 Hz.
            self._heartbeat_time = now
            if kind == "HEARTBEAT":
                self._custom_mode = int(message.custom_mode)
                self._armed = bool(message.base_mode & MAV_MODE_FLAG_SAFETY_ARMED)
            elif kind == "ATTITUDE":
                self._attitude = Attitude(message.roll, message.pitch, message.yaw, message.yawspeed)
                self._attitude_time = now
            elif kind == "LOCAL_POSITION_NED":
                self._position = LocalPosition(message.x, message.y, message.z, message.vx, message.vy, message.vz)
                self._position_time = now
            elif kind == "COMMAND_ACK" and message.command == MAV_CMD_DO_SET_MODE:
                self._mode_ack = int(message.result)
            elif kind == "STATUSTEXT":
                self._statustext = str(message.text)
        if kind == "HEARTBEAT":
            self._heard.set()
