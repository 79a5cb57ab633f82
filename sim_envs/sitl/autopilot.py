"""The two autopilot flavours SITL speaks (PX4, ArduCopter) as data, and the small state machine they share.

A flavour is its HEARTBEAT identity, its modes (name, `custom_mode` number, what the simulated vehicle does in it),
its hold mode, its setpoint mode (PX4 OFFBOARD, ArduCopter GUIDED) and how that mode treats a setpoint stream:

| | PX4 | ArduPilot (ArduCopter) |
| --- | --- | --- |
| HEARTBEAT autopilot | MAV_AUTOPILOT_PX4 (12) | MAV_AUTOPILOT_ARDUPILOTMEGA (3) |
| custom_mode | main << 16 \\| sub << 24 | the mode number |
| hold mode (episode start) | AUTO.LOITER | LOITER (5) |
| other hold modes accepted | POSCTL, ALTCTL | BRAKE (17), POSHOLD (16) |
| setpoint mode | OFFBOARD (main 6) | GUIDED (4) |
| entering it | DENIED unless setpoints came at > 2 Hz over the last second | ACCEPTED |
| setpoint older than timeout | COM_OF_LOSS_T (1 s): AUTO.LOITER + STATUSTEXT | GUID_TIMEOUT (3 s): stop + STATUSTEXT |
| other known modes (MISSION, RTL, LAND...) | UNSUPPORTED (not simulated) | UNSUPPORTED |
| arm when armed | ACCEPTED | ACCEPTED |
| disarm (always in the air) | DENIED | DENIED |

ArduCopter stays in GUIDED after its timeout, holding until a new setpoint comes. In a hold mode the vehicle
holds (zero velocity setpoint). Setpoints received outside the setpoint mode are kept (they
count for PX4's stream check) but not flown. Time is whatever clock the caller passes (SITL: `time.monotonic()`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_AUTOPILOT_PX4 = 12
# base_mode flags (MAV_MODE_FLAG)
CUSTOM_MODE_ENABLED = 1
GUIDED_ENABLED = 8
STABILIZE_ENABLED = 16
MANUAL_INPUT_ENABLED = 64
SAFETY_ARMED = 128
AUTOPILOT_NAMES = ("px4", "ardupilot")


class Result(IntEnum):
    """MAV_RESULT values SITL answers with."""

    ACCEPTED = 0
    TEMPORARILY_REJECTED = 1
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4


@dataclass(frozen=True)
class Mode:
    """A flight mode: its name, its `custom_mode` number, and what SITL does in it ("hold", "setpoints", or
    "unsupported": a real mode SITL does not simulate, refused with UNSUPPORTED)."""

    name: str
    custom_mode: int
    behaviour: str
    base_flags: int = 0  # base_mode flags beyond CUSTOM_MODE_ENABLED and SAFETY_ARMED


def px4_custom_mode(main: int, sub: int = 0) -> int:
    """PX4's HEARTBEAT custom_mode: main mode in bits 16-23, sub-mode in bits 24-31."""
    return (main << 16) | (sub << 24)


_AUTO_FLAGS = GUIDED_ENABLED | STABILIZE_ENABLED | 4  # 4: MAV_MODE_FLAG_AUTO_ENABLED
_MANUAL_FLAGS = MANUAL_INPUT_ENABLED | STABILIZE_ENABLED


