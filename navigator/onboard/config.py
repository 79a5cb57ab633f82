"""The onboard runtime's settings (`OnboardConfig`), loaded from launch/onboard.yaml: the camera's field of view,
when a frame or the link counts as lost, command and acceleration limits, the geofence, rates and the flight log.

Every field is range-checked when the config is built (navigator.config's `setting`), and the loader refuses unknown
keys, duplicate keys and wrongly typed values with a message that names the key and the file. Torch-free: it uses
only navigator.config (yaml, stdlib)."""

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
    stale_frame_s: float = setting(0.3, gt=0.0)  # a newer frame must have arrived within this time, else HOLD
    open_timeout_s: float = setting(10.0, gt=0.0)  # at start: the first frame must arrive within this time
    read_timeout_s: float = setting(3.0, gt=0.0)  # a network stream silent this long is closed and reopened
    reopen_backoff_s: float = setting(0.5, gt=0.0)  # first wait before reopening a failed source; doubles ...
    reopen_backoff_max_s: float = setting(5.0, gt=0.0)  # ... up to this

    def __post_init__(self) -> None:
        check_settings(self)
        if self.reopen_backoff_max_s < self.reopen_backoff_s:
            raise SettingError("reopen_backoff_max_s", f"must be at least reopen_backoff_s "
                                                       f"({self.reopen_backoff_s}), got {self.reopen_backoff_max_s}")


@dataclass(frozen=True)
class LinkSettings:
    connect_timeout_s: float = setting(30.0, gt=0.0)  # at start: the autopilot's heartbeat must arrive within this
    heartbeat_timeout_s: float = setting(3.0, gt=0.0)  # no autopilot heartbeat this long -> LINK_LOST
    telemetry_timeout_s: float = setting(0.5, gt=0.0)  # no ATTITUDE or LOCAL_POSITION_NED this long -> HOLD

    def __post_init__(self) -> None:
        check_settings(self)
        if self.telemetry_timeout_s >= self.heartbeat_timeout_s:
            raise SettingError("telemetry_timeout_s", f"must be below heartbeat_timeout_s "
                                                      f"({self.heartbeat_timeout_s}): telemetry at 30-50 Hz goes "
                                                      f"stale long before the 1 Hz heartbeat")


@dataclass(frozen=True)
class LimitSettings:
    """Largest absolute commands (None: the bundle's action limit) and acceleration limits, FLU."""

    vx: float | None = setting(None, gt=0.0)  # m/s forward/back
    vy: float | None = setting(None, gt=0.0)  # m/s left/right
    vz: float | None = setting(None, gt=0.0)  # m/s up/down
    yaw_rate_deg: float | None = setting(None, gt=0.0)  # deg/s
    accel_xy: float = setting(3.0, gt=0.0)  # m/s² per horizontal axis
    accel_z: float = setting(2.0, gt=0.0)  # m/s²
    yaw_accel_deg: float = setting(360.0, gt=0.0)  # deg/s²

    def __post_init__(self) -> None:
        check_settings(self)

    def max_command(self, action_limits: tuple[float, ...]) -> tuple[float, float, float, float]:
        """The clamp per axis (m/s, rad/s): the configured limit where one is set and smaller, else the bundle's."""
        configured = (self.vx, self.vy, self.vz, None if self.yaw_rate_deg is None else math.radians(self.yaw_rate_deg))
        return tuple(float(limit) if mine is None else min(float(limit), mine)  # type: ignore[return-value]
                     for limit, mine in zip(action_limits, configured))

    def max_accel(self) -> tuple[float, float, float, float]:
        return (self.accel_xy, self.accel_xy, self.accel_z, math.radians(self.yaw_accel_deg))


@dataclass(frozen=True)
class GeofenceSettings:
    max_height_m: float = setting(20.0, gt=0.0)  # above the local origin
    radius_m: float = setting(50.0, gt=0.0)  # horizontal, from where the mode was engaged

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class EngageSettings:
    """`--engage` only: the runtime's own DO_SET_MODE request (MAVLink's command protocol: resent until answered)."""

    request_timeout_s: float = setting(1.0, gt=0.0)
    request_attempts: int = setting(5, ge=1)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class LogSettings:
    part_mb: float = setting(20.0, gt=0.0)  # a log part is closed and the next begun past this size
    max_parts: int = setting(10, ge=1)  # the oldest part is deleted past this many (bounds the disk used)

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
