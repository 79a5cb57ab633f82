"""Run a simulated world in real time as a MAVLink vehicle (PX4 or ArduPilot flavour) with a camera stream.

Any MAVLink client connects as to a real SITL: ground stations, offboard SDKs, `navigator onboard`. Each episode
starts hovering, armed, in the hold mode (PX4 AUTO.LOITER, ArduCopter LOITER); switch to OFFBOARD / GUIDED and stream
SET_POSITION_TARGET_LOCAL_NED velocity + yaw-rate setpoints (MAV_FRAME_BODY_NED, type_mask 0x05C7) to fly it. The
camera is served at http://HOST:PORT/camera.mjpg (OpenCV: cv2.VideoCapture(url)).

Ports follow the real SITLs: PX4 sends to UDP 14540 (offboard client: udpin:127.0.0.1:14540) from 14580 and to 14550
for ground stations; ArduPilot serves TCP 5760 (tcp:127.0.0.1:5760). Camera on TCP 5600. Port 0: any free port.

examples:
  navigator sitl                                           # PX4 flavour, fly-to-target in summer
  navigator sitl --task fly-to-target --preset winter --seed 7 --episodes 5
  navigator sitl --autopilot ardupilot                     # ArduCopter: GUIDED, TCP 5760
  navigator sitl --fault camera-stall:5:2 --fault mavlink-loss:0.2
  navigator sitl --json                                    # one JSON object per line: ready, episode, summary...

faults (repeatable --fault, times in seconds from each episode's start):
  camera-stall:AT:FOR  camera-drop:FRACTION[:AT:FOR]  camera-corrupt:FRACTION[:AT:FOR]
  mavlink-loss:FRACTION[:AT:FOR]  mavlink-latency:MS[:AT:FOR]  heartbeat-silence:AT:FOR  mode-change:AT[:FOR]
"""

from __future__ import annotations

import argparse
from typing import Any

from navigator.errors import UserError
from navigator.scenario import HELD_OUT_SEED

# Option of each port SITL binds, for the message when one is taken.
_PORT_OPTIONS = {"mavlink port": "--mavlink-port", "mavlink local port": "--mavlink-local-port",
                 "camera port": "--camera-port"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    world = parser.add_argument_group("world")
    world.add_argument("--task", default="fly-to-target", help="fly-to-target | hike | follow")
    world.add_argument("--preset", default="summer", help="scenery preset, composable with +, e.g. winter+wind")
    world.add_argument("--airframe", default="x500", help="x500 | cf2x")
    world.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="seed of the first episode")
    world.add_argument("--episodes", type=int, default=1, help="number of episodes (seeds SEED, SEED+1, ...)")
    world.add_argument("--max-seconds", type=float, help="end each episode after this many seconds "
                                                         "(default: the task's own limit)")
    vehicle = parser.add_argument_group("vehicle and MAVLink")
    vehicle.add_argument("--autopilot", default="px4", choices=("px4", "ardupilot"), help="flavour: modes, "
                         "custom_mode encodings, setpoint timeouts and port conventions")
    vehicle.add_argument("--host", default="127.0.0.1", help="address the vehicle and the camera stream bind to "
                                                             "(and send to, for UDP)")
    vehicle.add_argument("--mavlink-port", type=int, help="PX4: UDP port the offboard client listens on "
                                                          "(default 14540); ArduPilot: TCP server port (default 5760)")
    vehicle.add_argument("--mavlink-local-port", type=int, help="PX4: the vehicle's own UDP port (default 14580; "
                                                                "0: any free)")
    vehicle.add_argument("--gcs-port", type=int, default=14550, help="UDP port a ground station listens on; 0: off")
    vehicle.add_argument("--setpoint-timeout", type=float, metavar="S", help="COM_OF_LOSS_T (PX4, default 1 s) or "
                                                                            "GUID_TIMEOUT (ArduPilot, default 3 s)")
    camera = parser.add_argument_group("camera stream")
    camera.add_argument("--camera-port", type=int, default=5600, help="HTTP port of the MJPEG stream; 0: any free")
    camera.add_argument("--camera-width", type=int, default=320, help="pixels")
    camera.add_argument("--camera-height", type=int, default=240, help="pixels")
    camera.add_argument("--camera-fov", type=float, default=100.0, help="horizontal field of view, degrees (wider "
                                                                         "than the policy's: onboard crops it)")
    camera.add_argument("--task-fov", type=float, default=80.0, help="the policy's horizontal field of view, "
                        "degrees: fly-to-target starts its target within it, as in `navigator fly`")
    camera.add_argument("--camera-tilt", type=float, default=0.0, help="degrees up")
    camera.add_argument("--camera-rate", type=int, default=30, help="frames per second: also the simulation step")
    camera.add_argument("--camera-quality", type=int, default=95, help="JPEG quality 1..100")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault (repeatable); see the list above")
    parser.add_argument("--gui", action="store_true", help="also show PyBullet's window (needs a display)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line on stdout: ready, "
                                                            "episode_start, mode, fault, episode, summary")


