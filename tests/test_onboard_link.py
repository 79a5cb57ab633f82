"""The MAVLink link against a fake autopilot made of real pymavlink sockets on loopback: companion identity,
autopilot flavour and mode, telemetry, setpoint encoding (frame, type_mask, NED signs) and the mode request, over
UDP (PX4's convention) and TCP (ArduPilot's)."""

import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from onboard_support import ARDU_GUIDED, PX4_OFFBOARD, FakeAutopilot, free_port

from navigator.errors import UserError
from navigator.onboard.link import MavlinkLink, check_url
from pymavlink import mavutil

# Real time (heartbeats and reconnection are wall-clock):
# in the suite's serial pass (`pytest -m serial`), never beside another test file.
pytestmark = pytest.mark.serial


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_px4_over_udp() -> None:
    port = free_port()
    link = MavlinkLink(f"udpin:127.0.0.1:{port}").open()
    vehicle = FakeAutopilot(f"udpout:127.0.0.1:{port}", "px4", system_id=7).start()
    try:
        status = link.wait_for_autopilot(5.0)
        assert status.autopilot.name == "px4" and status.system_id == 7 and status.armed
        assert status.mode_name() == "AUTO.LOITER" and not status.engaged()
        wait_for(lambda: link.status().telemetry_age(time.monotonic()) is not None)
        assert link.status().position.z == pytest.approx(-2.0)
        # The companion's own heartbeat: the vehicle's system id, component 191, MAV_TYPE_ONBOARD_CONTROLLER.
        wait_for(lambda: vehicle.heartbeats)
        beat = vehicle.heartbeats[0]
        assert (beat.get_srcSystem(), beat.get_srcComponent(), beat.type, beat.autopilot) == (7, 191, 18, 8)
        for _ in range(10):
            assert link.send_velocity(np.array([1.0, 0.5, 0.25, 0.3]))
            time.sleep(0.02)
        wait_for(lambda: len(vehicle.setpoints) >= 10)
        message = vehicle.setpoints[-1][1]
        assert (message.coordinate_frame, message.type_mask, message.target_system) == (8, 0x05C7, 7)
        assert (message.vx, message.vy, message.vz, message.yaw_rate) == pytest.approx((1.0, -0.5, -0.25, -0.3))
        assert link.request_mode()
        wait_for(lambda: link.status().engaged())
        assert link.status().mode_ack == 0 and link.status().mode_name() == "OFFBOARD"
        assert vehicle.custom_mode == PX4_OFFBOARD
        vehicle.silent.set()
        time.sleep(0.5)
        assert link.status().heartbeat_age(time.monotonic()) > 0.3
    finally:
        vehicle.close()
        link.close()


def test_telemetry_keeps_the_link_alive_when_heartbeats_drop() -> None:
    # A lossy radio drops single heartbeats while ATTITUDE streams at 30 Hz: the autopilot is still there.
    port = free_port()
    link = MavlinkLink(f"udpin:127.0.0.1:{port}").open()
    vehicle = FakeAutopilot(f"udpout:127.0.0.1:{port}", "px4").start()
    try:
        link.wait_for_autopilot(5.0)
        vehicle.no_heartbeats.set()
        time.sleep(0.6)
        assert link.status().heartbeat_age(time.monotonic()) < 0.3
        vehicle.silent.set()
        time.sleep(0.6)
        assert link.status().heartbeat_age(time.monotonic()) > 0.5
    finally:
        vehicle.close()
        link.close()


def test_ardupilot_over_tcp() -> None:
    port = free_port(socket.SOCK_STREAM)
    vehicle = FakeAutopilot(f"tcpin:127.0.0.1:{port}", "ardupilot").start()
    link = MavlinkLink(f"tcp:127.0.0.1:{port}").open(timeout=5.0)
    try:
        status = link.wait_for_autopilot(5.0)
        assert status.autopilot.name == "ardupilot" and status.mode_name() == "LOITER"
        link.send_velocity(np.array([0.5, 0.0, 0.0, 0.0]))
        wait_for(lambda: vehicle.setpoints)
        assert vehicle.setpoints[0][1].coordinate_frame == 9  # MAV_FRAME_BODY_OFFSET_NED
        link.request_mode()
        wait_for(lambda: link.status().engaged())
        assert vehicle.custom_mode == ARDU_GUIDED and link.status().mode_name() == "GUIDED"
    finally:
        link.close()
        vehicle.close()


def test_no_autopilot_is_a_user_error() -> None:
    link = MavlinkLink(f"udpin:127.0.0.1:{free_port()}").open()
    try:
        with pytest.raises(UserError, match="no autopilot heartbeat within 0.3 s"):
            link.wait_for_autopilot(0.3)
    finally:
        link.close()


def test_refused_tcp_fails_at_once_and_bad_urls_are_user_errors() -> None:
    # Refused, not "no answer within 30 s": the refusal is known at once, without waiting out the timeout.
    with pytest.raises(UserError, match="connection refused: nothing accepts connections .* ArduPilot|"
                                        "connection refused: nothing accepts .*navigator sitl --autopilot ardupilot"):
        MavlinkLink(f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}").open(timeout=30.0)
    for url in ("14540", "udp:localhost", "http://x", "/dev/ttyACM0,fast", "/dev/ttyACM0,0", "/dev/,57600"):
        with pytest.raises(UserError, match="--mavlink"):
            check_url(url)
    for url in ("udpin:127.0.0.1:99999", "tcp:127.0.0.1:0"):  # the form is right; the number is no port
        with pytest.raises(UserError, match="is not a network port \\(1 to 65535\\)"):
            check_url(url)


