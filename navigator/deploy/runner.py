"""Runs the steps of a deploy, rollback or status in order, reports each, and undoes what a failed deploy did.

A flow is written once and run two ways. For real, each step runs and its output comes back. With `dry_run`, steps
that change something are reported and not run (the flow continues as if each succeeded, so the dry run lists
exactly the steps a successful run would take); steps marked `reading` (the target's read-only probe, the local
wheel build into a temporary folder) run in both, since the plan depends on what they find.

Undo: as a flow creates things it registers the step that removes each (`on_failure`). If a later step fails, the
registered steps run newest first, every one of them even if one fails, and the failure is raised with what the
undo did, so that a failed deploy leaves the target as it was. An interrupted one (Ctrl-C, SIGTERM) is undone the same
way, and stays an interruption (`Interrupted`, a KeyboardInterrupt) for the command's exit code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from navigator.deploy.ssh import Step, StepFailed, run_step


class Hooks:
    """What a command shows of a flow; the defaults show nothing."""

    def begin(self, step: Step) -> None:
        """`step` starts (or, in a dry run, would run)."""

    def end(self, step: Step, seconds: float, note: str = "") -> None:
        """`step` succeeded after `seconds`; `note`: what it found, if anything worth saying."""

    def note(self, text: str) -> None:
        """A remark between steps (a reused venv, a service that cannot be managed)."""


class DeployFailed(Exception):
    """A step failed (`failure`); `undone` says what was done to put the target back as it was."""

    def __init__(self, failure: StepFailed | str, undone: list[str]) -> None:
        self.failure, self.undone = failure, undone
        super().__init__(str(failure))


class Interrupted(KeyboardInterrupt):
    """The flow was interrupted during step `step` (its title; None: between steps); `undone` as DeployFailed's."""

    def __init__(self, step: str | None, undone: list[str]) -> None:
        self.step, self.undone = step, undone
        super().__init__(f"interrupted{f' during {step}' if step else ''}")


@dataclass
class Runner:
    hooks: Hooks
    dry_run: bool = False
    planned: list[Step] = field(default_factory=list)  # what ran, or in a dry run would have run
    _undo: list[Step] = field(default_factory=list)
    _running: str | None = None  # the step that began and has not ended, for an interruption's report

    def run(self, step: Step, *, reading: bool = False, accept: tuple[int, ...] = (0,),
            note: str = "") -> str | None:
        """Run `step` (not in a dry run, unless `reading`); its stdout, or None when it was only planned. Exit codes
        in `accept` count as success. StepFailed otherwise."""
        self.planned.append(step)
        self.hooks.begin(step)
        if self.dry_run and not reading:
            return None
        started = time.monotonic()
        self._running = step.title
        stdout = run_step(step, accept)
        self._running = None
        self.hooks.end(step, time.monotonic() - started, note)
        return stdout

    def on_failure(self, step: Step) -> None:
        """Register `step` to run if a later step fails (nothing is registered in a dry run)."""
        if not self.dry_run:
            self._undo.append(step)

    def forget_undo(self) -> None:
        """The flow reached a point of no return (the switch): nothing is undone after it."""
        self._undo.clear()

    def undo(self, failure: StepFailed | str) -> DeployFailed:
        """Run the registered undo steps, newest first; the DeployFailed to raise, saying what each did."""
        return DeployFailed(failure, self._run_undo())

    def undo_interrupted(self) -> Interrupted:
        """Run the registered undo steps after an interruption; the Interrupted to raise."""
        return Interrupted(self._running, self._run_undo())

    def _run_undo(self) -> list[str]:
        undone = []
        for step in reversed(self._undo):
            try:
                run_step(step)
                undone.append(f"{step.title}: done")
            except StepFailed as error:
                undone.append(f"{step.title}: FAILED ({error})")
        self._undo.clear()
        return undone
