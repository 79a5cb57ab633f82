"""Settings of a SITL run as plain data: the world, the autopilot flavour, the MAVLink link, the camera stream, faults.

Port defaults follow the real SITLs (None in a field means "the flavour's default"):

| | PX4 (`autopilot="px4"`) | ArduPilot (`autopilot="ardupilot"`) |
| --- | --- | --- |
| `link.port` | UDP 14540, where the offboard client listens (`udpin:127.0.0.1:14540`) | TCP 5760 (`tcp:HOST:5760`) |
| `link.local_port` | UDP 14580: the vehicle's own port (0: any free) | unused |
| `link.gcs_port` | UDP 14550: a second link for ground stations (0: off) | the same |
| `camera.port` | TCP 5600, `http://127.0.0.1:5600/camera.mjpg` (0: any free) | the same |

The camera renders what it streams: 320x240 at a 100 deg horizontal field of view by default, wider than the shipped
policy's 64x48 at 80 deg, with the same tilt (0) and rate (30 Hz). The onboard crop (policies.preprocessing.ImageSpec,
input 100 deg -> output 80 deg) keeps the central 225x169 pixels (vertical field of view 64 of the stream's 84 deg) and
resizes them to 64x48. Image effects of a preset (noise, blur, occluders) act at the stream's resolution.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from sim_envs.sitl.autopilot import AUTOPILOT_NAMES
from sim_envs.sitl.faults import FaultConfig
from sim_envs.sitl.telemetry import Home

PX4_OFFBOARD_PORT = 14540
PX4_LOCAL_PORT = 14580
ARDUPILOT_TCP_PORT = 5760
GCS_PORT = 14550
CAMERA_PORT = 5600
# The longest an episode waits for a client to engage: a day is longer than any rehearsal (a longer wait is a typo).
MAX_ENGAGE_WAIT_S = 86400.0


def task_seconds(task: str) -> float:
    """The task's own episode limit in seconds (its env class's `max_seconds`), read without building a world."""
    from gymnasium.envs.registration import load_env_creator

    from sim_envs import task_id

    return float(load_env_creator(gymnasium.spec(task_id(task)).entry_point).max_seconds)


@dataclass(frozen=True)
class LinkConfig:
    host: str = "127.0.0.1"  # where the vehicle binds its sockets and sends to
    port: int | None = None  # PX4: UDP port the offboard client listens on; ArduPilot: the TCP server's port
    local_port: int | None = None  # PX4: the vehicle's own UDP port
    gcs_port: int = GCS_PORT  # UDP port a ground station listens on; 0: no GCS link
    system_id: int = 1

    def __post_init__(self) -> None:
        for name in ("port", "local_port", "gcs_port"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise ValueError(f"link {name} {value} is not a port number (0..65535)")
        if not 1 <= self.system_id <= 255:
            raise ValueError(f"link system_id {self.system_id} must be in 1..255")

    def resolved(self, autopilot: str) -> LinkConfig:
        """The flavour's default ports in place of None."""
        if autopilot == "px4":
            return dataclasses.replace(self, port=PX4_OFFBOARD_PORT if self.port is None else self.port,
                                       local_port=PX4_LOCAL_PORT if self.local_port is None else self.local_port)
        return dataclasses.replace(self, port=ARDUPILOT_TCP_PORT if self.port is None else self.port, local_port=None)


@dataclass(frozen=True)
class StreamConfig:
    host: str = "127.0.0.1"
    port: int = CAMERA_PORT
    width: int = 320
    height: int = 240
    fov_deg: float = 100.0  # horizontal
    tilt_deg: float = 0.0
    rate_hz: int = 30  # camera, simulation step and policy rate
    quality: int = 95  # JPEG quality

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"camera port {self.port} is not a port number (0..65535)")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"camera JPEG quality {self.quality} must be in 1..100")

    def camera(self) -> dict[str, Any]:
        """The env's camera settings (sim_envs.camera.CameraConfig keywords)."""
        return {"width": self.width, "height": self.height, "fov_deg": self.fov_deg, "tilt_deg": self.tilt_deg,
                "rate_hz": self.rate_hz}


@dataclass(frozen=True)
class SitlConfig:
    task: str = "fly-to-target"
    preset: str = "summer"
    airframe: str = "x500"
    seed: int = 0
    episodes: int = 1
    max_seconds: float | None = None  # None: the task's own limit
    autopilot: str = "px4"
    setpoint_timeout_s: float | None = None  # COM_OF_LOSS_T (PX4, 1 s) / GUID_TIMEOUT (ArduPilot, 3 s)
    link: LinkConfig = field(default_factory=LinkConfig)
    camera: StreamConfig = field(default_factory=StreamConfig)
    # The policy's horizontal view (deg), narrower than the stream's: fly-to-target starts its target within it, so
    # that a seed gives the world and plan the policy meets in `navigator fly` (the default camera's 80 deg).
    task_fov_deg: float = 80.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    home: Home = field(default_factory=Home)
    gui: bool = False  # PyBullet's window (needs a display)
    # Each episode's world stands still (hovering, camera and telemetry streaming) until a client switches the vehicle
    # to its setpoint mode (OFFBOARD / GUIDED), at most this many seconds; 0: its clock starts at once.
    engage_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.autopilot not in AUTOPILOT_NAMES:
            raise ValueError(f"unknown autopilot {self.autopilot!r}; valid: {', '.join(AUTOPILOT_NAMES)}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.setpoint_timeout_s is not None and not 0.0 < self.setpoint_timeout_s <= 60.0:
            raise ValueError(f"setpoint timeout {self.setpoint_timeout_s} s must be in (0, 60]")
        if not 10.0 <= self.task_fov_deg <= self.camera.fov_deg:
            raise ValueError(f"task fov {self.task_fov_deg} deg must be in [10, the stream's fov "
                             f"{self.camera.fov_deg} deg]: the policy's view is a crop of the stream")
        if self.max_seconds is not None and not self.max_seconds > 0.0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if not 0.0 <= self.engage_wait_s <= MAX_ENGAGE_WAIT_S:
            raise ValueError(f"engage_wait_s {self.engage_wait_s} must be in [0, {MAX_ENGAGE_WAIT_S:g}]")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["faults"] = self.faults.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SitlConfig:
        data = dict(data)
        nested = {"link": LinkConfig, "camera": StreamConfig, "faults": FaultConfig, "home": Home}
        for name, kind in nested.items():
            if name in data and isinstance(data[name], dict):
                data[name] = kind.from_dict(data[name]) if hasattr(kind, "from_dict") else kind(**data[name])
        return cls(**data)
