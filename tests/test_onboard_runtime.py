"""`navigator onboard` end to end on loopback: a tiny ONNX bundle (built with onnx.helper), a real video file as the
camera (320x240 at 110 deg, cropped to the policy's 80 deg), and a fake PX4 made of real pymavlink sockets. The
runtime pre-streams, requests OFFBOARD once, flies, yields to the operator's mode change, stops commanding on a
lost heartbeat and recovers; the log records it all. Bad inputs are refused before anything is sent."""

import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from onboard_support import PX4_POSCTL, FakeAutopilot, free_port, write_tiny_bundle, write_video

from navigator.cli import main
from navigator.onboard.bundle import BundlePolicy, load_bundle
from navigator.onboard.camera import CameraReader
from navigator.onboard.config import load_onboard_config
from navigator.onboard.link import MavlinkLink
from navigator.onboard.log import FlightLog, read_log
from navigator.onboard.runtime import OnboardRuntime, PolicyStepper
from navigator.onboard.safety import State

# Real time (the runtime's safety timeouts are wall-clock):
# in the suite's serial pass (`pytest -m serial`), never beside another test file.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "camera.avi", frames=60)


def test_fly_yield_lose_link_recover(bundle: Path, video: Path, tmp_path: Path) -> None:
    config = load_onboard_config(None, {"camera.hfov_deg": 110.0, "link.heartbeat_timeout_s": 1.0,
                                        "link.telemetry_timeout_s": 0.3})
    port = free_port()
    loaded = load_bundle(bundle)
    camera = CameraReader(str(video)).start()
    link = MavlinkLink(f"udpin:127.0.0.1:{port}").open()
    vehicle = FakeAutopilot(f"udpout:127.0.0.1:{port}", "px4").start()
    stop = threading.Event()
    try:
        frame = camera.wait_first(5.0)
        spec = loaded.image_spec_for(frame.image.shape[1], frame.image.shape[0], 110.0)
        link.wait_for_autopilot(5.0)
        log = FlightLog(tmp_path / "logs", {"task": loaded.task, "autopilot": "px4"})
        runtime = OnboardRuntime(config, PolicyStepper(loaded, BundlePolicy(loaded), spec), camera, link, log,
                                 engage=True)
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(summary=runtime.run(stop=stop)))
        worker.start()

        deadline = time.monotonic() + 6.0
        while runtime.safety.state is not State.ENGAGED:  # 1 s of zero setpoints, then OFFBOARD is requested
            assert time.monotonic() < deadline, runtime.safety.reason
            time.sleep(0.05)
        time.sleep(1.0)
        vehicle.custom_mode = PX4_POSCTL  # the operator takes the vehicle back
        time.sleep(0.5)
        assert runtime.safety.state is State.STANDBY and "left" in runtime.safety.reason
        vehicle.silent.set()  # the autopilot falls silent
        silent_since = time.monotonic()
        time.sleep(1.6)
        assert runtime.safety.state is State.LINK_LOST
        silent_until = time.monotonic()
        vehicle.silent.clear()
        time.sleep(0.8)
        assert runtime.safety.state is State.STANDBY  # back, in the operator's mode
        stop.set()
        worker.join(5.0)
    finally:
        stop.set()
        camera.close()
        link.close()
        vehicle.close()

    summary = result["summary"]
    assert summary.ended == "stopped" and summary.policy_steps > 15
    assert len(vehicle.mode_commands) == 1  # one request; never repeated after the operator left OFFBOARD
    header, rows, end = read_log(log.path)
    assert end["ended"] == "stopped" and len(rows) == summary.steps
    engaged = [row for row in rows if row["safety"] == "ENGAGED" and row["inference_ms"] is not None]
    assert len(engaged) == summary.policy_steps
    # The tiny policy at rest: forward action tanh(0.5 + 0.001 x mean pixel ~70) ~ 0.51 x 2 m/s, ramped at 3 m/s^2.
    first, last = engaged[0], engaged[-1]
    assert first["action"][0] == pytest.approx(0.51, abs=0.03)
    assert 0 < first["command_ned"][0] <= 3.0 * first["dt_s"] + 1e-6
    assert last["command_ned"][0] == pytest.approx(1.03, abs=0.08) and last["command_ned"][2] < 0  # up is -down
    # dt is measured between the frames used (a 30 fps camera), not the bundle's nominal step: it varies, and its
    # typical value is the camera's period. The median, since a loaded machine delays a frame now and then.
    dts = [row["dt_s"] for row in engaged[1:]]
    assert all(dt > 0 for dt in dts) and len(set(dts)) > 1 and 0.02 < statistics.median(dts) < 0.06
    # (A HOLD may show too: a frame or telemetry late by 0.3 s on a loaded test machine.)
    assert {row["safety"] for row in rows} >= {"STANDBY", "ENGAGED", "LINK_LOST"}
    assert all(row["command_ned"] is None for row in rows if row["safety"] == "LINK_LOST")
    # Silent past the 1 s timeout (+ the 0.2 s heartbeat period), the vehicle got no setpoints from the runtime.
    assert not [t for t, _ in vehicle.setpoints if silent_since + 1.3 < t < silent_until]
    assert all(m.coordinate_frame == 8 and m.type_mask == 0x05C7 for _, m in vehicle.setpoints)