def test_a_second_listener_on_a_udp_port_is_refused() -> None:
    # pymavlink binds with SO_REUSEADDR: without the check, the second bind succeeds and takes the packets.
    port = free_port()
    first = MavlinkLink(f"udpin:0.0.0.0:{port}").open()
    try:
        for host in ("0.0.0.0", "127.0.0.1"):
            second = MavlinkLink(f"udpin:{host}:{port}")
            with pytest.raises(UserError, match=f"UDP port {port} is already in use: another navigator onboard"):
                second.check()
            with pytest.raises(UserError, match="already in use"):
                second.open()
    finally:
        first.close()
    MavlinkLink(f"udpin:127.0.0.1:{port}").open().close()  # free again once the first closed


def test_a_listen_address_of_another_computer_is_refused() -> None:
    with pytest.raises(UserError, match="192.0.2.1 is not an address of this computer; listen on 0.0.0.0"):
        MavlinkLink(f"udpin:192.0.2.1:{free_port()}").check()


@pytest.mark.parametrize(("scheme", "fix"), [("udpin", "listen on 0.0.0.0"), ("tcpin", "listen on 0.0.0.0"),
                                             ("udpout", "give the autopilot's IP address"),
                                             ("tcp", "give the autopilot's IP address")])
def test_a_host_name_that_does_not_resolve_is_refused_before_any_wait(scheme: str, fix: str) -> None:
    # It used to wait for a heartbeat (or fail to bind) and then ask whether the autopilot was running.
    url = f"{scheme}:notahost.invalid:14540"  # .invalid never resolves (RFC 2606)
    started = time.monotonic()
    with pytest.raises(UserError, match=f"--mavlink {url}: the host name notahost.invalid does not resolve to an IPv4 "
                                        f"address .*; {fix}"):
        MavlinkLink(url).check()
    assert time.monotonic() - started < 10.0
    MavlinkLink(f"{scheme}:localhost:{free_port(socket.SOCK_STREAM)}").check()  # a name that resolves is fine


def test_tcp_link_that_keeps_dropping_retries_quietly(capfd) -> None:
    # A server that accepts and resets every connection: pymavlink alone prints a line per reset and reconnects in a
    # tight loop. Here: one attempt a second, nothing printed, and the reason in the message.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            stop.wait(0.2)  # connected, then dropped: the reconnects are the receive thread's
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = MavlinkLink(f"tcp:127.0.0.1:{server.getsockname()[1]}").open(timeout=5.0)
    try:
        with pytest.raises(UserError, match=r"no autopilot heartbeat within 2.5 s \(the link: .*(reset|closed).*\); "
                                            r"is the autopilot .* serving MAVLink on this TCP port"):
            link.wait_for_autopilot(2.5)
    finally:
        link.close()
        stop.set()
        thread.join(2)
        server.close()
    assert 2 <= len(accepted) <= 5
    captured = capfd.readouterr()
    assert "reconnect" not in captured.out + captured.err and "TCP socket" not in captured.out + captured.err


class PtyAutopilot:
    """A flight controller on a real serial line: the far side of a pseudo-terminal, sending PX4 HEARTBEATs."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.device = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(self.master, False)
        self.mav = mavutil.mavlink.MAVLink(self, srcSystem=3, srcComponent=1)
        self.received = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def write(self, buf: bytes) -> None:
        os.write(self.master, buf)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.mav.heartbeat_send(2, 12, 129, 0, 4)
                self.received += os.read(self.master, 4096)  # what the link sends (its own heartbeat)
            except OSError:  # nothing to read yet, or no one holds the line's other end
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)


def test_serial_link_over_a_real_tty() -> None:
    vehicle = PtyAutopilot()
    link = MavlinkLink(f"{vehicle.device},921600").open()
    try:
        status = link.wait_for_autopilot(5.0)
        assert status.autopilot.name == "px4" and status.system_id == 3
        wait_for(lambda: len(vehicle.received) > 0)  # the companion's heartbeat went down the line
    finally:
        link.close()
        vehicle.close()


def test_serial_problems_are_one_line_user_errors() -> None:
    with pytest.raises(UserError, match="no serial device /dev/ttyNAVIGATOR9; check that the flight controller is "
                                        "connected"):
        MavlinkLink("/dev/ttyNAVIGATOR9,921600").check()
    # pyserial absent (no extra installs it otherwise): named, with the install command. A separate interpreter,
    # where `serial` cannot be imported.
    script = ("import sys; sys.modules['serial'] = None\n"
              "from navigator.onboard.link import MavlinkLink\n"
              "from navigator.errors import UserError\n"
              "try:\n    MavlinkLink(sys.argv[1] + ',921600').open()\nexcept UserError as error:\n    print(error)\n")
    vehicle = PtyAutopilot()
    try:
        result = subprocess.run([sys.executable, "-c", script, vehicle.device], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "a serial link needs pyserial, which is not installed; install it with: pip install pyserial" \
            in result.stdout
    finally:
        vehicle.close()


def test_a_serial_device_this_user_may_not_open_is_a_user_error() -> None:
    # Run as a user without the capabilities that let root open any file (the tests may run as root, as in CI):
    # then file permissions apply, as they do to the service's user on a companion computer.
    script = ("import sys\n"
              "from navigator.onboard.link import MavlinkLink\n"
              "from navigator.errors import UserError\n"
              "try:\n    MavlinkLink(sys.argv[1] + ',57600').check()\nexcept UserError as error:\n    print(error)\n")
    vehicle = PtyAutopilot()
    try:
        os.chmod(vehicle.device, 0)
        without_override = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
        result = subprocess.run([*without_override, sys.executable, "-c", script, vehicle.device],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert f"permission denied on {vehicle.device}; add this user to the group" in result.stdout
    finally:
        vehicle.close()
