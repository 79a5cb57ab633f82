"""Fault injection for SITL rehearsals: what goes wrong, when, and how badly, as plain data.

A fault is written `KIND:ARGS` (the `--fault` option of `navigator sitl`, repeatable); times are seconds from the start
of each episode (the episode clock, which runs in real time), so that every episode meets the same faults:

| spec | effect while active |
| --- | --- |
| `camera-stall:AT:FOR` | the camera stream sends nothing (clients' reads block) |
| `camera-drop:FRACTION[:AT:FOR]` | each frame is left out of the stream with probability FRACTION |
| `camera-corrupt:FRACTION[:AT:FOR]` | each frame is sent as damaged JPEG bytes (headers kept, image data garbage) |
| `mavlink-loss:FRACTION[:AT:FOR]` | each MAVLink packet, in either direction, is dropped with probability FRACTION |
| `mavlink-latency:MS[:AT:FOR]` | each MAVLink packet, in either direction, is delayed by MS milliseconds |
| `heartbeat-silence:AT:FOR` | the vehicle sends nothing at all (heartbeats and telemetry); it still listens |
| `mode-change:AT[:FOR]` | at AT an operator switches to the hold mode; after FOR, back to the mode they left |

Without `AT:FOR` a fraction or latency fault lasts whole episodes. Randomness (which frames and packets) comes from a
generator seeded by the episode's seed, so a rerun meets the same losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# kind -> (what its value is, whether it has one, whether AT:FOR is required)
_KINDS: dict[str, tuple[str | None, bool]] = {
    "camera-stall": (None, True),
    "camera-drop": ("fraction", False),
    "camera-corrupt": ("fraction", False),
    "mavlink-loss": ("fraction", False),
    "mavlink-latency": ("ms", False),
    "heartbeat-silence": (None, True),
    "mode-change": (None, True),
}
FAULT_KINDS = tuple(_KINDS)
MAX_LATENCY_MS = 10_000.0


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message shows the spec and the valid forms."""


@dataclass(frozen=True)
class Fault:
    """One fault: `kind` (one of FAULT_KINDS), `value` (a fraction in [0, 1] or milliseconds; None for kinds without
    one), active from `at` s for `duration` s of each episode (None: to the end of the episode)."""

    kind: str
    value: float | None = None
    at: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise FaultSpecError(f"unknown fault kind {self.kind!r}; valid kinds are: {', '.join(FAULT_KINDS)}")
        unit, _ = _KINDS[self.kind]
        if unit is None and self.value is not None:
            raise FaultSpecError(f"fault {self.kind} takes no value, got {self.value}")
        if unit == "fraction" and (self.value is None or not 0.0 <= self.value <= 1.0):
            raise FaultSpecError(f"fault {self.kind} needs a fraction in [0, 1], got {self.value}")
        if unit == "ms" and (self.value is None or not 0.0 <= self.value <= MAX_LATENCY_MS):
            raise FaultSpecError(f"fault {self.kind} needs milliseconds in [0, {MAX_LATENCY_MS:g}], got {self.value}")
        if not (math.isfinite(self.at) and self.at >= 0.0):
            raise FaultSpecError(f"fault {self.kind}: start time must be >= 0 s, got {self.at}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0.0):
            raise FaultSpecError(f"fault {self.kind}: duration must be > 0 s, got {self.duration}")

    def active(self, t: float) -> bool:
        """Whether the fault acts at episode time `t` (s)."""
        return self.at <= t and (self.duration is None or t < self.at + self.duration)

    def spec(self) -> str:
        """The `KIND:ARGS` text this fault is parsed from."""
        parts = [self.kind] + ([f"{self.value:g}"] if self.value is not None else []) + [f"{self.at:g}"]
        if self.duration is not None:
            parts.append(f"{self.duration:g}")
        if _KINDS[self.kind][0] is not None and self.at == 0.0 and self.duration is None:
            parts.pop()  # a whole-episode fraction or latency: no window
        return ":".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "at": self.at, "duration": self.duration}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        return cls(**data)


def parse_fault(spec: str) -> Fault:
    """`KIND:ARGS` (see the module docstring) -> Fault; FaultSpecError naming the spec and its valid form."""
    kind, *args = [part.strip() for part in spec.strip().split(":")]
    kind = kind.lower()
    if kind not in _KINDS:
        raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r}; valid kinds are: {', '.join(FAULT_KINDS)}")
    unit, windowed = _KINDS[kind]
    form = _form(kind)
    try:
        numbers = [float(arg) for arg in args]
    except ValueError:
        raise FaultSpecError(f"fault {spec!r}: arguments must be numbers; write it {form}") from None
    value = None
    if unit is not None:
        if not numbers:
            raise FaultSpecError(f"fault {spec!r} needs a {unit}; write it {form}")
        value, numbers = numbers[0], numbers[1:]
    if kind == "mode-change" and len(numbers) in (1, 2):
        return Fault(kind, None, numbers[0], numbers[1] if len(numbers) == 2 else None)
    if windowed and len(numbers) != 2 or not windowed and len(numbers) not in (0, 2):
        raise FaultSpecError(f"fault {spec!r}: wrong number of arguments; write it {form}")
    try:
        return Fault(kind, value, *(numbers or (0.0, None)))
    except FaultSpecError as error:
        raise FaultSpecError(f"fault {spec!r}: {error}") from None


def _form(kind: str) -> str:
    unit, windowed = _KINDS[kind]
    if kind == "mode-change":
        return "mode-change:AT[:FOR] (seconds)"
    value = {"fraction": ":FRACTION", "ms": ":MS", None: ""}[unit]
    window = ":AT:FOR" if windowed else "[:AT:FOR]"
    return f"{kind}{value}{window} (times in seconds)"


@dataclass(frozen=True)
class FaultConfig:
    """The faults of a SITL run; queried by kind at an episode time."""

    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(self.faults))

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultConfig:
        return cls(tuple(parse_fault(spec) for spec in specs))

    def value(self, kind: str, t: float) -> float | None:
        """The largest value of the active faults of `kind` at episode time `t` (1.0 for kinds without a value);
        None when none is active."""
        values = [f.value if f.value is not None else 1.0 for f in self.faults if f.kind == kind and f.active(t)]
        return max(values) if values else None

    def active(self, kind: str, t: float) -> bool:
        return self.value(kind, t) is not None

    def of_kind(self, kind: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return {"faults": [f.to_dict() for f in self.faults]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        return cls(tuple(Fault.from_dict(f) for f in data.get("faults", ())))
