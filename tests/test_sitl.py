"""`navigator sitl`: the simulated vehicle over real sockets, seen by a real pymavlink client acting as a ground
station / offboard SDK, and its camera stream opened by OpenCV. Every port is a free one, so these run beside other
things."""

from __future__ import annotations

import json
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

os.environ.setdefault("MAVLINK20", "1")  # before pymavlink picks its wire protocol
from pymavlink import mavutil  # noqa: E402

from navigator.cli import main  # noqa: E402
from policies.preprocessing import ImageSpec  # noqa: E402
from sim_envs.sitl import FaultConfig, LinkConfig, Sitl, SitlConfig, StreamConfig, parse_fault  # noqa: E402
from sim_envs.sitl.autopilot import CUSTOM_MODE_ENABLED, SAFETY_ARMED, px4_custom_mode  # noqa: E402
from sim_envs.sitl.faults import FaultSpecError  # noqa: E402
from sim_envs.sitl.frames import VelocitySetpoint  # noqa: E402

# Real time (the SITL vehicle's clock, link timeouts and camera faults are wall-clock):
# in the suite's serial pass (`pytest -m serial`), never beside another test file.
pytestmark = pytest.mark.serial

PX4_LOITER = px4_custom_mode(4, 3)
PX4_OFFBOARD = px4_custom_mode(6)
VELOCITY_YAW_RATE = 0x05C7
BODY_NED = 8
BODY_OFFSET_NED = 9


@contextmanager
def running_sitl(autopilot: str = "px4", faults: tuple[str, ...] = (), max_seconds: float = 20.0, **overrides):
    """A SITL vehicle in a background thread and a pymavlink client connected to it: yields (client, ready event,
    event queue). PX4: the client listens first (udpin on a free port) and SITL sends there, as PX4 SITL does."""
    client = mavutil.mavlink_connection("udpin:127.0.0.1:0", source_system=255) if autopilot == "px4" else None
    port = client.port.getsockname()[1] if client else 0
    config = SitlConfig(seed=overrides.pop("seed", 5), max_seconds=max_seconds, autopilot=autopilot,
                        link=LinkConfig(port=port, local_port=0, gcs_port=0), camera=StreamConfig(port=0),
                        faults=FaultConfig.parse(faults), **overrides)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    failures: list[BaseException] = []

    def fly() -> None:
        try:
            with Sitl(config, on_event=events.put) as sitl:
                sitl.run(stop)
        except BaseException as error:  # reported in the test's thread
            failures.append(error)
            events.put({"event": "failed"})

    thread = threading.Thread(target=fly, daemon=True)
    thread.start()
    ready = events.get(timeout=30)
    assert ready["event"] == "ready", failures
    if client is None:
        client = mavutil.mavlink_connection(ready["mavlink"], source_system=255)
    try:
        client.wait_heartbeat(timeout=5)
        yield client, ready, events
    finally:
        stop.set()
        thread.join(timeout=10)
        client.close()
    assert not failures, failures


def wait_for(client, kind: str, condition=lambda m: True, timeout: float = 5.0):
    """The first message of type `kind` that meets `condition` within `timeout` s, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = client.recv_match(type=kind, blocking=True, timeout=deadline - time.monotonic())
        if message is not None and condition(message):
            return message
    return None


def latest(client, kind: str):
    """The newest message of type `kind`: what is queued is read first (a message queued for a while is old)."""
    newest = None
    while (message := client.recv_match(blocking=False)) is not None:
        newest = message if message.get_type() == kind else newest
    return newest or wait_for(client, kind)


def command(client, number: int, *params: float):
    """COMMAND_LONG -> its COMMAND_ACK's result."""
    params = list(params) + [0.0] * (7 - len(params))
    client.mav.command_long_send(client.target_system, 1, number, 0, *params)
    ack = wait_for(client, "COMMAND_ACK", lambda m: m.command == number)
    assert ack is not None, f"no COMMAND_ACK for command {number}"
    return ack.result


