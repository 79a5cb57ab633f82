"""The MAVLink link against a fake autopilot made of real pymavlink sockets on loopback: companion identity,
autopilot flavour and mode, telemetry, setpoint encoding (frame, type_mask, NED signs) and the mode request, over
UDP (PX4's convention) and TCP (ArduPilot's)."""

import socket
import time

import numpy as np
import pytest
from onboard_support import ARDU_GUIDED, PX4_OFFBOARD, FakeAutopilot, free_port

from navigator.errors import UserError
from navigator.onboard.link import MavlinkLink, check_url


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


def test_refused_tcp_and_bad_urls_are_user_errors() -> None:
    with pytest.raises(UserError, match="connection refused"):
        MavlinkLink(f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}").open(timeout=0.0)
    for url in ("14540", "udp:localhost", "http://x"):
        with pytest.raises(UserError, match="--mavlink"):
            check_url(url)
