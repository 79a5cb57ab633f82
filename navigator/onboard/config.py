"""The onboard runtime's settings (`OnboardConfig`), loaded from launch/onboard.yaml: the camera's field of view,
when a frame or the link counts as lost, command and acceleration limits, the geofence, rates and the flight log.

Every field is range-checked when the config is built (navigator.config's `setting`), and the loader refuses unknown
keys, duplicate keys and wrongly typed values with a message that names the key and the file. Torch-free: it uses
only navigator.config (yaml, stdlib).

Every field has a maximum as well as a minimum: a timeout, limit or fence large enough disables the safety check it
sets (a stale-frame time of an hour flies blind; a geofence of 1e9 m is none), and a huge timeout overflows the
clock arithmetic of the waits. Each maximum is the most a real flight could want, with its reason beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from navigator.config import SettingError, check_settings, load_config, setting


@dataclass(frozen=True)
class CameraSettings:
    # The horizontal field of view of the camera the runtime reads (deg). None: the camera is the one the policy was
    # trained with (same field of view); a wider camera is cropped to the trained field of view.
    hfov_deg: float | None = setting(None, gt=0.0, lt=180.0)
    # A newer frame must have arrived within this time, else HOLD. At most 1 s: at 2 m/s a frame 1 s old shows the
    # world 2 m behind the vehicle, and the policy was trained on frames a few milliseconds old.
    stale_frame_s: float = setting(0.3, gt=0.0, le=1.0)
    open_timeout_s: float = setting(10.0, gt=0.0, le=120.0)  # at start: the first frame within this (a USB camera
    # or an RTSP stream is up within seconds; 2 min covers a camera powered up with the companion)
    read_timeout_s: float = setting(3.0, gt=0.0, le=60.0)  # a network stream silent this long is closed and reopened
    reopen_backoff_s: float = setting(0.5, gt=0.0, le=10.0)  # first wait before reopening a failed source; doubles ...
    reopen_backoff_max_s: float = setting(5.0, gt=0.0, le=60.0)  # ... up to this (a camera back after a minute)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.reopen_backoff_max_s < self.reopen_backoff_s:
            raise SettingError("reopen_backoff_max_s", f"must be at least reopen_backoff_s "
                                                       f"({self.reopen_backoff_s}), got {self.reopen_backoff_max_s}")


@dataclass(frozen=True)
class LinkSettings:
    # At start: the autopilot's heartbeat must arrive within this. At most 10 min: the flight controller may be
    # powered after the companion; past that something is wrong, and systemd restarts the service anyway.
    connect_timeout_s: float = setting(30.0, gt=0.0, le=600.0)
    # No autopilot heartbeat (or telemetry) this long -> LINK_LOST. At most 10 s: ten missed 1 Hz heartbeats is a
    # lost link by any autopilot's standard (PX4's offboard loss timeout defaults to 1 s).
    heartbeat_timeout_s: float = setting(3.0, gt=0.0, le=10.0)
    # No ATTITUDE or LOCAL_POSITION_NED this long -> HOLD. At most 2 s: the state vector is flown on; 2 s covers the
    # slowest stream rates an autopilot sends by default (ArduPilot: 2 Hz position).
    telemetry_timeout_s: float = setting(0.5, gt=0.0, le=2.0)

    def __post_init__(self) -> None:
        check_settings(self)
        if self.telemetry_timeout_s >= self.heartbeat_timeout_s:
            raise SettingError("telemetry_timeout_s", f"must be below heartbeat_timeout_s "
                                                      f"({self.heartbeat_timeout_s}): telemetry at 30-50 Hz goes "
                                                      f"stale long before the 1 Hz heartbeat")


# The largest command any setting or bundle allows, per axis: vx, vy, vz m/s and yaw rate deg/s.
COMMAND_CEILING = (20.0, 20.0, 10.0, 360.0)


@dataclass(frozen=True)
class LimitSettings:
    """Largest absolute commands (None: the bundle's action limit) and acceleration limits, FLU."""

    # The maxima are a multirotor's own (they never loosen the bundle's limits, which clamp as well), and clamp
    # every command even where a limit is left to the bundle.
    vx: float | None = setting(None, gt=0.0, le=COMMAND_CEILING[0])  # m/s forward/back
    vy: float | None = setting(None, gt=0.0, le=COMMAND_CEILING[1])  # m/s left/right
    vz: float | None = setting(None, gt=0.0, le=COMMAND_CEILING[2])  # m/s up/down
    yaw_rate_deg: float | None = setting(None, gt=0.0, le=COMMAND_CEILING[3])  # deg/s
    # Acceleration limits smooth what the policy commands: past about 2 g they smooth nothing.
    accel_xy: float = setting(3.0, gt=0.0, le=20.0)  # m/s² per horizontal axis
    accel_z: float = setting(2.0, gt=0.0, le=10.0)  # m/s²
    yaw_accel_deg: float = setting(360.0, gt=0.0, le=1800.0)  # deg/s²

    def __post_init__(self) -> None:
        check_settings(self)

    def max_command(self, action_limits: tuple[float, ...]) -> tuple[float, float, float, float]:
        """The clamp per axis (m/s, rad/s): the smallest of the bundle's limit, the configured one where set, and
        the ceiling (`COMMAND_CEILING`), which holds whatever a bundle says."""
        to_si = (1.0, 1.0, 1.0, math.pi / 180)  # the yaw rate's settings are in deg/s, the bundle's in rad/s
        configured = (self.vx, self.vy, self.vz, self.yaw_rate_deg)
        return tuple(min(float(limit), ceiling * scale, *(() if mine is None else (mine * scale,)))  # type: ignore
                     for limit, mine, ceiling, scale in zip(action_limits, configured, COMMAND_CEILING, to_si))

    def max_accel(self) -> tuple[float, float, float, float]:
        return (self.accel_xy, self.accel_xy, self.accel_z, math.radians(self.yaw_accel_deg))


@dataclass(frozen=True)
class GeofenceSettings:
    # Above the local origin. At most 120 m: the usual legal ceiling for small drones (EU open category, US Part 107).
    max_height_m: float = setting(20.0, gt=0.0, le=120.0)
    # Horizontal, from where the mode was engaged. At most 500 m: about as far as an operator keeps a small drone in
    # sight, which these rules also require.
    radius_m: float = setting(50.0, gt=0.0, le=500.0)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class EngageSettings:
    """`--engage` only: the runtime's own DO_SET_MODE request (MAVLink's command protocol: resent until answered)."""

    request_timeout_s: float = setting(1.0, gt=0.0, le=10.0)  # an autopilot answers a command within milliseconds
    request_attempts: int = setting(5, ge=1, le=10)  # ten unanswered requests: it will not switch

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class LogSettings:
    # A log part is closed and the next begun past this size (a row is about 300 bytes: 20 MB is over 30 min at
    # 30 Hz).
    part_mb: float = setting(20.0, gt=0.0, le=1000.0)
    # The oldest part is deleted past this many: the log's disk stays under part_mb x max_parts (at most 1 TB).
    max_parts: int = setting(10, ge=1, le=1000)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class OnboardConfig:
    camera: CameraSettings = field(default_factory=CameraSettings)
    link: LinkSettings = field(default_factory=LinkSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    geofence: GeofenceSettings = field(default_factory=GeofenceSettings)
    engage: EngageSettings = field(default_factory=EngageSettings)
    log: LogSettings = field(default_factory=LogSettings)
    rate_hz: float | None = setting(None, gt=0.0, le=200.0)  # control rate; None: the bundle's (its training rate)
    threads: int = setting(1, ge=1, le=64)  # ONNX Runtime intra-op threads

    def __post_init__(self) -> None:
        check_settings(self)


def load_onboard_config(path: str | Path | None, overrides: dict[str, object] | None = None,
                        flags: dict[str, str] | None = None) -> OnboardConfig:
    """Defaults, then the YAML file at `path` (if any), then `overrides` (dotted keys; None values ignored).
    Raises navigator.config.ConfigError (a UserError) naming the bad key and where it came from."""
    return load_config(OnboardConfig, path, overrides, flags)