def send_velocity(client, forward: float, right: float = 0.0, down: float = 0.0, yaw_rate_cw: float = 0.0,
                  frame: int = BODY_NED) -> None:
    client.mav.set_position_target_local_ned_send(0, client.target_system, 1, frame, VELOCITY_YAW_RATE, 0, 0, 0,
                                                  forward, right, down, 0, 0, 0, 0, yaw_rate_cw)


def stream_velocity(client, seconds: float, *velocity: float, rate_hz: float = 10.0, **kwargs) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        send_velocity(client, *velocity, **kwargs)
        client.recv_match(blocking=True, timeout=1.0 / rate_hz)  # keep reading so the socket never backs up
        time.sleep(0)


def heartbeat_mode(client, timeout: float = 3.0) -> int:
    return wait_for(client, "HEARTBEAT", lambda m: m.get_srcComponent() == 1, timeout).custom_mode


def test_px4_identity_telemetry_requests_and_camera_stream():
    with running_sitl("px4") as (client, ready, _):
        heartbeat = wait_for(client, "HEARTBEAT")
        assert (heartbeat.type, heartbeat.autopilot) == (mavutil.mavlink.MAV_TYPE_QUADROTOR,
                                                         mavutil.mavlink.MAV_AUTOPILOT_PX4)
        assert heartbeat.base_mode & CUSTOM_MODE_ENABLED and heartbeat.base_mode & SAFETY_ARMED
        assert heartbeat.custom_mode == PX4_LOITER
        wanted = {"SYS_STATUS", "ATTITUDE", "LOCAL_POSITION_NED", "GLOBAL_POSITION_INT", "EXTENDED_SYS_STATE",
                  "HOME_POSITION"}
        seen, counts, deadline = set(), {}, time.monotonic() + 2.0
        while time.monotonic() < deadline:
            message = client.recv_match(blocking=True, timeout=0.2)
            if message is not None:
                seen.add(message.get_type())
                counts[message.get_type()] = counts.get(message.get_type(), 0) + 1
        assert wanted <= seen, wanted - seen
        assert counts["ATTITUDE"] >= 30, counts  # ~30 Hz: a step each
        position = wait_for(client, "LOCAL_POSITION_NED")
        assert position.z < -0.5  # hovering above the ground, z down
        home = wait_for(client, "HOME_POSITION")
        assert (home.latitude, home.longitude) == (473977420, 85455940)
        state = wait_for(client, "EXTENDED_SYS_STATE")
        assert state.landed_state == mavutil.mavlink.MAV_LANDED_STATE_IN_AIR
        # What SDKs ask for at connect.
        assert command(client, 512, mavutil.mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION) == 0
        version = wait_for(client, "AUTOPILOT_VERSION")
        assert version.capabilities & mavutil.mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2
        assert command(client, 31337) == mavutil.mavlink.MAV_RESULT_UNSUPPORTED
        client.mav.param_request_list_send(client.target_system, 1)
        param = wait_for(client, "PARAM_VALUE", lambda m: m.param_id == "COM_OF_LOSS_T")
        assert param.param_value == pytest.approx(1.0)

        opened = time.monotonic()
        capture = cv2.VideoCapture(ready["camera"], cv2.CAP_FFMPEG)
        ok, frame = capture.read()
        open_s = time.monotonic() - opened
        reads = [time.monotonic()]
        for _ in range(15):
            assert capture.read()[0]
            reads.append(time.monotonic())
        capture.release()
        assert ok and frame.shape == (240, 320, 3) and frame.std() > 5  # a rendered world, not a blank frame
        period = float(np.median(np.diff(reads)))
        print(f"stream open+first frame {open_s * 1000:.0f} ms, frame period {period * 1000:.1f} ms")
        assert open_s < 3.0 and 0.02 < period < 0.06