def fly_cli_against_fake_px4(bundle: Path, video: Path, tmp_path: Path, capsys,
                             *options: str) -> tuple[dict, str, FakeAutopilot]:
    """`navigator onboard --duration 3 --json OPTIONS` against a fake PX4 (exit 0 asserted): its JSON summary, its
    stderr and the fake vehicle, closed, holding what it received."""
    port = free_port()
    vehicle = FakeAutopilot(f"udpout:127.0.0.1:{port}", "px4")
    # The fake starts sending once the runtime listens; it only needs to be up within the connect timeout.
    threading.Timer(0.5, vehicle.start).start()
    try:
        code = main(["onboard", "--bundle", str(bundle), "--camera", str(video), "--mavlink",
                     f"udpin:127.0.0.1:{port}", "--camera-fov", "110", "--duration", "3", *options,
                     "--log-dir", str(tmp_path / "logs"), "--json"])
    finally:
        vehicle.close()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err, vehicle


def test_cli_flies_for_a_duration(bundle: Path, video: Path, tmp_path: Path, capsys) -> None:
    summary, err, vehicle = fly_cli_against_fake_px4(bundle, video, tmp_path, capsys, "--engage")
    assert summary["ended"] == "duration" and summary["states"]["ENGAGED"] > 0
    assert summary["inference_ms_median"] < 5.0
    assert "ENGAGED" in err and "autopilot px4" in err
    # Stopping while engaged: the last setpoints the vehicle got are zero velocity.
    assert vehicle.setpoints[-1][1].vx == 0.0
    header, rows, _ = read_log(Path(summary["log"]))
    assert header["camera_size"] == [320, 240] and header["image_spec"]["input_hfov_deg"] == 110.0


