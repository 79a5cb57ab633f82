"""Telemetry SITL sends: the vehicle's state as MAVLink messages, their rates, and the vehicle's parameters.

| message | default rate | from |
| --- | --- | --- |
| HEARTBEAT | 1 Hz | flavour, armed state, mode |
| ATTITUDE, LOCAL_POSITION_NED | every simulation step (the camera rate, 30 Hz) | the vehicle's state |
| GLOBAL_POSITION_INT | 5 Hz | the local position around the fixed home below |
| SYS_STATUS | 2 Hz | constant healthy sensors, a full 4S battery |
| EXTENDED_SYS_STATE | 1 Hz | multicopter, in the air |
| HOME_POSITION | 1 Hz | the fixed home |
| AUTOPILOT_VERSION, PARAM_VALUE, COMMAND_ACK, STATUSTEXT | on request / on events | |

Rates change by MAV_CMD_SET_MESSAGE_INTERVAL (511) as on a real autopilot. Home is PX4 SITL's default home
(47.397742 N, 8.545594 E, 488 m AMSL, Zurich) at the world origin on the ground: latitude and longitude are the local
NED offsets on a flat earth of radius 6,378,137 m around it, which is exact to centimetres over a task's few hundred
metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from sim_envs.sitl.autopilot import Autopilot
from sim_envs.sitl.frames import enu_to_ned, flu_to_frd, yaw_enu_to_ned

EARTH_RADIUS_M = 6_378_137.0
MAV_TYPE_QUADROTOR = 2
MAV_STATE_ACTIVE = 4
MAV_LANDED_STATE_IN_AIR = 2
MAV_VTOL_STATE_UNDEFINED = 0
MAV_PARAM_TYPE_REAL32 = 9
# SYS_STATUS sensors: 3D gyro, accel, mag, absolute pressure, GPS, angular rate / attitude / yaw / z / xy control,
# motor outputs, AHRS, battery: all present, enabled and healthy.
_SENSORS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x200000 | 0x2000000

STEP_MESSAGES = ("ATTITUDE", "LOCAL_POSITION_NED")  # sent after each simulation step, when the state changes
DEFAULT_INTERVALS_S: dict[str, float] = {
    "HEARTBEAT": 1.0, "ATTITUDE": 0.0, "LOCAL_POSITION_NED": 0.0, "GLOBAL_POSITION_INT": 0.2, "SYS_STATUS": 0.5,
    "EXTENDED_SYS_STATE": 1.0, "HOME_POSITION": 1.0,
}
MESSAGE_IDS: dict[str, int] = {
    "HEARTBEAT": mavlink.MAVLINK_MSG_ID_HEARTBEAT, "ATTITUDE": mavlink.MAVLINK_MSG_ID_ATTITUDE,
    "LOCAL_POSITION_NED": mavlink.MAVLINK_MSG_ID_LOCAL_POSITION_NED,
    "GLOBAL_POSITION_INT": mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT,
    "SYS_STATUS": mavlink.MAVLINK_MSG_ID_SYS_STATUS, "EXTENDED_SYS_STATE": mavlink.MAVLINK_MSG_ID_EXTENDED_SYS_STATE,
    "HOME_POSITION": mavlink.MAVLINK_MSG_ID_HOME_POSITION,
}
AUTOPILOT_VERSION_ID = mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION
_CAPABILITIES = (mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                 | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
                 | mavlink.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED)
# Firmware versions SITL reports (major, minor, patch), as FIRMWARE_VERSION_TYPE_OFFICIAL.
_VERSIONS = {"px4": (1, 14, 0), "ardupilot": (4, 5, 0)}


@dataclass(frozen=True)
class Home:
    """Where the world origin is on the earth: degrees and metres above mean sea level."""

    lat_deg: float = 47.397742
    lon_deg: float = 8.545594
    alt_m: float = 488.0

    def to_dict(self) -> dict[str, float]:
        return {"lat_deg": self.lat_deg, "lon_deg": self.lon_deg, "alt_m": self.alt_m}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Home:
        return cls(**data)


@dataclass(frozen=True)
class Snapshot:
    """The vehicle's state in the world frame: position and velocity ENU (m, m/s), roll, pitch (sim convention:
    positive pitch lowers the nose), yaw (CCW from east), body rates FLU (rad/s); `time_boot_ms` since SITL started."""

    time_boot_ms: int
    position: tuple[float, float, float]
    velocity: tuple[float, float, float]
    roll: float
    pitch: float
    yaw: float
    rates: tuple[float, float, float]


class Telemetry:
    """Builds telemetry messages for one vehicle and says which are due."""

    def __init__(self, mav: mavlink.MAVLink, autopilot: Autopilot, home: Home, step_s: float) -> None:
        self.mav = mav
        self.autopilot = autopilot
        self.home = home
        self.step_s = step_s
        self.intervals = dict(DEFAULT_INTERVALS_S)
        self._last_sent: dict[str, float] = {}

    def set_interval(self, message_id: int, interval_us: float) -> bool:
        """MAV_CMD_SET_MESSAGE_INTERVAL: interval in µs, -1 stops the message, 0 restores its default. False for a
        message SITL does not stream."""
        name = next((n for n, i in MESSAGE_IDS.items() if i == message_id), None)
        if name is None:
            return False
        if interval_us == 0:
            self.intervals[name] = DEFAULT_INTERVALS_S[name]
        else:
            self.intervals[name] = math.inf if interval_us < 0 else interval_us / 1e6
        return True

    def due(self, now: float, after_step: bool) -> list[str]:
        """Names of messages to send at `now` (and marks them sent). The step messages go only `after_step`."""
        names = []
        for name, interval in self.intervals.items():
            if (name in STEP_MESSAGES) != after_step or math.isinf(interval):
                continue
            # Step messages may come up to half a step early: they can only go out right after a step.
            slack = self.step_s / 2 if name in STEP_MESSAGES else 0.0
            if now - self._last_sent.get(name, -math.inf) >= interval - slack:
                self._last_sent[name] = now
                names.append(name)
        return names

    def encode(self, name: str, state: Snapshot) -> Any:
        """The message `name` (a key of MESSAGE_IDS) for `state`."""
        return getattr(self, "_" + name.lower())(state)

    def _heartbeat(self, state: Snapshot) -> Any:
        return self.mav.heartbeat_encode(MAV_TYPE_QUADROTOR, self.autopilot.flavour.mav_autopilot,
                                         self.autopilot.base_mode, self.autopilot.mode.custom_mode, MAV_STATE_ACTIVE,
                                         3)

    def _attitude(self, state: Snapshot) -> Any:
        p, q, r = flu_to_frd(*state.rates)
        # FRD pitch is positive nose up: the opposite of the sim's (positive lowers the nose); roll is the same.
        return self.mav.attitude_encode(state.time_boot_ms, state.roll, -state.pitch, yaw_enu_to_ned(state.yaw),
                                        p, q, r)

    def _local_position_ned(self, state: Snapshot) -> Any:
        return self.mav.local_position_ned_encode(state.time_boot_ms, *enu_to_ned(*state.position),
                                                  *enu_to_ned(*state.velocity))

    def _global_position_int(self, state: Snapshot) -> Any:
        north, east, down = enu_to_ned(*state.position)
        lat, lon = self.lat_lon(north, east)
        vn, ve, vd = enu_to_ned(*state.velocity)
        heading = round(math.degrees(yaw_enu_to_ned(state.yaw)) * 100) % 36000
        return self.mav.global_position_int_encode(
            state.time_boot_ms, round(lat * 1e7), round(lon * 1e7), round((self.home.alt_m - down) * 1000),
            round(-down * 1000), _cm(vn), _cm(ve), _cm(vd), heading)

    def _sys_status(self, state: Snapshot) -> Any:
        return self.mav.sys_status_encode(_SENSORS, _SENSORS, _SENSORS, 200, 16_200, 1_000, 100, 0, 0, 0, 0, 0, 0)

    def _extended_sys_state(self, state: Snapshot) -> Any:
        return self.mav.extended_sys_state_encode(MAV_VTOL_STATE_UNDEFINED, MAV_LANDED_STATE_IN_AIR)

    def _home_position(self, state: Snapshot) -> Any:
        home = self.home
        return self.mav.home_position_encode(round(home.lat_deg * 1e7), round(home.lon_deg * 1e7),
                                             round(home.alt_m * 1000), 0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0],
                                             0.0, 0.0, 0.0, state.time_boot_ms * 1000)

    def autopilot_version(self) -> Any:
        flavour = self.autopilot.flavour
        major, minor, patch = _VERSIONS[flavour.name]
        version = (major << 24) | (minor << 16) | (patch << 8) | 255
        return self.mav.autopilot_version_encode(_CAPABILITIES, version, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0,
                                                 0x5117_0000_0000_0001, [0] * 18)

    def lat_lon(self, north: float, east: float) -> tuple[float, float]:
        """Degrees of latitude and longitude `north`, `east` metres from home."""
        lat = self.home.lat_deg + math.degrees(north / EARTH_RADIUS_M)
        lon = self.home.lon_deg + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(self.home.lat_deg))))
        return lat, lon


def _cm(value: float) -> int:
    return max(-32768, min(32767, round(value * 100)))


class Parameters:
    """The few parameters SITL reports (PARAM_REQUEST_LIST/READ) so that SDKs finish connecting; only the setpoint
    timeout (COM_OF_LOSS_T / GUID_TIMEOUT, seconds) can be set, the rest echo their value unchanged on PARAM_SET."""

    def __init__(self, autopilot: Autopilot, limits: tuple[float, float, float, float]) -> None:
        self.autopilot = autopilot
        vx, _, vz, yaw_rate = limits
        timeout = autopilot.flavour.timeout_param
        if autopilot.flavour.name == "px4":
            fixed = {"MPC_XY_VEL_MAX": vx, "MPC_Z_VEL_MAX_UP": vz, "MPC_Z_VEL_MAX_DN": vz,
                     "MPC_YAWRAUTO_MAX": math.degrees(yaw_rate)}
        else:
            fixed = {"WPNAV_SPEED": vx * 100, "WPNAV_SPEED_UP": vz * 100, "WPNAV_SPEED_DN": vz * 100,
                     "ATC_RATE_Y_MAX": math.degrees(yaw_rate)}
        self._fixed = fixed
        self.names = (timeout, *fixed)

    def value(self, name: str) -> float | None:
        if name == self.autopilot.flavour.timeout_param:
            return self.autopilot.setpoint_timeout_s
        return self._fixed.get(name)

    def set(self, name: str, value: float) -> bool:
        """Set `name`; False (unchanged) unless it is the timeout parameter and `value` is in (0, 60] s."""
        if name != self.autopilot.flavour.timeout_param or not (math.isfinite(value) and 0.0 < value <= 60.0):
            return False
        self.autopilot.setpoint_timeout_s = float(value)
        return True

    def encode(self, mav: mavlink.MAVLink, name: str) -> Any:
        return mav.param_value_encode(name.encode(), float(self.value(name)), MAV_PARAM_TYPE_REAL32, len(self.names),
                                      self.names.index(name))
