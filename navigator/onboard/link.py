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
rate). MAVLink 2 framing.

Opening (`check`, then `open`) refuses at once, with the fix, what cannot work: a serial device that is missing or not
ours to open (or pyserial not installed), a host name that does not resolve, a UDP port another program already
listens on (pymavlink binds with SO_REUSEADDR, so a second listener would bind without error and silently take the
autopilot's packets), an address that is not this computer's. A TCP connection that is refused fails at once:
nothing listens there, and waiting would only hide that (an autopilot that boots later is what the service's restart
is for); one that is not answered fails after the connect timeout. Once connected, a TCP link that drops is
reconnected by the receive thread, one attempt a second, each bounded to a second, without pymavlink's messages on
stdout.
"""

from __future__ import annotations

import errno
import importlib
import os
import socket
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
RECONNECT_TIMEOUT_S = 1.0  # a TCP reconnect attempt of the receive thread waits this long for an answer
_URL_PREFIXES = ("udpin:", "udpout:", "udp:", "udpbcast:", "tcp:", "tcpin:", "/dev/", "COM")
BAUD_RATES = (1200, 12_000_000)  # serial: slow telemetry radios .. the fastest USB-serial bridges


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
    """UserError for a MAVLink URL pymavlink would not read as a network or serial link (syntax only: deploy checks
    the URL on the computer it deploys from, where the device need not exist)."""
    if not url.startswith(_URL_PREFIXES):
        raise UserError(f"--mavlink {url!r} is not a MAVLink connection URL; use e.g. udpin:0.0.0.0:14540 (PX4 "
                        f"SITL), tcp:127.0.0.1:5760 (ArduPilot SITL) or a serial device such as /dev/ttyACM0,921600")
    if _transport(url) == "serial":
        device, _, baud = url.partition(",")
        if device in ("/dev/", "COM"):
            raise UserError(f"--mavlink {url!r}: name the serial device, e.g. /dev/ttyACM0,921600")
        if baud and not (baud.isdigit() and BAUD_RATES[0] <= int(baud) <= BAUD_RATES[1]):
            raise UserError(f"--mavlink {url!r}: the baud rate after the comma must be a whole number from "
                            f"{BAUD_RATES[0]} to {BAUD_RATES[1]}, e.g. {device},921600 (the autopilot's "
                            f"SERIALn_BAUD or SER_TELn_BAUD)")
        return
    host, port = _address(url)
    if not host or not port.isdigit():
        raise UserError(f"--mavlink {url!r}: expected HOST:PORT after {url.split(':', 1)[0]}:, e.g. "
                        f"udpin:0.0.0.0:14540")
    if not 0 < int(port) < 65536:
        raise UserError(f"--mavlink {url!r}: port {int(port)} is not a network port (1 to 65535); PX4 SITL speaks on "
                        f"14540, ArduPilot SITL on 5760")


def _transport(url: str) -> str:
    """"serial", or the URL's scheme ("udpin", "udpout", "udp", "udpbcast", "tcp", "tcpin")."""
    return "serial" if url.startswith(("/dev/", "COM")) else url.split(":", 1)[0]


def _address(url: str) -> tuple[str, str]:
    """(host, port) of a network URL, as text."""
    host, _, port = url.split(":", 1)[1].rpartition(":")
    return host, port


def _listens(url: str) -> bool:
    """Whether pymavlink binds the URL's address (udp: is pymavlink's legacy spelling of udpin:)."""
    return _transport(url) in ("udpin", "udp", "tcpin")


def _hint(url: str) -> str:
    """What to check when this URL's link cannot be opened or stays silent, in the terms of its transport."""
    transport = _transport(url)
    if transport == "serial":
        return ("check the cable and the device name (ls /dev/serial/by-id/), the baud rate (the autopilot's "
                "SERIALn_BAUD or SER_TELn_BAUD) and that MAVLink runs on that port")
    if transport in ("udpin", "udp"):
        return ("is the autopilot (or navigator sitl) running and sending to this port? PX4's offboard link sends "
                "to 14540")
    if transport == "tcp":
        return ("is the autopilot (or navigator sitl --autopilot ardupilot) serving MAVLink on this TCP port? "
                "ArduPilot SITL serves 5760")
    if transport == "tcpin":
        return "is the autopilot configured to connect to this port?"
    return "is the autopilot reachable at this address, and does it send to this computer?"


def _open_problem(url: str, error: BaseException) -> str:
    """The one-line reason and fix for an error opening `url`'s link."""
    transport = _transport(url)
    device = url.partition(",")[0]
    code = getattr(error, "errno", None)
    if transport == "serial":
        if isinstance(error, ImportError):
            return (f"--mavlink {url}: a serial link needs pyserial, which is not installed; install it with: "
                    f"pip install pyserial (the liquid-navigator[onboard] extra includes it)")
        if code == errno.ENOENT:
            return (f"--mavlink {url}: no serial device {device}; check that the flight controller is connected "
                    f"and powered, and its name (ls /dev/serial/by-id/ /dev/ttyACM* /dev/ttyUSB*)")
        if code in (errno.EACCES, errno.EPERM):
            return (f"--mavlink {url}: permission denied on {device}; add this user to the group that owns it "
                    f"(sudo usermod -aG dialout $USER, then log in again)")
    elif code == errno.EADDRINUSE:
        protocol = "TCP" if transport == "tcpin" else "UDP"
        return (f"--mavlink {url}: {protocol} port {_address(url)[1]} is already in use: another navigator onboard or "
                f"another program (a ground station, mavlink-router, mavproxy) listens there; stop it, or give "
                f"another port")
    elif code == errno.EACCES and _listens(url):
        return (f"--mavlink {url}: this user may not listen on port {_address(url)[1]} (ports below 1024 need "
                f"root); use a higher one, e.g. 14540")
    elif code == errno.EADDRNOTAVAIL:
        return (f"--mavlink {url}: {_address(url)[0]} is not an address of this computer; listen on 0.0.0.0 (every "
                f"interface) or on one of its own addresses")
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0] or type(error).__name__
    return f"--mavlink {url}: cannot open the link ({reason}); {_hint(url)}"


