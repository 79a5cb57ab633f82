"""Errors of the simulated world that name the problem, echo the input and say how to fix it."""

from __future__ import annotations


class InvalidNameError(ValueError):
    """A name or spec (task, preset, airframe, pilot) that cannot be used as given; the message says why."""


class UnknownNameError(InvalidNameError):
    """A name that is not one of the valid choices. `spec` is the whole input when the name is one part of it
    (a preset in "winter+spring"), so that the message shows where the unknown part came from."""

    def __init__(self, kind: str, name: str, valid: tuple[str, ...] | list[str], spec: str | None = None) -> None:
        where = f" in {spec!r}" if spec is not None and spec != name else ""
        super().__init__(f"unknown {kind} {name!r}{where}; valid {kind}s are: {', '.join(valid)}")
        self.arguments = (kind, name, tuple(valid), spec)

    def __reduce__(self):  # pickled (from a worker process) by its arguments, not the message alone
        return type(self), self.arguments


class NoDisplayError(RuntimeError):
    """A GUI window was asked for where no X display answers; raised before PyBullet could abort the process.
    `reason` is what is wrong without the advice, for callers that give advice in their own terms."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(f"{reason}; {fix}")
        self.reason = reason
        self.fix = fix

    def __reduce__(self):  # pickled (from a worker process) by its arguments, not the message alone
        return type(self), (self.reason, self.fix)


class ClosedEnvironmentError(RuntimeError):
    """An environment used after close()."""
