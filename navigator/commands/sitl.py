"""Run a simulated world in real time as a MAVLink vehicle (PX4 or ArduPilot flavour) with a camera stream.

Any MAVLink client connects as to a real SITL: ground stations, offboard SDKs, `navigator onboard`. Each episode
starts hovering, armed, in the hold mode (PX4 AUTO.LOITER, ArduCopter LOITER); switch to OFFBOARD / GUIDED and stream
SET_POSITION_TARGET_LOCAL_NED velocity + yaw-rate setpoints (MAV_FRAME_BODY_NED, type_mask 0x05C7) to fly it. The
camera is served at http://HOST:PORT/camera.mjpg (OpenCV: cv2.VideoCapture(url)).

The world stands still until a client switches to OFFBOARD / GUIDED (`navigator onboard --engage` does, after its
pre-stream): only then does the episode's clock start, so its time limit and faults count from the handover however
long the onboard runtime took to start. --engage-wait bounds that wait (the clock then starts anyway); 0 starts it at
once, for a client that flies without that mode or a run nobody flies.

Ports follow the real SITLs: PX4 sends to UDP 14540 (offboard client: udpin:127.0.0.1:14540) from 14580 and to 14550
for ground stations; ArduPilot serves TCP 5760 (tcp:127.0.0.1:5760). Camera on TCP 5600. Port 0: any free port.

examples:
  navigator sitl                                           # PX4 flavour, fly-to-target in summer
  navigator sitl --task fly-to-target --preset winter --seed 7 --episodes 5
  navigator sitl --autopilot ardupilot                     # ArduCopter: GUIDED, TCP 5760
  navigator sitl --fault camera-stall:5:2 --fault mavlink-loss:0.2
  navigator sitl --json                                    # one JSON object per line: ready, episode, summary...
  navigator sitl --engage-wait 0 --max-seconds 5           # the clock runs at once (no client needed)

faults (repeatable --fault, times in seconds from the start of each episode's clock):
  camera-stall:AT:FOR  camera-drop:FRACTION[:AT:FOR]  camera-corrupt:FRACTION[:AT:FOR]
  mavlink-loss:FRACTION[:AT:FOR]  mavlink-latency:MS[:AT:FOR]  heartbeat-silence:AT:FOR  mode-change:AT[:FOR]
  A fault whose AT is at or past the episode's end (--max-seconds, else the task's own limit) is refused: it would
  never act, and a rehearsal that seems to have survived it would prove nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from navigator.config import MAX_EPISODES, MAX_SEED, ConfigFlags, SettingError, check_seed_span, check_settings, setting
from navigator.errors import UserError
from navigator.scenario import HELD_OUT_SEED, ScenarioConfig

# Option of each port SITL binds, for the message when one is taken.
_PORT_OPTIONS = {"mavlink port": "--mavlink-port", "mavlink local port": "--mavlink-local-port",
                 "camera port": "--camera-port"}

# The stream's camera where no option sets it: wider than the policy's 64x48 at 80 deg (CameraSettings' defaults), as
# a real drone's camera is, so that onboard crops it as it would there (sim_envs.sitl.StreamConfig's defaults).
STREAM_CAMERA = {"scenario.camera.width": 320, "scenario.camera.height": 240, "scenario.camera.fov_deg": 100.0}


@dataclass(frozen=True)
class SitlSettings:
    """What the options of `navigator sitl` set, each checked against its bounds when built (the scenario's by
    ScenarioConfig), so that an error names the option as typed. `run` turns it into a sim_envs SitlConfig."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)
    episodes: int = setting(1, ge=1, le=MAX_EPISODES)
    autopilot: str = "px4"
    host: str = "127.0.0.1"
    mavlink_port: int | None = setting(None, ge=0, le=65535)  # None: the flavour's default
    mavlink_local_port: int | None = setting(None, ge=0, le=65535)
    gcs_port: int = setting(14550, ge=0, le=65535)
    setpoint_timeout: float | None = setting(None, gt=0.0, le=60.0)
    camera_port: int = setting(5600, ge=0, le=65535)
    camera_quality: int = setting(95, ge=1, le=100)
    task_fov: float = setting(80.0, ge=10.0, le=170.0)
    # Long enough to start the onboard runtime by hand in a second terminal; a day is longer than any rehearsal.
    engage_wait: float = setting(300.0, ge=0.0, le=86400.0)

    def __post_init__(self) -> None:
        check_settings(self)
        check_seed_span(self.seed, self.episodes, "seed", "episodes")
        if self.task_fov > self.scenario.camera.fov_deg:  # either may be the one given: both named, with values
            raise SettingError("task_fov", f"must be at most {{scenario.camera.fov_deg}} "
                                           f"({self.scenario.camera.fov_deg:g}), got {self.task_fov:g}: the policy's "
                                           f"view is a crop of the stream; give a wider {{scenario.camera.fov_deg}} "
                                           f"or a narrower {{task_fov}}", ("scenario.camera.fov_deg", "task_fov"))