def test_px4_arming_offboard_flight_and_failsafe():
    with running_sitl("px4") as (client, _, events):
        assert command(client, 400, 1) == mavutil.mavlink.MAV_RESULT_ACCEPTED  # already armed: fine
        assert command(client, 400, 0) == mavutil.mavlink.MAV_RESULT_DENIED  # in the air
        assert command(client, 176, CUSTOM_MODE_ENABLED, 6) == mavutil.mavlink.MAV_RESULT_DENIED  # no stream yet
        assert wait_for(client, "STATUSTEXT", lambda m: "OFFBOARD denied" in m.text) is not None

        stream_velocity(client, 0.5, 0.0)
        assert command(client, 176, CUSTOM_MODE_ENABLED, 6) == mavutil.mavlink.MAV_RESULT_ACCEPTED
        assert heartbeat_mode(client) == PX4_OFFBOARD
        start = latest(client, "LOCAL_POSITION_NED")
        yaw = latest(client, "ATTITUDE").yaw
        stream_velocity(client, 2.0, 2.0)  # 2 m/s forward (body NED x)
        end = latest(client, "LOCAL_POSITION_NED")
        north, east = end.x - start.x, end.y - start.y
        forward = north * math.cos(yaw) + east * math.sin(yaw)
        sideways = -north * math.sin(yaw) + east * math.cos(yaw)
        assert forward > 1.5 and abs(sideways) < 0.5 * forward, (forward, sideways)

        yaw0 = latest(client, "ATTITUDE").yaw
        stream_velocity(client, 1.0, 0.0, yaw_rate_cw=0.8)  # clockwise seen from above: NED yaw grows
        turned = math.remainder(latest(client, "ATTITUDE").yaw - yaw0, 2 * math.pi)
        assert 0.3 < turned < 1.2, turned

        # Setpoints stop: after COM_OF_LOSS_T (1 s) PX4 fails safe to AUTO.LOITER and says so.
        lost = time.monotonic()
        text = wait_for(client, "STATUSTEXT", lambda m: "Failsafe" in m.text, timeout=3.0)
        assert text is not None and 0.8 < time.monotonic() - lost < 2.0
        assert heartbeat_mode(client) == PX4_LOITER
        modes = [e for e in list(events.queue) if e["event"] == "mode"]
        assert [(e["mode"], e["by"]) for e in modes] == [("OFFBOARD", "command"), ("AUTO.LOITER", "failsafe")]


def test_the_world_stands_still_until_a_client_engages():
    # A user who starts the onboard runtime after the SITL gets the whole episode: its clock (here 1 s) starts at
    # the switch to OFFBOARD, not when the SITL started.
    with running_sitl("px4", max_seconds=1.0, engage_wait_s=60.0) as (client, ready, events):
        before = latest(client, "LOCAL_POSITION_NED")
        capture = cv2.VideoCapture(ready["camera"], cv2.CAP_FFMPEG)
        frames = sum(capture.read()[0] for _ in range(20))  # the camera keeps streaming, at its rate
        capture.release()
        time.sleep(max(0.0, 2.0 - 20 / 30))
        assert frames == 20 and heartbeat_mode(client) == PX4_LOITER
        assert not [e for e in list(events.queue) if e["event"] in ("clock_start", "episode")]
        still = latest(client, "LOCAL_POSITION_NED")
        assert (still.x, still.y, still.z) == (before.x, before.y, before.z)
        stream_velocity(client, 0.5, 0.0)
        assert command(client, 176, CUSTOM_MODE_ENABLED, 6) == mavutil.mavlink.MAV_RESULT_ACCEPTED
        seen = []
        while not any(e["event"] == "episode" for e in seen):
            seen.append(events.get(timeout=20))
    clock = next(e for e in seen if e["event"] == "clock_start")
    assert clock["by"] == "engage" and clock["waited_s"] > 2.0
    episode = next(e for e in seen if e["event"] == "episode")
    assert episode["ending"] == "timeout" and episode["time_s"] == pytest.approx(1.0, abs=0.05)
    assert episode["wall_s"] < clock["waited_s"]  # counted from the clock's start


