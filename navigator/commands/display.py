"""What train, adapt, compare and eval show while their pipelines run: one display of a training (stages, collected
episodes, batches, epochs) and one of an evaluation (episodes flown, failures filmed), both on the commands' one
progress bar (`common.progress_bar`). The pipelines print nothing themselves; they call these hooks."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

from navigator.commands.common import epoch_line, print_warning
from navigator.errors import counted
from navigator.evaluation import pipeline as evaluation
from navigator.training import pipeline as training


class TrainingDisplay(training.Hooks):
    """A training's stages and epochs as lines, its collected episodes and batches on a bar of `progress`.

    `indent` is put before the stage lines (epoch lines get two spaces more): "" for `navigator train`, "  " where
    each training is one of several runs. `label`, set by the caller as each run starts, goes before the bar's stage
    name."""

    def __init__(self, console: Console, progress: Progress, indent: str = "") -> None:
        self.console, self.progress, self.indent = console, progress, indent
        self.label = ""
        self.bar: TaskID = progress.add_task("", total=None, status="")

    def stage(self, name: str, detail: str) -> None:
        self.progress.update(self.bar, description=f"{self.label}{name}", completed=0, total=None, status="")
        self.console.print(f"{self.indent}[bold]{escape(name)}[/bold]: {escape(detail)}")

    def episode(self, collected) -> None:
        self.progress.update(self.bar, advance=1, status=f"{collected.frames} frames")

    def batch(self, index: int, batches: int, frames: int, loss: float) -> None:
        self.progress.update(self.bar, completed=index + 1, total=batches,
                             status=f"loss {loss:.4f} · {frames} frames")

    def cluster(self, cluster) -> None:
        if cluster.backend.kind == "ray":
            self.console.print(f"{self.indent}  roll-outs on the {cluster.describe()}")

    def warning(self, message: str) -> None:
        print_warning(message)

    def epoch(self, report) -> None:
        self.console.print(epoch_line(report, self.indent + "  "))


class EvaluationDisplay(evaluation.Hooks):
    """An evaluation's episodes, and the failures it films, on a bar of `progress`.

    `heading`, where given, starts a line printed as the evaluation starts, with the number of episodes to fly (for
    commands that evaluate after training); without it the bar alone says so."""

    def __init__(self, console: Console, progress: Progress, heading: str | None = None) -> None:
        self.console, self.progress, self.heading = console, progress, heading
        self.bar: TaskID | None = None

    def _restart(self, description: str, total: int, status: str) -> None:
        if self.bar is None:
            self.bar = self.progress.add_task(description, total=total, status=status)
        else:
            self.progress.update(self.bar, description=description, completed=0, total=total, status=status)

    def start(self, todo: int, done: int) -> None:
        if self.heading is not None:
            self.console.print(f"{self.heading}{counted(todo, 'episode')} to fly, {done} already recorded")
        self._restart("evaluating", todo, f"{done} already recorded")

    def damaged(self, note: str) -> None:
        print_warning(note)

    def episode(self, record) -> None:
        self.progress.update(self.bar, advance=1, status=f"last: {record.suite} seed {record.seed} {record.ending}")

    def filming(self, todo: int) -> None:
        if todo:
            self._restart("filming failures", todo, "")

    def filmed(self, record) -> None:
        self.progress.update(self.bar, advance=1, status=f"last: {record.suite} seed {record.seed}")

    def cluster(self, cluster) -> None:
        if cluster.backend.kind == "ray":
            self.progress.update(self.bar, description=f"evaluating on {cluster.cpus} CPUs")
            self.console.print(f"running on the {cluster.describe()}")