def _check_host_resolves(url: str) -> None:
    """UserError when the host of network URL `url` has no IPv4 address (pymavlink's sockets are IPv4): a typing
    error or a name this computer cannot look up, which waiting for a heartbeat would only hide."""
    host, port = _address(url)
    try:
        socket.getaddrinfo(host, int(port), socket.AF_INET)
    except (OSError, UnicodeError) as error:  # socket.gaierror, or a name IDNA cannot encode
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        fix = ("listen on 0.0.0.0 (every interface) or on one of this computer's addresses" if _listens(url) else
               "give the autopilot's IP address, or a name this computer can look up (check its spelling, /etc/hosts "
               "or the name server)")
        raise UserError(f"--mavlink {url}: the host name {host} does not resolve to an IPv4 address ({reason}); "
                        f"{fix}") from None


def _check_port_free(url: str) -> None:
    """UserError when another socket already holds the address `url` listens on.

    pymavlink binds with SO_REUSEADDR, with which Linux lets a second UDP socket bind the same port and take its
    packets: a second runtime would bind without error and silently take the link over. A probe bound without
    SO_REUSEADDR fails if any socket holds the port (whether bound to this host or to 0.0.0.0). For TCP the probe
    sets SO_REUSEADDR like pymavlink, so that connections of an earlier run in TIME_WAIT do not count, while a
    listener does."""
    host, port = _address(url)
    kind = socket.SOCK_STREAM if _transport(url) == "tcpin" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as error:
            raise UserError(_open_problem(url, error)) from None


class _TcpClient(mavutil.mavtcp):
    """pymavlink's TCP client, with every connect bounded in time and silent.

    pymavlink's own connect blocks for minutes on an address that never answers, and it prints each reset and
    reconnect on stdout, once per message on a link that keeps dropping. Here the first connect waits up to
    `connect_timeout_s`; a dropped connection raises to the receive thread, which tries again a second later (each
    attempt bounded to RECONNECT_TIMEOUT_S); a send never reconnects (it would stall the control loop)."""

    def __init__(self, address: str, connect_timeout_s: float, **kwargs: object) -> None:
        self.connect_timeout_s = connect_timeout_s
        super().__init__(address, autoreconnect=True, **kwargs)
        self.connect_timeout_s = RECONNECT_TIMEOUT_S

    def do_connect(self) -> None:
        self.port = socket.create_connection(self.destination_addr, timeout=self.connect_timeout_s)
        self.port.setblocking(False)
        mavutil.set_close_on_exec(self.port.fileno())
        self.port.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.port.fileno()  # what pymavlink's select waits on: the new socket, not the closed one

    def reconnect(self) -> None:
        self._drop()
        self.do_connect()

    def handle_disconnect(self) -> None:  # pymavlink re-raises the reset after this
        self._drop()

    def handle_eof(self) -> None:
        self._drop()
        raise ConnectionResetError(errno.ECONNRESET, "the autopilot closed the connection")

    def write(self, buf: bytes) -> None:
        port = self.port
        if port is None:  # dropped: the receive thread reconnects
            return
        try:
            port.send(buf)
        except OSError:  # a full send buffer or a reset: the packet is lost, as on any MAVLink link
            pass

    def _drop(self) -> None:
        if self.port is not None:
            self.port.close()
        self.port = None
        self.fd = None  # pymavlink's select then sleeps instead of waiting on a closed descriptor


