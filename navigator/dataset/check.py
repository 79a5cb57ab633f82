"""`navigator data check`: every problem of a dataset at once, each naming its file, instead of the first one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from navigator.dataset.atomic import TEMP_SUFFIX
from navigator.dataset.completeness import completeness
from navigator.dataset.episode import Episode
from navigator.dataset.episode_file import load_episode
from navigator.dataset.errors import DatasetError, DatasetNotFoundError, EditedManifestError
from navigator.dataset.manifest import (EPISODES_FOLDER, MANIFEST_NAME, RESTORE, Manifest, image_size_of,
                                        load_manifest_data, manifest_problems, plain_file_name,
                                        require_dataset_folder, show)
from navigator.dataset.reader import entry_mismatches, layout_mismatches, recipe_mismatches
from navigator.dataset.writer import DAMAGED_SUFFIX
from navigator.errors import counted
from navigator.folder_lock import refuse_if_in_use

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


def check_dataset(path: str | Path, recipe_problem: Callable[[dict[str, Any]], str | None] | None = None
                  ) -> CheckReport:
    """Verify the manifest field by field, the schema version, every checksum, every file's arrays, and that every
    manifest entry agrees with its episode file; list leftover and unlisted files and warn about an incomplete
    collection. Every problem found is listed, not only the first. `recipe_problem` (the collector's reading of a
    recorded recipe, passed in because the dataset layer does not know the collector) says why the manifest's
    recipe could not be continued; that is a warning, as the episodes themselves can still be sound.

    A missing folder, a file given instead of a folder, or a folder with neither a manifest nor an episode file
    raises DatasetNotFoundError (that is bad input, not an unsound dataset), and a dataset another process is still
    writing is a UserError too (as every reader says); everything else is reported as a Problem."""
    path = Path(path)
    require_dataset_folder(path)
    refuse_if_in_use(path, "dataset")  # a collection still writing it: its state is a moment's, not a verdict
    report = CheckReport(path)
    folder = path / EPISODES_FOLDER
    on_disk = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not (path / MANIFEST_NAME).exists() and not any(name.endswith(".npz") for name in on_disk):
        # Nothing of a dataset to judge (a folder given by mistake): bad input, like a missing folder.
        raise DatasetNotFoundError(f"{path}: is not a dataset folder (it holds no {MANIFEST_NAME} and no episode "
                                   f"files); give the folder navigator collect wrote")
    edited = False
    try:
        try:
            data = load_manifest_data(path)
        except EditedManifestError as error:  # what it lists is judged below, field by field, against the files
            edited = True
            report.problems.append(Problem("warning", MANIFEST_NAME, f"{error.reason}; {RESTORE}"))
            data = load_manifest_data(path, verify=False)
    except DatasetError as error:
        report.problems.append(Problem("error", MANIFEST_NAME, _strip_path(str(error), path / MANIFEST_NAME)))
        # Without a manifest there are no checksums to compare, but each file can still be read and validated.
        listed = {name for name in on_disk if name.endswith(".npz")}
        for name in sorted(listed):
            _load(report, folder, name, None)
    else:
        listed = _check_against_manifest(report, data, edited)
        recipe = data.get("recipe")
        problem = recipe_problem(recipe) if recipe_problem is not None and isinstance(recipe, dict) else None
        if problem is not None:
            report.problems.append(Problem("warning", MANIFEST_NAME, f"its 'recipe' cannot be continued by "
                                           f"`navigator collect --resume` or `--extend`: {problem}"))
    for name in on_disk:
        relative = f"{EPISODES_FOLDER}/{name}"
        if name.endswith(TEMP_SUFFIX):
            report.problems.append(Problem("warning", relative, "temporary file left by an interrupted write; it is "
                                           "ignored, and resume (or deleting it) removes it"))
        elif name.endswith(".npz") and name not in listed:
            report.problems.append(Problem("warning", relative, "episode file not listed in the manifest (written "
                                           "when the collection stopped); resume adopts it if it reads"))
        elif DAMAGED_SUFFIX in name:
            report.problems.append(Problem("warning", relative, "an episode file collect --resume set aside "
                                           "(damaged, or not this dataset's); delete it once you no longer need it"))
        elif not name.endswith(".npz"):
            report.problems.append(Problem("warning", relative, "unexpected file in the episodes folder"))
    if not folder.is_dir() and (path / MANIFEST_NAME).exists():
        report.problems.append(Problem("error", EPISODES_FOLDER, "episodes folder is missing"))
    return report


def _load(report: CheckReport, folder: Path, name: str, sha256: str | None) -> Episode | None:
    """Read and validate one episode file (checksum first when given), reporting a failure as an error."""
    report.episodes_checked += 1
    try:
        return load_episode(folder / name, sha256)
    except DatasetError as error:
        report.problems.append(Problem("error", f"{EPISODES_FOLDER}/{name}", _strip_path(str(error), folder / name)))
        return None


def _check_against_manifest(report: CheckReport, data: dict[str, Any], edited: bool) -> set[str]:
    """Report every field-level problem of a parsed manifest, then read each entry's file and compare it with every
    field of the entry it could be checked against, and with the recipe's collection settings; returns the file
    names the manifest lists. `edited`: the manifest no longer matches its checksum (already reported), so its
    recipe says nothing about how to finish the collection."""
    path = report.dataset
    folder = path / EPISODES_FOLDER
    problems = manifest_problems(data)
    report.problems += [Problem("error", MANIFEST_NAME, problem) for problem in problems]
    entries = data.get("episodes") if isinstance(data.get("episodes"), list) else []
    convention = data.get("action_convention") if isinstance(data.get("action_convention"), str) else None
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    listed = set()
    flown_otherwise: dict[str, list[tuple[str, Any, Any]]] = {}  # file -> recipe settings it was not flown with
    for entry in entries:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not plain_file_name(name):
            continue  # reported with the manifest's problems; there is no file to compare it with
        listed.add(name)
        episode = _load(report, folder, name, entry["sha256"] if isinstance(entry.get("sha256"), str) else None)
        if episode is not None:
            report.problems += [Problem("error", f"{EPISODES_FOLDER}/{name}", mismatch)
                                for mismatch in entry_mismatches(entry, episode)
                                + layout_mismatches(image_size_of(data), convention, episode)]
            flown_otherwise[name] = recipe_mismatches(recipe, episode)
    report.problems += _recipe_problems(flown_otherwise, edited)
    if not problems and not edited:
        state = completeness(Manifest.from_dict(data, str(path / MANIFEST_NAME)))
        if not state.complete:
            report.problems.append(Problem("warning", MANIFEST_NAME, state.message(path)))
        if state.unexpected:
            first, many = state.unexpected[0], len(state.unexpected) != 1
            report.problems.append(Problem("warning", MANIFEST_NAME, f"{counted(len(state.unexpected), 'episode')} "
                                           f"it holds {'are' if many else 'is'} not in its recipe (the first {first}): "
                                           f"the recipe was edited after {'they were' if many else 'it was'} "
                                           f"collected, so collect --resume would not make this dataset"))
    return listed


def _recipe_problems(flown_otherwise: dict[str, list[tuple[str, Any, Any]]], edited: bool) -> list[Problem]:
    """The recipe's settings that episodes were not flown with: the recipe's fault (one error on the manifest) when
    it was edited since navigator wrote it or when every episode differs from it alike; else each such episode's
    (it came from another collection)."""
    differing = {name: found for name, found in flown_otherwise.items() if found}
    if not differing:
        return []
    alike = len(differing) == len(flown_otherwise) and len({repr(found) for found in differing.values()}) == 1
    if edited or alike:
        counts: dict[str, tuple[str, Any, Any, int]] = {}  # one line per (setting, recipe's value, episodes' value)
        for found in differing.values():
            for setting, given, flown in found:
                key = repr((setting, given, flown))
                counts[key] = (setting, given, flown, counts[key][3] + 1 if key in counts else 1)
        said = "; ".join(f"its recipe says {setting} {show(given)} but {_episodes(count, len(flown_otherwise))} "
                         f"flown with {show(flown)}" for setting, given, flown, count in counts.values())
        return [Problem("error", MANIFEST_NAME, f"{said}: the recipe does not describe its episodes (edited by "
                                               f"hand?); restore the manifest from a copy of the dataset")]
    return [Problem("error", f"{EPISODES_FOLDER}/{name}",
                    "; ".join(f"it was flown with {setting} {show(flown)} but the manifest's recipe says {show(given)}"
                              for setting, given, flown in found)
                    + ": it comes from another collection; move it to a dataset of its own settings")
            for name, found in differing.items()]


def _episodes(count: int, checked: int) -> str:
    """"its 4 episodes were", "1 of its 3 episodes was"."""
    were = "were" if count != 1 else "was"
    if count == checked:
        return f"its {checked} episode{'s' if checked != 1 else ''} {were}"
    return f"{count} of its {checked} episodes {were}"
