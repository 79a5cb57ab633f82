"""SITL: the simulated world, in real time, as a MAVLink vehicle with a camera stream.

`navigator sitl` runs a task env as a PX4 (default) or ArduPilot vehicle that any MAVLink client can connect to, read
telemetry from, arm, switch modes and fly with body-frame velocity setpoints, and serves the onboard camera as an
HTTP MJPEG stream OpenCV opens by URL. Modules, one job each:

* `autopilot`: the flavours (modes, custom_mode encodings, setpoint timeouts) and the arm/mode state machine;
* `frames`: world ENU <-> MAVLink NED, and setpoints -> the env's heading-frame FLU command;
* `telemetry`: the messages sent, their rates, the fixed home, the parameters;
* `vehicle`: answers to commands, setpoints and parameter requests;
* `link`: UDP (PX4 style) and TCP server (ArduPilot style) transports, MAVLink encoding, link faults;
* `camera_stream`: the MJPEG server (newest frame only);
* `faults`: fault injection specs;
* `config`: the run's settings and port conventions;
* `runner`: the real-time loop and episodes (`Sitl`).

Each episode starts hovering at the task's start pose, armed, in the hold mode (PX4 AUTO.LOITER, ArduCopter LOITER);
see `autopilot` for what each flavour accepts. With `SitlConfig.engage_wait_s` its world stands still until a client
switches to OFFBOARD / GUIDED (at most that long), so that its clock starts at the handover (`runner`). A harness
starts one in-process:

    with Sitl(SitlConfig(seed=3, link=LinkConfig(port=client_port, local_port=0, gcs_port=0),
                         camera=StreamConfig(port=0)), on_event=events.append) as sitl:
        sitl.run(stop_event)        # blocking; events: ready, episode_start, mode, fault, episode
                                    # (and clock_start, with engage_wait_s)
"""

from sim_envs.sitl.config import LinkConfig, SitlConfig, StreamConfig, task_seconds
from sim_envs.sitl.faults import Fault, FaultConfig, FaultSpecError, parse_fault
from sim_envs.sitl.link import BindError, PortInUseError
from sim_envs.sitl.runner import EpisodeReport, Sitl

__all__ = ["BindError", "EpisodeReport", "Fault", "FaultConfig", "FaultSpecError", "LinkConfig", "PortInUseError",
           "Sitl", "SitlConfig", "StreamConfig", "parse_fault", "task_seconds"]