class MavlinkLink:
    """A MAVLink connection to one autopilot. `check()` refuses (UserError) what cannot be opened; `open(timeout)`
    connects; `wait_for_autopilot(timeout)` waits for its heartbeat; `close()` stops the thread and closes the
    socket."""

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
        self._read_error: str | None = None  # the receive thread's newest read error (a dropped TCP link)
        self.sent_setpoints = 0

    def check(self) -> MavlinkLink:
        """UserError, with the fix, for a link that cannot open on this computer: pyserial missing, a serial device
        that does not exist or is not ours to open, an address another program already listens on. Quick and
        side-effect free, so that a command can refuse before it starts any work; `open` checks again. A host name
        that does not resolve is refused too (a lookup: quick, unless the name server itself does not answer)."""
        if _transport(self.url) == "serial":
            try:
                importlib.import_module("serial")  # pymavlink opens serial ports through pyserial, imported late
            except ImportError as error:
                raise UserError(_open_problem(self.url, error)) from None
            device = self.url.partition(",")[0]
            if device.startswith("/dev/"):  # COMn (Windows) names no file
                if not os.path.exists(device):
                    raise UserError(_open_problem(self.url, FileNotFoundError(errno.ENOENT, "no such device")))
                if not os.access(device, os.R_OK | os.W_OK):
                    raise UserError(_open_problem(self.url, PermissionError(errno.EACCES, "permission denied")))
            return self
        self.check_address()
        if _listens(self.url):
            _check_port_free(self.url)
        return self

    def check_address(self) -> MavlinkLink:
        """UserError for a network URL whose host name does not resolve (a setting error, never a link that is down);
        a serial URL passes."""
        if _transport(self.url) != "serial":
            _check_host_resolves(self.url)
        return self

    def open(self, timeout: float = 5.0) -> MavlinkLink:
        """Open the connection (after `check`); a TCP server must answer within `timeout` s (> 0). UserError, naming
        the problem and the fix, when it cannot open; a refused TCP connection fails at once."""
        self.check()
        transport = _transport(self.url)
        identity = {"source_system": 1, "source_component": MAV_COMP_ID_ONBOARD_COMPUTER}
        try:
            if transport == "tcp":
                self._connection = _TcpClient(self.url.split(":", 1)[1], timeout, **identity)
            elif transport == "serial":
                # pymavlink's mavlink_connection would read a device path with a colon (/dev/serial/by-path/...)
                # as a UDP address: the serial class is named directly.
                device, _, baud = self.url.partition(",")
                self._connection = mavutil.mavserial(device, baud=int(baud or 115200), autoreconnect=True, **identity)
            else:
                self._connection = mavutil.mavlink_connection(self.url, **identity)
        except ConnectionRefusedError:
            host, port = _address(self.url)
            raise UserError(f"--mavlink {self.url}: connection refused: nothing accepts connections on {host}:{port}; "
                            f"start the autopilot (or navigator sitl --autopilot ardupilot) first, or check the "
                            f"port") from None
        except TimeoutError:
            host, port = _address(self.url)
            raise UserError(f"--mavlink {self.url}: no answer from {host}:{port} within {timeout:.3g} s; check the "
                            f"address and that this computer can reach it (ping {host})") from None
        except (ImportError, OSError, ValueError, OverflowError) as error:  # pyserial refuses a baud with these two
            raise UserError(_open_problem(self.url, error)) from None
        self._thread.start()
        return self

    def wait_for_autopilot(self, timeout: float) -> LinkStatus:
        """The status once the autopilot's first heartbeat arrived; UserError after `timeout` s without one, or for
        an autopilot flavour the runtime does not fly."""
        if not self._heard.wait(timeout):
            problem = f" (the link: {self._read_error})" if self._read_error else ""
            raise UserError(f"--mavlink {self.url}: no autopilot heartbeat within {timeout:.3g} s{problem}; "
                            f"{_hint(self.url)}")
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
            except OSError as error:  # a TCP peer went away: the next read reconnects; try once a second
                self._read_error = getattr(error, "strerror", None) or str(error) or type(error).__name__
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