@dataclass(frozen=True)
class Flavour:
    """An autopilot's conventions. `timeout_param` is the parameter holding the setpoint timeout (seconds);
    `loss_failsafe`: on a timeout, switch to the hold mode (PX4) rather than stop in place (ArduPilot);
    `stream_before_entry`: entering the setpoint mode needs a setpoint stream already running (PX4)."""

    name: str
    mav_autopilot: int
    modes: tuple[Mode, ...]
    hold_mode: str
    setpoint_mode: str
    timeout_param: str
    default_timeout_s: float
    loss_failsafe: bool
    stream_before_entry: bool

    def mode(self, name: str) -> Mode:
        return next(m for m in self.modes if m.name == name)

    def mode_by_number(self, custom_mode: int) -> Mode | None:
        return next((m for m in self.modes if m.custom_mode == custom_mode), None)

    def custom_mode_from_command(self, param2: float, param3: float) -> int:
        """MAV_CMD_DO_SET_MODE's param2 (and param3) -> custom_mode: PX4 main and sub-mode, ArduPilot the number."""
        if self.mav_autopilot == MAV_AUTOPILOT_PX4:
            return px4_custom_mode(int(param2), int(param3))
        return int(param2)


PX4 = Flavour(
    name="px4", mav_autopilot=MAV_AUTOPILOT_PX4,
    modes=(
        Mode("MANUAL", px4_custom_mode(1), "unsupported", _MANUAL_FLAGS),
        Mode("ALTCTL", px4_custom_mode(2), "hold", _MANUAL_FLAGS),
        Mode("POSCTL", px4_custom_mode(3), "hold", _MANUAL_FLAGS | GUIDED_ENABLED),
        Mode("AUTO.TAKEOFF", px4_custom_mode(4, 2), "unsupported", _AUTO_FLAGS),
        Mode("AUTO.LOITER", px4_custom_mode(4, 3), "hold", _AUTO_FLAGS),
        Mode("AUTO.MISSION", px4_custom_mode(4, 4), "unsupported", _AUTO_FLAGS),
        Mode("AUTO.RTL", px4_custom_mode(4, 5), "unsupported", _AUTO_FLAGS),
        Mode("AUTO.LAND", px4_custom_mode(4, 6), "unsupported", _AUTO_FLAGS),
        Mode("ACRO", px4_custom_mode(5), "unsupported", MANUAL_INPUT_ENABLED),
        Mode("OFFBOARD", px4_custom_mode(6), "setpoints", _AUTO_FLAGS),
        Mode("STABILIZED", px4_custom_mode(7), "unsupported", _MANUAL_FLAGS),
    ),
    hold_mode="AUTO.LOITER", setpoint_mode="OFFBOARD", timeout_param="COM_OF_LOSS_T", default_timeout_s=1.0,
    loss_failsafe=True, stream_before_entry=True,
)

ARDUPILOT = Flavour(
    name="ardupilot", mav_autopilot=MAV_AUTOPILOT_ARDUPILOTMEGA,
    modes=(
        Mode("STABILIZE", 0, "unsupported", _MANUAL_FLAGS),
        Mode("ALT_HOLD", 2, "unsupported", _MANUAL_FLAGS),
        Mode("AUTO", 3, "unsupported", _AUTO_FLAGS),
        Mode("GUIDED", 4, "setpoints", _AUTO_FLAGS),
        Mode("LOITER", 5, "hold", _MANUAL_FLAGS | GUIDED_ENABLED),
        Mode("RTL", 6, "unsupported", _AUTO_FLAGS),
        Mode("LAND", 9, "unsupported", _AUTO_FLAGS),
        Mode("POSHOLD", 16, "hold", _MANUAL_FLAGS | GUIDED_ENABLED),
        Mode("BRAKE", 17, "hold", _AUTO_FLAGS),
    ),
    hold_mode="LOITER", setpoint_mode="GUIDED", timeout_param="GUID_TIMEOUT", default_timeout_s=3.0,
    loss_failsafe=False, stream_before_entry=False,
)

FLAVOURS: dict[str, Flavour] = {"px4": PX4, "ardupilot": ARDUPILOT}

# PX4's offboard entry check: setpoints at more than 2 Hz over the last second, i.e. at least 3 in it.
STREAM_WINDOW_S = 1.0
STREAM_MIN_COUNT = 3


@dataclass(frozen=True)
class Answer:
    """What a request got: the MAV_RESULT, and a STATUSTEXT to send with it (None: none)."""

    result: Result
    text: str | None = None


