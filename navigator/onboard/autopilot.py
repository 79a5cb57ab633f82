"""Each autopilot flavour's offboard conventions, as data: which flight mode hands control to the companion
computer, how to ask for it, which setpoint frame it reads body velocities in, and how setpoints must be streamed.

| | PX4 (HEARTBEAT.autopilot 12) | ArduPilot copter (HEARTBEAT.autopilot 3) |
| --- | --- | --- |
| engaged mode | OFFBOARD: custom_mode main mode (bits 16-23) 6 | GUIDED: custom_mode 4 |
| mode request | MAV_CMD_DO_SET_MODE 176: 1 (custom), 6, 0 | MAV_CMD_DO_SET_MODE 176: 1 (custom), 4 |
| body-velocity frame | MAV_FRAME_BODY_NED (8) | MAV_FRAME_BODY_OFFSET_NED (9) |
| before the switch | setpoints above 2 Hz for a while, else the switch is denied (we stream 1 s first) | none needed |
| while engaged | above 2 Hz, else COM_OF_LOSS_T then failsafe | at least 1 Hz; stops after 3 s (GUID_TIMEOUT) |

Both read SET_POSITION_TARGET_LOCAL_NED velocity + yaw rate with type_mask 0x05C7 (positions, accelerations and yaw
ignored; 0x0DC7 would drop the yaw rate too). The runtime streams at the policy's rate (30 Hz by default) in every
state that sends, well above both minimums.
"""

from __future__ import annotations

from dataclasses import dataclass

MAV_CMD_DO_SET_MODE = 176
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
# SET_POSITION_TARGET_LOCAL_NED.type_mask: ignore position (bits 0-2), acceleration (6-8) and yaw (10); use velocity
# (3-5) and yaw rate (11). 1479.
VELOCITY_YAW_RATE_MASK = 0x05C7

_PX4_MAIN_MODES = {1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 4: "AUTO", 5: "ACRO", 6: "OFFBOARD", 7: "STABILIZED",
                   8: "RATTITUDE"}
_PX4_AUTO_SUB_MODES = {1: "READY", 2: "TAKEOFF", 3: "LOITER", 4: "MISSION", 5: "RTL", 6: "LAND", 8: "FOLLOW_TARGET",
                       9: "PRECLAND"}
_ARDUCOPTER_MODES = {0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER", 6: "RTL",
                     7: "CIRCLE", 9: "LAND", 11: "DRIFT", 13: "SPORT", 15: "AUTOTUNE", 16: "POSHOLD", 17: "BRAKE",
                     20: "GUIDED_NOGPS", 21: "SMART_RTL"}


@dataclass(frozen=True)
class Autopilot:
    """One flavour's conventions. `mav_autopilot` is its HEARTBEAT.autopilot value."""

    name: str
    mav_autopilot: int
    engaged_mode_name: str
    body_frame: int  # MAV_FRAME of body-frame velocity setpoints
    pre_stream_s: float  # stream setpoints this long before requesting the engaged mode
    min_setpoint_hz: float  # the slowest setpoint stream the autopilot accepts while engaged

    def is_engaged(self, custom_mode: int) -> bool:
        """True when HEARTBEAT.custom_mode is the mode in which the autopilot follows our setpoints."""
        if self.name == "px4":
            return (custom_mode >> 16) & 0xFF == 6
        return custom_mode == 4

    def mode_request(self) -> tuple[float, float, float, float, float, float, float]:
        """COMMAND_LONG params 1-7 of MAV_CMD_DO_SET_MODE into the engaged mode."""
        main = 6.0 if self.name == "px4" else 4.0
        return (float(MAV_MODE_FLAG_CUSTOM_MODE_ENABLED), main, 0.0, 0.0, 0.0, 0.0, 0.0)

    def mode_name(self, custom_mode: int) -> str:
        """A readable name of HEARTBEAT.custom_mode, e.g. "OFFBOARD", "AUTO.LOITER", "GUIDED", "mode 42"."""
        if self.name == "px4":
            main, sub = (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
            name = _PX4_MAIN_MODES.get(main, f"mode {main}")
            return f"{name}.{_PX4_AUTO_SUB_MODES.get(sub, sub)}" if main == 4 else name
        return _ARDUCOPTER_MODES.get(custom_mode, f"mode {custom_mode}")


PX4 = Autopilot(name="px4", mav_autopilot=12, engaged_mode_name="OFFBOARD", body_frame=8, pre_stream_s=1.0,
                min_setpoint_hz=2.0)
ARDUPILOT = Autopilot(name="ardupilot", mav_autopilot=3, engaged_mode_name="GUIDED", body_frame=9, pre_stream_s=0.0,
                      min_setpoint_hz=1.0)
AUTOPILOTS = {PX4.mav_autopilot: PX4, ARDUPILOT.mav_autopilot: ARDUPILOT}


def autopilot_for(mav_autopilot: int) -> Autopilot | None:
    """The conventions for a HEARTBEAT.autopilot value, or None for a flavour the runtime does not fly."""
    return AUTOPILOTS.get(mav_autopilot)
