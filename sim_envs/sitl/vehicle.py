"""What the SITL vehicle answers: MAVLink commands, mode changes, setpoints and parameter requests from any client.

| message in | answer |
| --- | --- |
| COMMAND_LONG / COMMAND_INT 400 COMPONENT_ARM_DISARM | COMMAND_ACK: arm ACCEPTED, disarm DENIED (in the air) |
| COMMAND_LONG / COMMAND_INT 176 DO_SET_MODE (param1 custom) | COMMAND_ACK per the flavour (`autopilot.py`) |
| SET_MODE | the same, acknowledged as command 11 (as ArduPilot does) |
| COMMAND_* 512 REQUEST_MESSAGE, 520 REQUEST_AUTOPILOT_CAPABILITIES, 410 GET_HOME_POSITION | ACK + the message |
| COMMAND_* 511 SET_MESSAGE_INTERVAL | ACK; the message's rate changes |
| other commands | COMMAND_ACK UNSUPPORTED |
| SET_POSITION_TARGET_LOCAL_NED (velocity, frames 1, 7, 8, 9) | stored as the setpoint (see `frames.py`) |
| SET_POSITION_TARGET_LOCAL_NED asking for a position | ignored, one STATUSTEXT per 5 s |
| PARAM_REQUEST_LIST / PARAM_REQUEST_READ / PARAM_SET | PARAM_VALUE (`telemetry.Parameters`) |

Messages addressed to another system or component are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from sim_envs.sitl.autopilot import CUSTOM_MODE_ENABLED, Answer, Autopilot, Result
from sim_envs.sitl.frames import UnsupportedSetpoint, VelocitySetpoint
from sim_envs.sitl.telemetry import AUTOPILOT_VERSION_ID, MESSAGE_IDS, Parameters, Snapshot, Telemetry

CMD_ARM_DISARM = 400
CMD_DO_SET_MODE = 176
CMD_REQUEST_MESSAGE = 512
CMD_REQUEST_AUTOPILOT_CAPABILITIES = 520
CMD_GET_HOME_POSITION = 410
CMD_SET_MESSAGE_INTERVAL = 511
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5
SEVERITY_INFO = 6
_WARN_EVERY_S = 5.0


class MavlinkVehicle:
    """Handles incoming messages for `autopilot`; sends through `send(message)` (the link, with its faults).
    `state()` gives the current Snapshot for messages requested on demand."""

    def __init__(self, autopilot: Autopilot, telemetry: Telemetry, parameters: Parameters,
                 send: Callable[[Any], None], state: Callable[[], Snapshot], system_id: int = 1) -> None:
        self.autopilot = autopilot
        self.telemetry = telemetry
        self.parameters = parameters
        self.mav = telemetry.mav
        self._send = send
        self._state = state
        self.system_id = system_id
        self._last_warning = -math.inf

    def text(self, text: str, severity: int = SEVERITY_INFO) -> None:
        """A STATUSTEXT (cut to MAVLink's 50 characters)."""
        self._send(self.mav.statustext_encode(severity, text.encode()[:50], 0, 0))

    def handle(self, message: Any, now: float) -> None:
        kind = message.get_type()
        if not self._for_us(message):
            return
        if kind == "SET_POSITION_TARGET_LOCAL_NED":
            self._setpoint(message, now)
        elif kind in ("COMMAND_LONG", "COMMAND_INT"):
            self._command(message, now)
        elif kind == "SET_MODE":
            answer = (self.autopilot.request_mode(message.custom_mode, now)
                      if message.base_mode & CUSTOM_MODE_ENABLED else Answer(Result.UNSUPPORTED))
            self._ack(message, mavlink.MAVLINK_MSG_ID_SET_MODE, answer)
        elif kind == "PARAM_REQUEST_LIST":
            for name in self.parameters.names:
                self._send(self.parameters.encode(self.mav, name))
        elif kind == "PARAM_REQUEST_READ":
            name = _param_name(message.param_id)
            if not name and 0 <= message.param_index < len(self.parameters.names):
                name = self.parameters.names[message.param_index]
            if name in self.parameters.names:
                self._send(self.parameters.encode(self.mav, name))
        elif kind == "PARAM_SET":
            name = _param_name(message.param_id)
            if name in self.parameters.names:
                self.parameters.set(name, message.param_value)
                self._send(self.parameters.encode(self.mav, name))

    def _for_us(self, message: Any) -> bool:
        system = getattr(message, "target_system", 0)
        component = getattr(message, "target_component", 0)
        return system in (0, self.system_id) and component in (0, 1)

    def _setpoint(self, message: Any, now: float) -> None:
        try:
            setpoint = VelocitySetpoint.from_message(message.coordinate_frame, message.type_mask, message.vx,
                                                     message.vy, message.vz, message.yaw, message.yaw_rate)
        except UnsupportedSetpoint as error:
            if now - self._last_warning >= _WARN_EVERY_S:
                self._last_warning = now
                self.text(f"Setpoint ignored: {error}", SEVERITY_WARNING)
            return
        self.autopilot.on_setpoint(setpoint, now)

    def _command(self, message: Any, now: float) -> None:
        command = message.command
        p1, p2, p3 = message.param1, message.param2, message.param3
        if command == CMD_ARM_DISARM:
            self._ack(message, command, self.autopilot.request_arm(p1 >= 0.5))
        elif command == CMD_DO_SET_MODE:
            if int(p1) & CUSTOM_MODE_ENABLED:
                custom_mode = self.autopilot.flavour.custom_mode_from_command(p2, p3)
                self._ack(message, command, self.autopilot.request_mode(custom_mode, now))
            else:
                self._ack(message, command, Answer(Result.UNSUPPORTED, "Only custom modes are supported"))
        elif command in (CMD_REQUEST_MESSAGE, CMD_REQUEST_AUTOPILOT_CAPABILITIES, CMD_GET_HOME_POSITION):
            wanted = {CMD_REQUEST_MESSAGE: int(p1), CMD_REQUEST_AUTOPILOT_CAPABILITIES: AUTOPILOT_VERSION_ID,
                      CMD_GET_HOME_POSITION: MESSAGE_IDS["HOME_POSITION"]}[command]
            reply = self._message(wanted)
            self._ack(message, command, Answer(Result.ACCEPTED if reply is not None else Result.UNSUPPORTED))
            if reply is not None:
                self._send(reply)
        elif command == CMD_SET_MESSAGE_INTERVAL:
            known = self.telemetry.set_interval(int(p1), p2)
            self._ack(message, command, Answer(Result.ACCEPTED if known else Result.UNSUPPORTED))
        else:
            self._ack(message, command, Answer(Result.UNSUPPORTED))

    def _message(self, message_id: int) -> Any:
        if message_id == AUTOPILOT_VERSION_ID:
            return self.telemetry.autopilot_version()
        name = next((n for n, i in MESSAGE_IDS.items() if i == message_id), None)
        return self.telemetry.encode(name, self._state()) if name is not None else None

    def _ack(self, message: Any, command: int, answer: Answer) -> None:
        self._send(self.mav.command_ack_encode(command, int(answer.result), 0, 0, message.get_srcSystem(),
                                               message.get_srcComponent()))
        if answer.text:
            self.text(answer.text, SEVERITY_WARNING if answer.result != Result.ACCEPTED else SEVERITY_INFO)


def _param_name(raw: Any) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return text.split("\x00", 1)[0]