FLAGS = ConfigFlags(SitlSettings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    world = parser.add_argument_group("world")
    FLAGS.add(world, "--task", "scenario.task", "fly-to-target | hike | follow")
    FLAGS.add(world, "--preset", "scenario.preset", "scenery preset, composable with +, e.g. winter+wind")
    FLAGS.add(world, "--airframe", "scenario.airframe", "x500 | cf2x")
    FLAGS.add(world, "--seed", "seed", "seed of the first episode", type=int)
    FLAGS.add(world, "--episodes", "episodes", "number of episodes (seeds SEED, SEED+1, ...); each starts in the "
                                               "hold mode again, which a running navigator onboard reads as the "
                                               "operator taking over: engage each one (onboard --engage once per "
                                               "episode, or OFFBOARD / GUIDED from a ground station)", type=int)
    FLAGS.add(world, "--max-seconds", "scenario.max_seconds", "end each episode after this many seconds", type=float,
              default_text="the task's own limit")
    vehicle = parser.add_argument_group("vehicle and MAVLink")
    FLAGS.add(vehicle, "--autopilot", "autopilot", "flavour: modes, custom_mode encodings, setpoint timeouts and port "
                                                   "conventions", choices=("px4", "ardupilot"))
    FLAGS.add(vehicle, "--host", "host", "address the vehicle and the camera stream bind to (and send to, for UDP)")
    FLAGS.add(vehicle, "--mavlink-port", "mavlink_port", "PX4: UDP port the offboard client listens on; ArduPilot: "
                                                         "TCP server port", type=int,
              default_text="14540 for PX4, 5760 for ArduPilot")
    FLAGS.add(vehicle, "--mavlink-local-port", "mavlink_local_port", "PX4: the vehicle's own UDP port (0: any free)",
              type=int, default_text="14580")
    FLAGS.add(vehicle, "--gcs-port", "gcs_port", "UDP port a ground station listens on; 0: off", type=int)
    FLAGS.add(vehicle, "--setpoint-timeout", "setpoint_timeout", "COM_OF_LOSS_T (PX4) or GUID_TIMEOUT (ArduPilot), "
                                                                 "seconds", type=float, metavar="S",
              default_text="1 for PX4, 3 for ArduPilot")
    FLAGS.add(vehicle, "--engage-wait", "engage_wait", "how long each episode stands still, hovering (camera and "
                                                       "telemetry streaming), for a client to switch the vehicle to "
                                                       "OFFBOARD (PX4) / GUIDED (ArduPilot), e.g. navigator onboard "
                                                       "--engage; its clock (time limit, faults) starts then, or when "
                                                       "this wait ends; 0: at once", type=float, metavar="S")
    camera = parser.add_argument_group("camera stream")
    FLAGS.add(camera, "--camera-port", "camera_port", "HTTP port of the MJPEG stream; 0: any free", type=int)
    for flag, key, text, kind in (
            ("--camera-width", "scenario.camera.width", "pixels", int),
            ("--camera-height", "scenario.camera.height", "pixels", int),
            ("--camera-fov", "scenario.camera.fov_deg", "horizontal field of view, degrees (wider than the policy's: "
                                                        "onboard crops it)", float)):
        FLAGS.add(camera, flag, key, text, type=kind, default_text=f"{STREAM_CAMERA[key]:g}")
    FLAGS.add(camera, "--task-fov", "task_fov", "the policy's horizontal field of view, degrees: fly-to-target starts "
                                                "its target within it, as in `navigator fly`", type=float)
    FLAGS.add(camera, "--camera-tilt", "scenario.camera.tilt_deg", "degrees up", type=float)
    FLAGS.add(camera, "--camera-rate", "scenario.camera.rate_hz", "frames per second: also the simulation step",
              type=int)
    FLAGS.add(camera, "--camera-quality", "camera_quality", "JPEG quality 1..100", type=int)
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC",
                        help="inject a fault (repeatable); see the list above")
    parser.add_argument("--gui", action="store_true", help="also show PyBullet's window (needs a display)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line on stdout: ready, "
                                                            "episode_start, clock_start, mode, fault, episode, summary")