@pytest.fixture(scope="module")
def held_port():
    """A UDP port another listener holds (with SO_REUSEADDR, as pymavlink binds)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


@pytest.mark.parametrize(("change", "message"), [
    ({"--bundle": "missing"}, "bundle .*missing: no such folder"),
    # two bad inputs: the first on the command line is named first
    ({"--bundle": "missing", "--camera": "missing.avi"}, "bundle .*missing: no such folder"),
    ({"--bundle": "policy.onnx"}, "--bundle .*policy.onnx is the bundle's graph; give the bundle's folder: --bundle"),
    ({"--bundle": "model.pt"}, "--bundle .*model.pt is a PyTorch checkpoint, not a bundle; export it first: "
                               "navigator export --checkpoint .*model.pt --out bundles/NAME"),
    ({"--camera-fov": "60"}, "cannot give the policy .* trained 80"),
    ({"--mavlink": "14540"}, "is not a MAVLink connection URL"),
    ({"--mavlink": "/dev/ttyNAVIGATOR9,921600"}, "no serial device /dev/ttyNAVIGATOR9"),
    ({"--mavlink": "/dev/ttyACM0,fast"}, "baud rate after the comma must be a whole number"),
    ({"--mavlink": "HELD"}, "UDP port [0-9]+ is already in use: another navigator onboard"),
    ({"--mavlink": "tcp:127.0.0.1:1"}, "connection refused: nothing accepts connections on 127.0.0.1:1"),
    ({"--duration": "-1"}, "--duration must be in \\(0, 86400\\] seconds, got -1"),
    ({"--duration": "1e300"}, "--duration must be in \\(0, 86400\\] seconds, got 1e\\+300"),
    ({"--camera-fov": "190"}, "--camera-fov must be in"),
    ({"--camera": ""}, "--camera: empty value"),
    ({"--camera": "-1"}, "--camera -1: a device index is 0 or more"),
    ({"--camera": "missing.avi"}, "--camera missing.avi: no such file or device"),
    ({"--camera": __file__}, "--camera .*test_onboard_runtime.py: OpenCV cannot read a video frame from this file"),
    ({"--mavlink": "udpin:notahost.invalid:14540"}, "the host name notahost.invalid does not resolve"),
    ({"--mavlink": "udpout:notahost.invalid:14540"}, "the host name notahost.invalid does not resolve"),
    # /proc takes no new folders, and says "No such file or directory"
    ({"--log-dir": "/proc/navigator-logs"}, "--log-dir /proc/navigator-logs: the folder cannot be created: /proc does "
                                            "not take new folders"),
    ({"--log-dir": "/proc"}, "--log-dir /proc: no flight log can be written in it: /proc does not take new files"),
    ({"--require-link": None}, "--require-link applies only to --self-test"),
    ({"--probe-timeout": "2"}, "--probe-timeout applies only to --self-test"),
    ({"--probe-timeout": "0"}, "--probe-timeout applies only to --self-test"),  # 0 is given too (0 == False)
])
def test_bad_inputs_are_refused_before_anything_is_sent(bundle: Path, video: Path, tmp_path: Path, capsys, held_port,
                                                         change: dict, message: str) -> None:
    (tmp_path / "policy.onnx").write_bytes((bundle / "policy.onnx").read_bytes())
    (tmp_path / "model.pt").write_bytes(b"checkpoint")
    options = {"--bundle": str(bundle), "--camera": str(video), "--mavlink": f"udpin:127.0.0.1:{free_port()}",
               "--camera-fov": "110", "--duration": "1", "--log-dir": str(tmp_path)}
    options.update({k: str(tmp_path / v) if k == "--bundle" else f"udpin:127.0.0.1:{held_port}" if v == "HELD"
                    else v for k, v in change.items()})
    argv = ["onboard"] + [item for pair in options.items() for item in ((pair[0],) if pair[1] is None else pair)]
    assert main(argv) == 2
    # At once: none of these opens the camera or waits for the autopilot's heartbeat (a refused TCP connection
    # included). One line, no traceback.
    printed = capsys.readouterr()
    assert re.search(message, printed.err), printed.err
    assert len(printed.err.strip().splitlines()) == 1 and "waiting" not in printed.out + printed.err


def test_self_test_fails_a_field_of_view_the_runtime_refuses(bundle: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--camera-fov", "30"]) == 1
    printed = capsys.readouterr()
    assert re.search(r"FAIL field of view a camera with 30 deg of .* cannot give the policy", printed.out + printed.err)


def test_frames_too_small_for_the_policys_view_are_refused(bundle: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    # 16x12 at the trained 80 deg: the crop has 16x12 pixels of the 64x48 the policy was trained with. The self-test
    # used to say the camera "gives the policy its view"; flying would have blown the frames up to 64x48.
    monkeypatch.setenv("COLUMNS", "1000")
    tiny = write_video(tmp_path / "tiny.avi", frames=10, width=16, height=12)
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--camera", str(tiny), "--require-camera"]) == 1
    printed = capsys.readouterr().out
    assert re.search(r"FAIL camera +a 16x12 camera with 80 deg of horizontal field of view gives the policy of .* only "
                     r"16x12 pixels of its trained 80 deg view, which it was trained to see at 64x48; use frames at "
                     r"least 64 pixels wide", printed), printed
    # Blocking without --require-camera too: such a camera can never give the policy its view (a deploy would
    # otherwise switch to a version whose service only restarts into the same refusal).
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--camera", str(tiny)]) == 1
    assert re.search(r"FAIL camera +a 16x12 camera", capsys.readouterr().out)
    # Flying refuses them once the first frame shows their size, before waiting for the autopilot.
    assert main(["onboard", "--bundle", str(bundle), "--camera", str(tiny), "--mavlink",
                 f"udpin:127.0.0.1:{free_port()}", "--log-dir", str(tmp_path / "logs")]) == 2
    printed = capsys.readouterr()
    assert "only 16x12 pixels of its trained 80 deg view" in printed.err and "heartbeat" not in printed.out
    # A wider camera needs more pixels for the same view: 110 at 110 deg give 65 at 80 deg (MJPG's widths are even).
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--camera-fov", "110", "--camera",
                 str(write_video(tmp_path / "wide.avi", frames=10, width=110, height=82))]) == 0
    assert re.search(r"ok +camera +.*110x82 at 110 deg gives the policy its view", capsys.readouterr().out)
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--camera-fov", "110", "--camera",
                 str(write_video(tmp_path / "short.avi", frames=10, width=106, height=80))]) == 1
    assert "use frames at least 109 pixels wide" in capsys.readouterr().out


@pytest.mark.parametrize("option, value, said", [
    ("--camera", "notvideo", "OpenCV cannot read a video frame from this file"),
    ("--camera", "folder", "is a folder, not a camera"),
    ("--camera", "missing.avi", "no such file or device"),
    ("--mavlink", "udpin:nohost.invalid:14540", "does not resolve"),
])
def test_a_source_that_can_never_work_fails_the_self_test_unrequired(bundle: Path, tmp_path: Path, capsys, monkeypatch,
                                                                     option, value, said) -> None:
    # Unlike a camera not plugged in or an autopilot not answering on a bench, these never work: the self-test
    # fails (exit 1) without --require-camera / --require-link, so a deploy does not switch to them.
    monkeypatch.setenv("COLUMNS", "1000")
    (tmp_path / "notvideo").write_text("not a video")
    (tmp_path / "folder").mkdir()
    source = value if option == "--mavlink" else str(tmp_path / value)
    assert main(["onboard", "--self-test", "--bundle", str(bundle), option, source, "--probe-timeout", "1"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed and said in printed, printed


def test_self_test_refuses_a_mavlink_url_that_is_no_url(bundle: Path, capsys) -> None:
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--mavlink", "bogus://x"]) == 2
    assert "--mavlink 'bogus://x' is not a MAVLink connection URL" in capsys.readouterr().err


def test_self_test_options_need_self_test_and_fly_options_need_flying(bundle: Path, capsys) -> None:
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--engage"]) == 2
    assert "--engage applies only to flying, and --self-test flies nothing" in capsys.readouterr().err
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--duration", "0"]) == 2
    assert "--duration applies only to flying" in capsys.readouterr().err
    assert main(["onboard", "--self-test", "--bundle", str(bundle), "--probe-timeout", "1e300"]) == 2
    assert "--probe-timeout must be in (0, 120] seconds, got 1e+300" in capsys.readouterr().err


def test_self_test_messages_and_a_missing_pyserial_never_abort(bundle: Path, video: Path) -> None:
    # pyserial missing used to escape as ModuleNotFoundError and, with the camera's thread left inside OpenCV, abort
    # the interpreter (rc 134). A separate interpreter where `serial` cannot be imported.
    script = ("import sys; sys.modules['serial'] = None\n"
              "from navigator.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run(
        [sys.executable, "-c", script, "onboard", "--self-test", "--bundle", str(bundle), "--camera",
         str(video), "--mavlink", "/dev/ttyACM0,921600",
         "--probe-timeout", "0.5", "--require-link"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr  # a blocking check failed: a verdict, not a crash
    assert "Traceback" not in result.stderr and "terminate" not in result.stderr
    assert "a serial link needs pyserial, which is not installed; install it with: pip install pyserial" \
        in result.stdout
    # Both probes word their timeouts alike.
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "navigator.cli", "onboard", "--self-test", "--bundle", str(bundle), "--camera",
         "rtsp://127.0.0.1:1/none", "--mavlink", f"udpin:127.0.0.1:{port}", "--probe-timeout", "0.499995"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no frame within 0.5 s" in result.stdout and "no autopilot heartbeat within 0.5 s" in result.stdout


def test_sigterm_is_handled_as_ctrl_c(bundle: Path, video: Path, tmp_path: Path) -> None:
    def start(port: int, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "navigator.cli", "onboard", "--bundle", str(bundle), "--camera", str(video),
             "--camera-fov", "110", "--mavlink", f"udpin:127.0.0.1:{port}", "--log-dir", str(tmp_path / "logs"),
             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Waiting for the autopilot (none comes): interrupted, as Ctrl-C, with its message and exit code.
    waiting = start(free_port())
    time.sleep(3.0)
    waiting.send_signal(signal.SIGTERM)
    _, error = waiting.communicate(timeout=20)
    assert waiting.returncode == 130 and "navigator onboard: interrupted" in error and "Traceback" not in error

    # Flying: a clean stop, zero velocity, the log closed saying why.
    port = free_port()
    vehicle = FakeAutopilot(f"udpout:127.0.0.1:{port}", "px4").start()
    try:
        flying = start(port, "--engage", "--json")
        deadline = time.monotonic() + 30
        while not (vehicle.setpoints and time.monotonic() - vehicle.setpoints[0][0] > 2.0):
            assert time.monotonic() < deadline and flying.poll() is None, flying.stderr.read()
            time.sleep(0.1)
        flying.send_signal(signal.SIGTERM)
        output, error = flying.communicate(timeout=20)
    finally:
        vehicle.close()
    assert flying.returncode == 0, error
    summary = json.loads(output)
    assert summary["ended"] == "stopped by SIGTERM"
    _, _, end = read_log(Path(summary["log"]))
    assert end["ended"] == "stopped by SIGTERM"


def test_summary_names_the_log_that_rotation_kept(bundle: Path, video: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "onboard.yaml"
    config.write_text("log:\n  part_mb: 0.005\n  max_parts: 2\n")
    summary, _, _ = fly_cli_against_fake_px4(bundle, video, tmp_path, capsys, "--config", str(config))
    kept = Path(summary["log"])
    assert kept.exists() and summary["log_parts"] == 2 and ".part" in kept.name  # the first part was rotated away
    first = kept.with_name(re.sub(r"\.part\d+", "", kept.name))
    assert not first.exists()
    assert main(["onboard", "plot", str(first), "--out", str(tmp_path / "run.png")]) == 0, capsys.readouterr().err


def test_changed_bundle_is_refused(bundle: Path, tmp_path: Path, video: Path, capsys) -> None:
    copy = write_tiny_bundle(tmp_path / "changed")
    graph = (copy / "policy.onnx").read_bytes()
    (copy / "policy.onnx").write_bytes(graph[:-1] + bytes([graph[-1] ^ 1]))
    assert main(["onboard", "--bundle", str(copy), "--camera", str(video), "--mavlink",
                 f"udpin:127.0.0.1:{free_port()}"]) == 2
    assert "sha256" in capsys.readouterr().err


def test_step_time_of_preprocessing_and_inference(bundle: Path) -> None:
    # The camera-size image through crop+resize and the ONNX step; the figure for the shipped bundle is in
    # bench/bench_onboard_step.py. Here: the runtime adds no overhead of its own beyond them.
    loaded = load_bundle(bundle)
    stepper = PolicyStepper(loaded, BundlePolicy(loaded), loaded.image_spec_for(320, 240, 110.0))
    from navigator.onboard.camera import Frame

    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    timings = [stepper.step(Frame(image, float(i) / 30, i), np.zeros(7, np.float32))[2] for i in range(200)]
    assert np.median(timings) < 1.0
