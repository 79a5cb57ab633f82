"""`navigator data check`: every problem of a dataset at once, each naming its file, instead of the first one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from navigator.dataset.atomic import TEMP_SUFFIX
from navigator.dataset.episode_file import load_episode
from navigator.dataset.errors import DatasetError, DatasetNotFoundError
from navigator.dataset.manifest import EPISODES_FOLDER, MANIFEST_NAME, read_manifest
from navigator.dataset.reader import Dataset

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    severity: Severity
    file: str  # relative to the dataset folder
    message: str


@dataclass
class CheckReport:
    dataset: Path
    episodes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def sound(self) -> bool:
        """Warnings (leftovers of an interrupted collection) do not make a dataset unsound; errors do."""
        return not self.errors


def _strip_path(message: str, path: Path) -> str:
    # Errors carry the full path for the CLI; a check line already names the file, so drop the repetition.
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def check_dataset(path: str | Path) -> CheckReport:
    """Verify manifest, schema version, every checksum, every file's arrays; list leftover and unlisted files.

    A missing folder raises DatasetNotFoundError (that is bad input, not an unsound dataset); everything else is
    reported as a Problem."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: no such dataset folder")
    report = CheckReport(path)
    folder = path / EPISODES_FOLDER
    on_disk = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    try:
        dataset = Dataset(path, read_manifest(path))
    except DatasetError as error:
        report.problems.append(Problem("error", MANIFEST_NAME, _strip_path(str(error), path / MANIFEST_NAME)))
        # Without a manifest there are no checksums to compare, but each file can still be read and validated.
        listed = {name for name in on_disk if name.endswith(".npz")}
        for name in sorted(listed):
            report.episodes_checked += 1
            try:
                load_episode(folder / name)
            except DatasetError as error:
                report.problems.append(Problem("error", f"{EPISODES_FOLDER}/{name}",
                                               _strip_path(str(error), folder / name)))
    else:
        listed = {entry.file for entry in dataset.entries}
        for entry in dataset.entries:
            report.episodes_checked += 1
            relative = f"{EPISODES_FOLDER}/{entry.file}"
            try:
                dataset.read(entry, verify=True)
            except DatasetError as error:
                report.problems.append(Problem("error", relative, _strip_path(str(error), dataset.episode_path(entry))))
    for name in on_disk:
        relative = f"{EPISODES_FOLDER}/{name}"
        if name.endswith(TEMP_SUFFIX):
            report.problems.append(Problem("warning", relative, "temporary file left by an interrupted write; it is "
                                           "ignored, and resume (or deleting it) removes it"))
        elif name.endswith(".npz") and name not in listed:
            report.problems.append(Problem("warning", relative, "episode file not listed in the manifest (written "
                                           "when the collection stopped); resume adopts it if it reads"))
        elif not name.endswith(".npz"):
            report.problems.append(Problem("warning", relative, "unexpected file in the episodes folder"))
    if not folder.is_dir() and (path / MANIFEST_NAME).exists():
        report.problems.append(Problem("error", EPISODES_FOLDER, "episodes folder is missing"))
    return report
