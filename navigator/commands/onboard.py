"""Fly an exported policy bundle on a drone from its companion computer, over MAVLink (PX4 or ArduPilot); or plot a
flight log of such a run.

The runtime streams body-frame velocity setpoints while the operator holds the autopilot in its offboard mode
(PX4 OFFBOARD, ArduPilot GUIDED): switching the vehicle into that mode hands it to the policy, any other mode takes
it back (safety states in navigator/onboard/safety.py). `--engage` makes the runtime request the mode itself, once
(rehearsal in SITL, tests). It stops at --duration, Ctrl-C or SIGTERM (the same stop request): zero velocity, then no
more setpoints, and the flight log is closed.

examples:
  navigator onboard --bundle bundles/default --camera 0 --mavlink /dev/ttyACM0,921600 --camera-fov 120
  navigator onboard --bundle bundles/default --camera http://127.0.0.1:5600/camera.mjpg \\
      --mavlink udpin:127.0.0.1:14540 --camera-fov 110 --engage --duration 60   # against navigator sitl (PX4)
  navigator onboard --bundle bundles/default --camera flight.mp4 --mavlink tcp:127.0.0.1:5760 --config my.yaml
  navigator onboard plot logs/onboard/onboard-*.jsonl   # each run's plot beside its log
  navigator onboard plot onboard-20250101-120000 --out flight.png   # a run by name, in logs/onboard
  navigator onboard --self-test --bundle bundles/default --camera 0 --mavlink /dev/ttyACM0,921600 --require-link

--self-test flies nothing: it loads the settings and the bundle, runs one inference, and probes the camera and the
autopilot's heartbeat (navigator/onboard/selftest.py); exit 0 when no blocking check failed, else 1. `navigator deploy`
runs it on the companion computer before it switches to a new version.

Every input is checked before anything starts (a missing serial device or video file, a file that is no video, a host
name that does not resolve, a UDP port another program holds, a TCP port nothing listens on, a log folder that cannot
be created, a setting out of its range): exit 2 with one line naming the problem and the fix. Frames too small to give
the policy its trained image at its field of view are refused at the first frame, before the autopilot is waited for.
Exit codes: 0 a flight ended by --duration, Ctrl-C or SIGTERM (after zero velocity; the log says which); 2 bad input;
130 Ctrl-C or SIGTERM before flying (waiting for the camera or the autopilot: nothing was sent).
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from navigator.config import Bounds, ConfigFlags
from navigator.errors import UserError


def _config_class() -> type:
    from navigator.onboard.config import OnboardConfig

    return OnboardConfig


FLAGS = ConfigFlags(_config_class)
DEFAULT_LOG_DIR = Path("logs/onboard")
DEFAULT_PROBE_TIMEOUT_S = 5.0
# The options' ranges. A day is longer than any flight: a longer --duration is a typo. 120 s is what navigator deploy
# allows its self-test's probes.
DURATION_S = Bounds(gt=0.0, le=86400.0)
PROBE_TIMEOUT_S = Bounds(gt=0.0, le=120.0)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
# Options that only flying, or only the self-test, reads: given to the other (or to plot), they would be ignored.
FLY_ONLY = {"engage": "--engage", "duration": "--duration", "log_dir": "--log-dir"}
SELF_TEST_ONLY = {"probe_timeout": "--probe-timeout", "require_camera": "--require-camera",
                  "require_link": "--require-link"}
RUNTIME_INPUTS = {"bundle": "--bundle", "camera": "--camera", "mavlink": "--mavlink", "config": "--config",
                  "camera_fov": "--camera-fov", "self_test": "--self-test"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, help="the bundle folder navigator export wrote (or its policy.json)")
    parser.add_argument("--camera", metavar="SOURCE", help="what OpenCV opens: a device index (0), a video file or "
                                                           "a stream URL (http://HOST:PORT/camera.mjpg, rtsp://...)")
    parser.add_argument("--mavlink", metavar="URL", help="the autopilot link: udpin:0.0.0.0:14540 (PX4), "
                                                         "tcp:127.0.0.1:5760 (ArduPilot SITL), /dev/ttyACM0,921600")
    parser.add_argument("--config", type=Path, help="onboard settings (YAML; default: the built-in defaults, the "
                                                    "same as launch/onboard.yaml)")
    FLAGS.add(parser, "--camera-fov", "camera.hfov_deg", "horizontal field of view of the camera, degrees",
              type=float, default_text="the policy's trained field of view")
    parser.add_argument("--engage", action="store_true", help="request the offboard mode (OFFBOARD / GUIDED) once "
                                                              "after pre-streaming setpoints, instead of waiting for "
                                                              "the operator to switch to it")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after this many seconds of running, "
                                                                    f"at most {DURATION_S.le:g}, counted once the "
                                                                    "camera's first frame and the autopilot's first "
                                                                    "heartbeat arrived (their waits have their own "
                                                                    "limits: camera.open_timeout_s, "
                                                                    "link.connect_timeout_s) (default: run until "
                                                                    "Ctrl-C or SIGTERM)")
    parser.add_argument("--log-dir", type=Path, help=f"folder for the flight log (one JSON Lines file per run; "
                                                     f"default: {DEFAULT_LOG_DIR})")
    parser.add_argument("--json", action="store_true", help="print the run's summary as one JSON document on stdout")
    _add_self_test_arguments(parser)
    # The brackets: with no action the runtime flies (argparse shows an optional sub-command as if required).
    actions = parser.add_subparsers(dest="action", metavar="[ACTION]", required=False)
    plot = actions.add_parser("plot", help="draw flight logs: commands, state, frame age, inference time, safety "
                                           "state", description="Draw onboard flight logs, each into a PNG.",
                              epilog=f"examples:\n  navigator onboard plot {DEFAULT_LOG_DIR}/onboard-*.jsonl   # every "
                                     f"run there, each beside its log\n  navigator onboard plot "
                                     f"onboard-20250101-120000 --out flight.png   # a run by name, in "
                                     f"{DEFAULT_LOG_DIR}", formatter_class=argparse.RawDescriptionHelpFormatter)
    plot.add_argument("log", type=Path, nargs="+",
                      help="log files navigator onboard wrote (.jsonl; any part of a run; several parts of one run "
                           "draw it once), or a run's name even when log rotation deleted its first part; a bare "
                           f"name is looked for here, then in {DEFAULT_LOG_DIR}")
    plot.add_argument("--out", type=Path, help="the PNG to write, for one log (default: each log's name with .png, "
                                               "beside it)")
    plot.add_argument("--overwrite", action="store_true", help="let the PNGs replace existing files")
    # onboard's own --json, given before `plot`, must not be reset by plot's default: plot sets it only when given.
    plot.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                      help="print the plots' summary as one JSON document on stdout (several logs: {\"plots\": [one "
                           "per run]})")


def _add_self_test_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("self-test (flies nothing)")
    group.add_argument("--self-test", action="store_true", help="check the settings, the bundle and one inference, "
                                                                "and probe --camera and --mavlink; exit 1 if a "
                                                                "blocking check fails")
    group.add_argument("--probe-timeout", type=float, metavar="S",
                       help=f"how long the camera and MAVLink probes wait for a frame and a heartbeat, at most "
                            f"{PROBE_TIMEOUT_S.le:g} (default: {DEFAULT_PROBE_TIMEOUT_S:g})")
    group.add_argument("--require-camera", action="store_true", help="a camera that gives no frame fails the "
                                                                     "self-test (default: reported only)")
    group.add_argument("--require-link", action="store_true", help="no autopilot heartbeat fails the self-test "
                                                                   "(default: reported only)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "plot":
        _refuse_unused(args, {**RUNTIME_INPUTS, **FLY_ONLY, **SELF_TEST_ONLY},
                       "{flag} does not apply to plot, which only draws a log; remove it")
        return _plot(args)
    with _sigterm_as_ctrl_c():
        if args.self_test:
            _refuse_unused(args, FLY_ONLY, "{flag} applies only to flying, and --self-test flies nothing; remove it")
            return _self_test(args)
        _refuse_unused(args, SELF_TEST_ONLY, "{flag} applies only to --self-test; add --self-test, or remove it")
        return _fly(args)


def _refuse_unused(args: argparse.Namespace, options: dict[str, str], message: str) -> None:
    """UserError (`message` with the {flag}) for an option given where it would be silently ignored."""
    for dest, flag in options.items():
        value = getattr(args, dest, None)
        if value is not None and value is not False:  # 0 is given too (0 == False in Python)
            raise UserError(message.format(flag=flag))


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (systemctl stop, kill) handled as Ctrl-C: before flying it interrupts the wait for the camera or the
    autopilot (exit 130, with a message, sockets and camera closed); while flying the runtime's own handler makes
    either signal a clean stop. Python's default would end the process at once, without a word or the log's end."""
    if threading.current_thread() is not threading.main_thread():  # in-process callers off the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_seconds(flag: str, value: float, bounds: Bounds) -> None:
    if bounds.problem(value) is not None:
        raise UserError(f"{flag} must be {bounds.describe()} seconds, got {value:g}")


