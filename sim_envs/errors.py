"""Errors of the simulated world that name the problem and the valid choices."""

from __future__ import annotations


class UnknownNameError(ValueError):
    """A name (task, preset, airframe, pilot) that is not one of the valid choices."""

    def __init__(self, kind: str, name: str, valid: tuple[str, ...] | list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s are: {', '.join(valid)}")