def test_ardupilot_guided_holds_velocity_then_stops_after_its_timeout():
    with running_sitl("ardupilot", setpoint_timeout_s=1.0) as (client, ready, _):
        assert ready["mavlink"].startswith("tcp:127.0.0.1:")
        heartbeat = wait_for(client, "HEARTBEAT")
        assert heartbeat.autopilot == mavutil.mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA and heartbeat.custom_mode == 5
        client.mav.param_request_read_send(client.target_system, 1, b"GUID_TIMEOUT", -1)
        assert wait_for(client, "PARAM_VALUE", lambda m: m.param_id == "GUID_TIMEOUT").param_value == 1.0
        client.mav.set_mode_send(client.target_system, CUSTOM_MODE_ENABLED, 4)  # GUIDED by SET_MODE: no stream
        ack = wait_for(client, "COMMAND_ACK", lambda m: m.command == mavutil.mavlink.MAVLINK_MSG_ID_SET_MODE)
        assert ack.result == mavutil.mavlink.MAV_RESULT_ACCEPTED
        assert heartbeat_mode(client) == 4
        send_velocity(client, 1.5, frame=BODY_OFFSET_NED)  # one setpoint: GUIDED holds it until the timeout
        time.sleep(0.8)
        moving = latest(client, "LOCAL_POSITION_NED")
        assert math.hypot(moving.vx, moving.vy) > 0.7
        assert wait_for(client, "STATUSTEXT", lambda m: "GUIDED: no setpoint" in m.text, timeout=2.0) is not None
        time.sleep(1.2)
        stopped = latest(client, "LOCAL_POSITION_NED")
        assert math.hypot(stopped.vx, stopped.vy) < 0.4
        assert heartbeat_mode(client) == 4  # ArduCopter stays in GUIDED


def test_episode_end_statustext_and_json_lines_from_the_cli():
    client = mavutil.mavlink_connection("udpin:127.0.0.1:0", source_system=255)
    port = client.port.getsockname()[1]
    command_line = [sys.executable, "-m", "navigator.cli", "sitl", "--mavlink-port", str(port),
                    "--mavlink-local-port", "0", "--gcs-port", "0", "--camera-port", "0", "--max-seconds", "1.5",
                    "--episodes", "2", "--seed", "11", "--json", "--engage-wait", "0.5"]
    process = subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "ready" and ready["mavlink"] == f"udpin:127.0.0.1:{port}"
        text = wait_for(client, "STATUSTEXT", lambda m: "timeout after" in m.text, timeout=15)
        assert text is not None and "seed 11" in text.text
        lines = [json.loads(line) for line in process.stdout]
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        client.close()
    episodes = [line for line in lines if line["event"] == "episode"]
    assert [(e["seed"], e["ending"]) for e in episodes] == [(11, "timeout"), (12, "timeout")]
    # Nobody engaged: each episode's clock started when --engage-wait ended.
    clocks = [line for line in lines if line["event"] == "clock_start"]
    assert [c["by"] for c in clocks] == ["wait limit"] * 2 and all(c["waited_s"] >= 0.5 for c in clocks)
    assert lines[-1]["event"] == "summary" and lines[-1]["episodes"] == 2
    print("real time:", [(e["steps"], e["overruns"], e["max_late_ms"], e["step_ms_median"]) for e in episodes])


def _mavlink_silence(client, events, fault: str) -> float:
    """The longest gap (s) between messages from the vehicle until the SITL says `fault` ended (and a message came
    after it). Timed by the SITL's own events, not by a guess of how fast a loaded machine simulates."""
    last, gap, deadline = time.monotonic(), 0.0, time.monotonic() + 120
    ended = False
    while time.monotonic() < deadline:
        if client.recv_match(blocking=True, timeout=0.05) is not None:
            now = time.monotonic()
            gap, last = max(gap, now - last), now
            if ended:
                return gap
        ended = ended or any(e.get("fault") == fault and e.get("state") == "end" for e in list(events.queue))
    raise AssertionError(f"{fault} never ended, or no message came after it")