def _check_bundle_path(path: Path) -> None:
    """UserError for a --bundle that is a file other than a bundle's policy.json: a checkpoint that needs exporting
    first, or the bundle's graph given in place of its folder."""
    if not path.is_file() or path.name == "policy.json":
        return
    if path.suffix in CHECKPOINT_SUFFIXES:
        raise UserError(f"--bundle {path} is a PyTorch checkpoint, not a bundle; export it first: navigator export "
                        f"--checkpoint {path} --out bundles/NAME, then give --bundle bundles/NAME")
    if path.suffix == ".onnx":
        raise UserError(f"--bundle {path} is the bundle's graph; give the bundle's folder: --bundle {path.parent}")
    raise UserError(f"--bundle {path} is a file, not a bundle; give the folder navigator export wrote (or its "
                    f"policy.json)")


def _check_log_dir(path: Path) -> Path:
    """`path`, once it is known that the flight log can be written there: the folder exists and takes new files, or
    it can be created. Tried, with a temporary file or folder removed at once, and said in plain words (a system
    folder such as /proc refuses new folders with "No such file or directory", which names no problem a user knows);
    then the checks every output folder gets (`check_output_folder`)."""
    from navigator.commands.common import check_output_folder, write_problem

    if path.exists() and not path.is_dir():
        raise UserError(f"--log-dir {path} is a file, not a folder; give a folder for the flight logs")
    existing = path
    while not existing.is_dir() and existing != existing.parent:
        existing = existing.parent
    try:
        if existing == path:
            with tempfile.NamedTemporaryFile(dir=path):  # as the log is written: a new file in the folder
                pass
        else:  # as the run creates it: a new folder in the nearest one that exists
            Path(tempfile.mkdtemp(dir=existing)).rmdir()
    except OSError as error:
        why = write_problem(error, existing, "files" if existing == path else "folders")
        problem = "no flight log can be written in it" if existing == path else "the folder cannot be created"
        raise UserError(f"--log-dir {path}: {problem}: {why}; give a folder this user can write, e.g. "
                        f"{DEFAULT_LOG_DIR}") from None
    return check_output_folder(path, "--log-dir", continuing=True)