def sitl_config(args: argparse.Namespace) -> Any:
    """The SitlConfig of a command line, every value checked (UserError naming the option) before anything starts."""
    import dataclasses

    from sim_envs.sitl import FaultConfig, FaultSpecError, LinkConfig, SitlConfig, StreamConfig, task_seconds

    # Options the stream's camera does not share with the policy's take the stream's defaults, not CameraSettings'.
    settings = FLAGS.load(args, None, lambda overrides: {key: STREAM_CAMERA.get(key) if value is None else value
                                                         for key, value in overrides.items()})
    scenario = settings.scenario
    try:
        faults = FaultConfig.parse(args.fault)
    except FaultSpecError as error:
        raise UserError(f"--fault: {error}") from None
    limit = scenario.max_seconds if scenario.max_seconds is not None else task_seconds(scenario.task)
    for spec, fault in zip(args.fault, faults.faults):
        if fault.at >= limit:
            ends = (f"--max-seconds {limit:g}" if scenario.max_seconds is not None
                    else f"the {scenario.task} task's own limit, {limit:g} s")
            raise UserError(f"--fault {spec} starts at {fault.at:g} s, when every episode has ended ({ends}), so it "
                            f"would never act: start it before {limit:g} s, or give a longer --max-seconds")
    link = LinkConfig(host=settings.host, port=settings.mavlink_port, local_port=settings.mavlink_local_port,
                      gcs_port=settings.gcs_port)
    _check_ports(args, settings.autopilot, link.resolved(settings.autopilot), settings.camera_port)
    return SitlConfig(
        task=scenario.task, preset=scenario.preset, airframe=scenario.airframe, seed=settings.seed,
        episodes=settings.episodes, max_seconds=scenario.max_seconds, autopilot=settings.autopilot,
        setpoint_timeout_s=settings.setpoint_timeout, task_fov_deg=settings.task_fov, link=link,
        camera=StreamConfig(host=settings.host, port=settings.camera_port, quality=settings.camera_quality,
                            **dataclasses.asdict(scenario.camera)),
        faults=faults, gui=args.gui, engage_wait_s=settings.engage_wait)


def _check_ports(args: argparse.Namespace, autopilot: str, link: Any, camera_port: int) -> None:
    """Refuse ports that collide with each other (after the flavour's defaults fill those not given): two sockets of
    one protocol bound to one port, a UDP link that sends to the vehicle's own port (it would talk to itself), or the
    offboard and ground-station links sent to one port (one client would get both streams, the other none)."""
    if autopilot == "ardupilot" and args.mavlink_local_port is not None:  # else silently unused
        raise UserError("--mavlink-local-port applies to PX4 only: the ArduPilot flavour serves one TCP port, "
                        "--mavlink-port; drop --mavlink-local-port")
    if autopilot == "px4" and link.port == 0:
        raise UserError("--mavlink-port 0: with PX4 it is the port the offboard client listens on, so it must be "
                        "given; 0 is only for --mavlink-local-port")

    def option(flag: str, port: int) -> str:
        given = getattr(args, flag.lstrip("-").replace("-", "_")) is not None
        return f"{flag} {port}" if given else f"the default {flag} {port}"

    # (option, protocol, port) of what the vehicle binds, and of the UDP ports its links send to; port 0 is any free
    # port (bound) or no link (GCS), which collides with nothing.
    if autopilot == "px4":
        bound = [("--mavlink-local-port", "UDP", link.local_port), ("--camera-port", "TCP", camera_port)]
        sent = [("--mavlink-port", link.port), ("--gcs-port", link.gcs_port)]
    else:
        bound = [("--mavlink-port", "TCP", link.port), ("--camera-port", "TCP", camera_port)]
        sent = [("--gcs-port", link.gcs_port)]
    bound = [(flag, protocol, port) for flag, protocol, port in bound if port]
    sent = [(flag, port) for flag, port in sent if port]
    for index, (flag, protocol, port) in enumerate(bound):
        for other, other_protocol, other_port in bound[index + 1:]:
            if (protocol, port) == (other_protocol, other_port):
                raise UserError(f"{option(flag, port)} and {option(other, other_port)} are one {protocol} port, and "
                                f"the vehicle binds both: give them different ports")
    for flag, port in sent:
        for other, protocol, other_port in bound:
            if protocol == "UDP" and port == other_port:
                raise UserError(f"{option(flag, port)} is the vehicle's own UDP port ({option(other, other_port)}): "
                                f"it would send its MAVLink to itself; give {flag} the port your client listens on, "
                                f"and {other} another")
    if len(sent) == 2 and sent[0][1] == sent[1][1]:
        raise UserError(f"{option(*sent[0])} and {option(*sent[1])} are one port: the offboard client and a ground "
                        f"station cannot both listen there; give --gcs-port another port, or 0 for no ground station "
                        f"link")


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
        wait = event["engage_wait_s"]
        console.print(f"episode {event['episode'] + 1}/{episodes} (seed {event['seed']}): hovering in hold mode"
                      + (f"; its clock starts when a client switches to {event['engage_mode']} (waiting up to "
                         f"{wait:g} s)" if wait else ""))
    elif kind == "clock_start":
        console.print(f"  clock started: {'engaged' if event['by'] == 'engage' else 'no client engaged'} after "
                      f"{event['waited_s']:.1f} s")
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