def test_link_faults_silence_latency_loss_and_operator_mode_change():
    # The silence starts at t=4 (episode time), late enough that a slow start-up on a loaded machine does not eat
    # into it before the client listens; the operator's takeover at t=7 leaves time to switch to OFFBOARD after it.
    faults = ("heartbeat-silence:4:1", "mode-change:7:1", "mavlink-latency:150:9:10", "mavlink-loss:0.5:9:10")
    with running_sitl("px4", faults=faults) as (client, _, events):
        # 1 s of episode time; a loaded machine simulates slower than real time, never faster
        assert _mavlink_silence(client, events, "heartbeat-silence:4:1") > 0.8
        stream_velocity(client, 0.4, 0.0)
        assert command(client, 176, CUSTOM_MODE_ENABLED, 6) == 0
        # At t=7 the operator takes over (hold), and at 8 gives OFFBOARD back; the client keeps streaming.
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            stream_velocity(client, 0.2, 0.0)
            modes = [(e["mode"], e["by"]) for e in list(events.queue) if e["event"] == "mode"]
            if len(modes) >= 3:
                break
        assert modes == [("OFFBOARD", "command"), ("AUTO.LOITER", "operator"), ("OFFBOARD", "operator")], modes
        while not any(e.get("fault", "").startswith("mavlink-latency") for e in list(events.queue)):
            client.recv_match(blocking=True, timeout=0.1)
        # 150 ms each way: a command's answer takes >= 300 ms; half the packets are lost either way.
        sent = time.monotonic()
        client.mav.command_long_send(client.target_system, 1, 512, 0, 148, 0, 0, 0, 0, 0, 0)
        acks = wait_for(client, "COMMAND_ACK", timeout=1.5)
        if acks is not None:
            assert time.monotonic() - sent >= 0.29
        counts = 0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            counts += client.recv_match(type="ATTITUDE", blocking=True, timeout=0.1) is not None
        # ~30 Hz halved: about 30 in 2 s, fewer on a loaded machine, which simulates slower; all 60 would mean no loss
        assert 5 <= counts <= 50, counts


def test_camera_faults_stall_drop_and_corrupt():
    # The faults start 2.5 s into the vehicle's clock, after the stream is open however slowly OpenCV connects, and
    # the frames are read until the SITL says the last one ended (its clock may run behind the wall's when loaded).
    faults = ("camera-stall:2.5:1", "camera-corrupt:1:4:1", "camera-drop:1:5.5:1")
    with running_sitl("px4", faults=faults) as (_, ready, events):
        capture = cv2.VideoCapture(ready["camera"], cv2.CAP_FFMPEG)
        arrivals, decoded_std = [], []
        deadline, ended = time.monotonic() + 20, None
        while time.monotonic() < deadline and (ended is None or time.monotonic() < ended + 0.5):
            ok, frame = capture.read()
            if ok:
                arrivals.append(time.monotonic())
                decoded_std.append(float(frame.std()))
            fault_events = [(e["fault"].split(":")[0], e["state"]) for e in list(events.queue)
                            if e["event"] == "fault"]
            if ended is None and ("camera-drop", "end") in fault_events:
                ended = time.monotonic()
        capture.release()
        assert ("camera-stall", "start") in fault_events and ("camera-drop", "end") in fault_events
        gaps = np.diff(arrivals)
        assert (gaps > 0.8).sum() >= 2, gaps.max()  # the stall and the dropped second
        assert len(arrivals) > 60  # the stream came back after every fault


