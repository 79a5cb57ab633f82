"""Resuming recorded work honestly: what differs between the settings a dataset or run recorded when it started and
the settings given now, named setting by setting in the user's terms.

`collect --resume` and `train --resume` continue exactly what was started, so any difference in a setting that
decides the result is refused, with every differing setting named ("batch_size: run has 16, you gave 32") instead of
a vague "other settings". Extending (more episodes, more epochs) is the one change allowed, and only when asked for
(`extend`), so that a typo in --epochs never silently lengthens a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    """One setting, by its dotted name (`parts[0].episodes`), with the recorded and the given value."""

    name: str
    recorded: Any
    given: Any

    def describe(self, owner: str) -> str:
        return f"{self.name}: {owner} has {_show(self.recorded)}, you gave {_show(self.given)}"

    @property
    def raises_a_count(self) -> bool:
        """True when both values are whole numbers and the given one is larger (an extension)."""
        return (isinstance(self.recorded, int) and isinstance(self.given, int) and not isinstance(self.recorded, bool)
                and not isinstance(self.given, bool) and self.given > self.recorded)


_MISSING = object()


def _show(value: Any) -> str:
    return "nothing" if value is _MISSING else repr(value)


def differences(recorded: Any, given: Any, name: str = "") -> list[Difference]:
    """Every leaf setting where `given` differs from `recorded` (plain data: dicts, lists, scalars), recursing into
    mappings and into lists of equal length so the names point at the one value that differs."""
    if isinstance(recorded, dict) and isinstance(given, dict):
        found = []
        for key in sorted(set(recorded) | set(given), key=str):
            child = f"{name}.{key}" if name else str(key)
            found += differences(recorded.get(key, _MISSING), given.get(key, _MISSING), child)
        return found
    if isinstance(recorded, (list, tuple)) and isinstance(given, (list, tuple)) and len(recorded) == len(given):
        found = []
        for index, (old, new) in enumerate(zip(recorded, given)):
            found += differences(old, new, f"{name}[{index}]")
        return found
    return [] if recorded == given else [Difference(name, recorded, given)]


def describe(found: list[Difference], owner: str) -> str:
    """The differences as one clause: "batch_size: run has 16, you gave 32; lr: ..."."""
    return "; ".join(difference.describe(owner) for difference in found)