class Autopilot:
    """Armed state, flight mode and the setpoint in force, with the flavour's timeouts.

    `setpoint_timeout_s` is the flavour's timeout parameter (COM_OF_LOSS_T / GUID_TIMEOUT). Setpoints are opaque here
    (whatever the caller stores); `active_setpoint()`, after `update(now)`, is the one flown (None: hold)."""

    def __init__(self, flavour: Flavour, setpoint_timeout_s: float | None = None) -> None:
        self.flavour = flavour
        self.setpoint_timeout_s = flavour.default_timeout_s if setpoint_timeout_s is None else setpoint_timeout_s
        self.reset()

    def reset(self) -> None:
        """An episode's start: armed, hovering in the hold mode, no setpoint."""
        self.armed = True
        self.mode = self.flavour.mode(self.flavour.hold_mode)
        self._setpoint: Any = None
        self._setpoint_time = -float("inf")
        self._recent: deque[float] = deque(maxlen=64)
        self._timed_out = False

    @property
    def base_mode(self) -> int:
        return CUSTOM_MODE_ENABLED | self.mode.base_flags | (SAFETY_ARMED if self.armed else 0)

    def on_setpoint(self, setpoint: Any, now: float) -> None:
        """A valid velocity setpoint arrived at `now`."""
        self._setpoint = setpoint
        self._setpoint_time = now
        self._recent.append(now)
        self._timed_out = False

    def stream_ok(self, now: float) -> bool:
        """Whether setpoints arrived at more than 2 Hz over the last second (PX4's offboard entry condition)."""
        return sum(1 for t in self._recent if now - t <= STREAM_WINDOW_S) >= STREAM_MIN_COUNT

    def request_mode(self, custom_mode: int, now: float) -> Answer:
        """A mode change asked for (by a client or the operator)."""
        mode = self.flavour.mode_by_number(custom_mode)
        if mode is None:
            return Answer(Result.DENIED, f"Mode change denied: unknown custom_mode {custom_mode}")
        if mode.behaviour == "unsupported":
            return Answer(Result.UNSUPPORTED, f"Mode {mode.name} is not simulated")
        if mode.behaviour == "setpoints" and self.flavour.stream_before_entry and not self.stream_ok(now):
            return Answer(Result.DENIED, f"{mode.name} denied: no setpoint stream (need > 2 Hz)")
        if mode != self.mode:
            self.mode = mode
            self._timed_out = False
        return Answer(Result.ACCEPTED)

    def request_arm(self, arm: bool) -> Answer:
        """MAV_CMD_COMPONENT_ARM_DISARM: arming an armed vehicle is fine; the vehicle is always flying, so
        disarming (forced or not) is refused."""
        if arm:
            return Answer(Result.ACCEPTED)
        return Answer(Result.DENIED, "Disarming denied: vehicle is in the air")

    def update(self, now: float) -> str | None:
        """Apply the setpoint timeout at `now`; returns a STATUSTEXT to send when it fires (once per loss)."""
        if self.mode.behaviour != "setpoints" or self._timed_out:
            return None
        if self._setpoint is None:
            return None  # GUIDED entered before any setpoint: it holds already (OFFBOARD needs a stream to enter)
        if now - self._setpoint_time <= self.setpoint_timeout_s:
            return None
        self._timed_out = True
        if self.flavour.loss_failsafe:
            self.mode = self.flavour.mode(self.flavour.hold_mode)
            return f"Failsafe: offboard setpoints lost for {self.setpoint_timeout_s:g} s, switching to {self.mode.name}"
        return f"GUIDED: no setpoint for {self.setpoint_timeout_s:g} s, stopping"

    def active_setpoint(self) -> Any:
        """The setpoint the vehicle flies now, or None: hold (zero velocity). Call `update` first."""
        if self.mode.behaviour != "setpoints" or self._timed_out:
            return None
        return self._setpoint