def _self_test(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from navigator.commands.common import output_console, print_json
    from navigator.onboard.selftest import SelfTestRequest, run_self_test

    if args.bundle is None:
        raise UserError("--bundle is required for --self-test")
    probe_timeout = DEFAULT_PROBE_TIMEOUT_S if args.probe_timeout is None else args.probe_timeout
    _check_seconds("--probe-timeout", probe_timeout, PROBE_TIMEOUT_S)
    _check_bundle_path(args.bundle)
    if args.mavlink is not None:  # a URL that is no URL is a typing error, not an autopilot that did not answer
        from navigator.onboard.link import check_url

        check_url(args.mavlink)
    request = SelfTestRequest(args.bundle, args.config, args.camera, args.mavlink, probe_timeout,
                              require_camera=args.require_camera, require_link=args.require_link)
    report = run_self_test(request, lambda: FLAGS.load(args, args.config))
    if args.json:
        print_json(report.to_dict())
    else:
        console = output_console()
        for check in report.checks:
            # A failed probe that does not block is a warning: the version is still accepted.
            label, style = ("ok", "green") if check.ok else ("FAIL", "red") if check.blocking else ("warn", "yellow")
            console.print(f"[{style}]{label:<4}[/{style}] {check.name:<9} {escape(check.detail)}", highlight=False)
        console.print("self-test " + ("passed" if report.passed else "[red]failed[/red]"))
    return 0 if report.passed else 1


def _plot(args: argparse.Namespace) -> int:
    from navigator.commands.common import check_output_file, output_console, print_json
    from navigator.onboard.log import log_parts, read_log
    from navigator.onboard.plot import plot_log

    runs: dict[tuple[Path, ...], Path] = {}  # the parts of each run given -> the path it was given by (first)
    for given in args.log:
        log = _find_log(given)
        runs.setdefault(tuple(log_parts(log)) or (log,), log)
    logs = list(runs.values())
    if args.out is not None and len(logs) > 1:
        raise UserError(f"--out names one PNG, and {len(logs)} runs were given; drop --out to draw each beside its "
                        f"log (LOG.png), or give one log")
    # Every log is read, and every PNG checked, before the first is drawn: a bad one found after a few were drawn
    # would leave the user guessing which were.
    for log in logs:
        try:
            _, rows, _ = read_log(log)
        except ValueError as error:  # the message names the file
            raise UserError(str(error)) from None
        if not rows:
            raise UserError(f"{log}: the log has no steps to plot (the run ended before its first step); leave it "
                            f"out")
    outs = [check_output_file(args.out or log.with_suffix(".png"), "--out" if args.out else "the plot",
                              overwrite=args.overwrite, suffixes=(".png",)) for log in logs]
    documents = []
    console = output_console()
    for log, out in zip(logs, outs):
        try:
            summary = plot_log(log, out)
        except ValueError as error:  # changed since it was read: the message names the file
            raise UserError(str(error)) from None
        documents.append({"log": str(log), "plot": str(out), **summary})
        if not args.json:
            console.print(f"{summary['steps']} steps over {summary['seconds']:.1f} s plotted to {out}")
    if args.json:
        print_json(documents[0] if len(documents) == 1 else {"plots": documents})
    return 0


def _find_log(path: Path) -> Path:
    """The flight log (a file, or the name of a run with parts) `path` names: as given, or, for a bare name (no
    folder), in DEFAULT_LOG_DIR, where navigator onboard writes them. UserError, saying where it looked, when none."""
    from navigator.onboard.log import log_parts

    if path.is_dir():
        logs = sorted(path.glob("onboard-*.jsonl"))
        example = f", e.g. {logs[-1]}" if logs else " (this one holds none)"
        raise UserError(f"log {path} is a folder; give one of the .jsonl flight logs in it{example} (or "
                        f"{path / 'onboard-*.jsonl'} for all of them)")
    places = [path] if path.parent != Path(".") else [path, DEFAULT_LOG_DIR / path.name]
    for place in places:
        if place.is_file() or log_parts(place):
            return place
    where = "in the current folder, nor in " + str(DEFAULT_LOG_DIR) if len(places) > 1 else f"in {path.parent}"
    raise UserError(f"log {path} does not exist, nor any part of a run of that name, {where}; give a .jsonl file from "
                    f"navigator onboard --log-dir (default: {DEFAULT_LOG_DIR})")


def _fly(args: argparse.Namespace) -> int:
    from navigator import __version__
    from navigator.commands.common import output_console, print_json
    from navigator.config import to_dict
    from navigator.onboard.bundle import BundlePolicy, load_bundle
    from navigator.onboard.camera import CameraReader, policy_view
    from navigator.onboard.link import MavlinkLink
    from navigator.onboard.log import FlightLog
    from navigator.onboard.runtime import OnboardRuntime, PolicyStepper

    for flag, value in (("--bundle", args.bundle), ("--camera", args.camera), ("--mavlink", args.mavlink)):
        if value is None:
            raise UserError(f"{flag} is required to fly (or use 'navigator onboard plot LOG' to plot a log)")
    if args.duration is not None:
        _check_seconds("--duration", args.duration, DURATION_S)
    config = FLAGS.load(args, args.config)
    # The inputs in the order of the command line: the bundle, then the camera, the link and the log folder.
    _check_bundle_path(args.bundle)
    bundle = load_bundle(args.bundle)
    hfov = config.camera.hfov_deg if config.camera.hfov_deg is not None else bundle.image_spec.input_hfov_deg
    bundle.check_hfov(hfov)
    camera = CameraReader(args.camera, read_timeout_s=config.camera.read_timeout_s,
                          backoff_s=config.camera.reopen_backoff_s, backoff_max_s=config.camera.reopen_backoff_max_s)
    link = MavlinkLink(args.mavlink).check()
    log_dir = _check_log_dir(args.log_dir or DEFAULT_LOG_DIR)
    console = output_console(stderr=args.json)

    log = None
    try:
        # The link opens first: a TCP autopilot that refuses the connection fails at once, before the camera opens
        link.open(config.link.connect_timeout_s)
        console.print(f"camera {args.camera}: waiting up to {config.camera.open_timeout_s:g} s for a first frame")
        first = camera.start().wait_first(config.camera.open_timeout_s)
        height, width = first.image.shape[:2]
        spec = policy_view(bundle, width, height, hfov)
        console.print(f"camera {args.camera}: {width}x{height}, {hfov:g} deg -> policy "
                      f"{spec.output_width}x{spec.output_height} at {spec.output_hfov_deg:g} deg")
        stepper = PolicyStepper(bundle, BundlePolicy(bundle, threads=config.threads), spec)
        console.print(f"mavlink {args.mavlink}: waiting up to {config.link.connect_timeout_s:g} s for the "
                      f"autopilot's heartbeat")
        status = link.wait_for_autopilot(config.link.connect_timeout_s)
        autopilot = status.autopilot
        assert autopilot is not None
        console.print(f"autopilot {autopilot.name} (system {status.system_id}) in {status.mode_name()}, "
                      f"{'armed' if status.armed else 'disarmed'}; the policy flies in {autopilot.engaged_mode_name}")
        header = {"version": __version__, "bundle": str(bundle.path), "onnx_sha256": bundle.manifest["onnx"]["sha256"],
                  "task": bundle.task, "airframe": bundle.airframe, "camera": args.camera,
                  "camera_size": [width, height], "camera_hfov_deg": hfov, "image_spec": spec.to_dict(),
                  "mavlink": args.mavlink, "autopilot": autopilot.name, "system_id": status.system_id,
                  "engage": args.engage, "config": to_dict(config)}
        log = FlightLog(log_dir, header, part_bytes=int(config.log.part_mb * 1e6), max_parts=config.log.max_parts)
        console.print(f"flight log {log.path}")

        def announce(decision) -> None:
            console.print(f"[bold]{decision.state.value}[/bold]: {decision.reason}")

        runtime = OnboardRuntime(config, stepper, camera, link, log, engage=args.engage, on_change=announce)
        summary = runtime.run(args.duration)
    finally:
        if log is not None:  # interrupted before the run took the log over (the run closes it itself)
            log.close(ended="interrupted")
        camera.close()
        link.close()
    document = summary.to_dict()
    if args.json:
        print_json(document)
    else:
        median = document["inference_ms_median"]
        console.print(f"ended ({summary.ended}) after {summary.seconds:.1f} s: {summary.steps} steps, "
                      f"{summary.policy_steps} policy steps"
                      f"{f' (median {median:.2f} ms each)' if median is not None else ''}, "
                      f"{summary.setpoints_sent} setpoints sent; states "
                      + ", ".join(f"{k} {v}" for k, v in document["states"].items() if v))
        parts = f" and {summary.log_parts - 1} later parts" if summary.log_parts > 1 else ""
        console.print(f"flight log {summary.log}{parts}")
    return 0