def test_setpoint_frames_and_signs():
    forward = VelocitySetpoint.from_message(BODY_NED, VELOCITY_YAW_RATE, 1.0, 0.5, -0.2, 0.0, 0.3)
    assert forward.to_flu(yaw_world=1.0) == pytest.approx((1.0, -0.5, 0.2, -0.3))  # FRD/NED -> FLU, CW -> CCW
    # LOCAL_NED: 1 m/s north while facing north (world yaw pi/2 from east) is forward.
    north = VelocitySetpoint.from_message(1, VELOCITY_YAW_RATE, 1.0, 0.0, 0.0, 0.0, 0.0)
    assert north.to_flu(yaw_world=math.pi / 2) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="position"):
        VelocitySetpoint.from_message(BODY_NED, 0, 1.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="0x0DC7|yaw|frame"):
        VelocitySetpoint.from_message(12345, VELOCITY_YAW_RATE, 1.0, 0.0, 0.0, 0.0, 0.0)


def test_default_stream_crops_to_the_policy_field_of_view():
    stream = StreamConfig()
    spec = ImageSpec(input_height=stream.height, input_width=stream.width, input_hfov_deg=stream.fov_deg,
                     output_height=48, output_width=64, output_hfov_deg=80.0)
    top, left, height, width = spec.crop_box()
    assert (height, width) == (169, 225) and top >= 0 and left >= 0


def test_fault_specs():
    assert parse_fault("camera-stall:5:2").active(6.0) and not parse_fault("camera-stall:5:2").active(7.0)
    assert parse_fault("mavlink-loss:0.2").value == 0.2 and parse_fault("mavlink-loss:0.2").active(1e6)
    assert parse_fault("mode-change:3").duration is None
    assert FaultConfig.from_dict(FaultConfig.parse(["mavlink-latency:100:1:2"]).to_dict()).value(
        "mavlink-latency", 1.5) == 100
    for bad in ("camera-stall:5", "mavlink-loss:1.5", "warp-drive:1", "camera-drop:x", "heartbeat-silence:1:-2"):
        with pytest.raises(FaultSpecError):
            parse_fault(bad)


def test_cli_defaults_are_the_stream_configs_and_one_camera_option_keeps_the_others():
    """The command's defaults are stated beside its options (for --help); they must stay sim_envs.sitl's."""
    import argparse

    from navigator.commands import sitl

    def config(*argv: str) -> SitlConfig:
        parser = argparse.ArgumentParser()
        sitl.add_arguments(parser)
        return sitl.sitl_config(parser.parse_args(argv))

    default = config()
    assert default.camera == StreamConfig() and default.link == LinkConfig()
    assert (default.seed, default.episodes, default.task_fov_deg) == (100_000, 1, SitlConfig().task_fov_deg)
    wide = config("--camera-width", "640", "--task", "HIKE")
    assert (wide.camera.width, wide.camera.height, wide.camera.fov_deg, wide.task) == (640, 240, 100.0, "hike")


def test_cli_refuses_bad_input_before_starting(capsys):
    assert main(["sitl", "--preset", "monsoon"]) == 2
    assert "monsoon" in capsys.readouterr().err
    assert main(["sitl", "--fault", "camera-stall:5"]) == 2
    assert "camera-stall:AT:FOR" in capsys.readouterr().err
    assert main(["sitl", "--engage-wait", "-1"]) == 2
    assert "--engage-wait must be in [0, 86400], got -1" in capsys.readouterr().err
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        assert main(["sitl", "--autopilot", "ardupilot", "--mavlink-port", str(port), "--gcs-port", "0",
                     "--camera-port", "0"]) == 2
        err = capsys.readouterr().err
        assert f"port {port}" in err and "--mavlink-port" in err and "already in use" in err
        assert main(["sitl", "--mavlink-local-port", "0", "--gcs-port", "0", "--camera-port", str(port)]) == 2
        assert "--camera-port" in capsys.readouterr().err
    finally:
        taken.close()