def sitl_config(args: argparse.Namespace) -> Any:
    """The SitlConfig of a command line, every value checked (UserError naming the option) before anything starts."""
    import dataclasses

    from navigator.scenario import CameraSettings, ScenarioConfig
    from sim_envs.sitl import FaultConfig, FaultSpecError, LinkConfig, SitlConfig, StreamConfig

    # ScenarioConfig checks and normalises the names and camera settings (a SettingError names the value).
    scenario = ScenarioConfig(task=args.task, preset=args.preset, airframe=args.airframe,
                              camera=CameraSettings(args.camera_width, args.camera_height, args.camera_fov,
                                                    args.camera_tilt, args.camera_rate),
                              max_seconds=args.max_seconds)
    try:
        faults = FaultConfig.parse(args.fault)
    except FaultSpecError as error:
        raise UserError(f"--fault: {error}") from None
    for flag, value in (("--mavlink-port", args.mavlink_port), ("--mavlink-local-port", args.mavlink_local_port),
                        ("--gcs-port", args.gcs_port), ("--camera-port", args.camera_port)):
        if value is not None and not 0 <= value <= 65535:
            raise UserError(f"{flag} {value} is not a port number: use 1..65535, or 0 for any free port")
    if args.autopilot == "px4" and args.mavlink_port == 0:
        raise UserError("--mavlink-port 0: with PX4 it is the port the offboard client listens on, so it must be "
                        "given; 0 is only for --mavlink-local-port")
    try:
        return SitlConfig(
            task=scenario.task, preset=scenario.preset, airframe=scenario.airframe, seed=args.seed,
            episodes=args.episodes, max_seconds=scenario.max_seconds, autopilot=args.autopilot,
            setpoint_timeout_s=args.setpoint_timeout, task_fov_deg=args.task_fov,
            link=LinkConfig(host=args.host, port=args.mavlink_port, local_port=args.mavlink_local_port,
                            gcs_port=args.gcs_port),
            camera=StreamConfig(host=args.host, port=args.camera_port, quality=args.camera_quality,
                                **dataclasses.asdict(scenario.camera)),
            faults=faults, gui=args.gui)
    except ValueError as error:
        raise UserError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    from navigator.commands.common import output_console, print_json
    from sim_envs.errors import NoDisplayError
    from sim_envs.sitl import BindError, PortInUseError, Sitl

    config = sitl_config(args)
    console = output_console(stderr=args.json)

    def on_event(event: dict[str, Any]) -> None:
        if args.json:
            print_json(event, line=True)
        else:
            _say(console, event, config.episodes)

    try:
        sitl = Sitl(config, on_event=on_event)
    except PortInUseError as error:
        option = _PORT_OPTIONS.get(error.what, "--host")
        raise UserError(f"{error.protocol} port {error.address[1]} on {error.address[0]} ({option}) is already in "
                        f"use, perhaps by another SITL or PX4/ArduPilot instance: stop it, or choose another port "
                        f"with {option} PORT (0: any free port)") from None
    except BindError as error:
        raise UserError(f"{error.strerror}: give --host an address of this machine (e.g. 127.0.0.1)") from None
    except NoDisplayError as error:
        raise UserError(f"--gui: {error.reason}; on a headless machine run under `xvfb-run -a`, or drop --gui") \
            from None
    with sitl:
        reports = sitl.run()
    successes = sum(r.success for r in reports)
    endings: dict[str, int] = {}
    for report in reports:
        endings[report.ending] = endings.get(report.ending, 0) + 1
    summary = {"event": "summary", "episodes": len(reports), "successes": successes,
               "success_rate": successes / len(reports) if reports else 0.0, "endings": dict(sorted(endings.items())),
               "overruns": sum(r.overruns for r in reports), "steps": sum(r.steps for r in reports)}
    if args.json:
        print_json(summary, line=True)
    else:
        console.print(f"done: success {successes}/{len(reports)} · endings "
                      f"{', '.join(f'{k} {v}' for k, v in summary['endings'].items())}")
    return 0


def _say(console: Any, event: dict[str, Any], episodes: int) -> None:
    """One console line per event."""
    kind = event["event"]
    if kind == "ready":
        console.print(f"[bold]SITL ready[/bold] ({event['autopilot']}): MAVLink client [cyan]{event['mavlink']}"
                      f"[/cyan]" + (f" · ground station [cyan]{event['gcs']}[/cyan]" if event["gcs"] else "")
                      + f" · camera [cyan]{event['camera']}[/cyan] · Ctrl-C stops")
    elif kind == "episode_start":
        console.print(f"episode {event['episode'] + 1}/{episodes} (seed {event['seed']}): hovering in hold mode")
    elif kind == "mode":
        console.print(f"  t {event['time']:5.1f} s  mode {event['mode']} ({event['by']})")
    elif kind == "fault":
        console.print(f"  t {event['time']:5.1f} s  fault {event['fault']} {event['state']}")
    elif kind == "episode":
        style = "green" if event["success"] else "red"
        console.print(f"episode {event['episode'] + 1}/{episodes} (seed {event['seed']}): [{style}]{event['ending']}"
                      f"[/{style}] after {event['time_s']:.1f} s")
        if event["overruns"]:
            console.print(f"  [yellow]real time: {event['overruns']} of {event['steps']} steps started late (worst "
                          f"{event['max_late_ms']:.0f} ms; a step takes {event['step_ms_median']:.1f} ms): lower "
                          f"--camera-width/--camera-height or --camera-rate on this machine[/yellow]")
