"""Reading datasets: one folder (`Dataset.open`) or several used together (`open_datasets`)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.dataset.compat import SourceFormat, require_compatible
from navigator.dataset.episode import Episode, EpisodeKey
from navigator.dataset.episode_file import checksum_mismatch, file_sha256, load_arrays, load_episode
from navigator.dataset.errors import CorruptEpisodeError, DatasetError
from navigator.dataset.manifest import (EPISODES_FOLDER, EpisodeEntry, Manifest, fits, manifest_path, read_manifest,
                                        show)
from navigator.errors import ACCESS_ERRORS, access_problem
from navigator.folder_lock import refuse_if_in_use


def entry_mismatches(recorded: Mapping[str, Any], episode: Episode) -> list[str]:
    """Each field of a manifest entry (parsed JSON, or an EpisodeEntry as a dict) that differs from what the episode
    file itself records, one message per field. Fields of the wrong type are skipped: the manifest's own check
    reports those. Called on a file whose checksum matched, so the file is what was flown and the fix is to set the
    manifest back."""
    outcome = episode.metadata["outcome"]
    actual = {"file": episode.key.file_name(), "frames": episode.frames, "task": episode.metadata["task"],
              "preset": episode.metadata["preset"], "seed": episode.metadata["seed"],
              "success": outcome["success"], "ending": outcome["ending"]}
    kinds = EpisodeEntry.__annotations__
    problems = []
    for name, value in actual.items():
        given = recorded.get(name)
        if name in recorded and fits(given, kinds[name]) and given != value:
            problems.append(f"the manifest lists {name} {show(given)} but the episode file records {show(value)}; "
                            f"set the manifest entry back to {show(value)}")
    return problems


# The collection settings a manifest's recipe and each episode file both record: (recipe key, episode metadata key).
_RECIPE_SETTINGS = (("airframe", "airframe"), ("camera", "camera"), ("pilot", "pilot"),
                    ("dart_noise", "dart_noise_std"), ("dart_time_constant", "dart_time_constant"),
                    ("dart_near_target", "dart_near_target"))


def recipe_mismatches(recipe: Mapping[str, Any], episode: Episode) -> list[tuple[str, Any, Any]]:
    """The collection settings of a manifest's `recipe` that the episode file says it was not flown with, as
    (setting, the recipe's value, the episode's value). Settings either side lacks are not compared: datasets merged
    or written by hand have no recipe, older episodes record fewer settings."""
    compared = dict(recipe)
    if episode.metadata.get("pilot", "expert") != "expert":
        for name in ("dart_noise", "dart_near_target"):  # recovery noise perturbs the expert only: roll-outs record 0
            compared.pop(name, None)
    return [(name, compared[name], episode.metadata[recorded_as]) for name, recorded_as in _RECIPE_SETTINGS
            if name in compared and recorded_as in episode.metadata and compared[name] != episode.metadata[recorded_as]]


def _size_mismatch(actual: tuple[int, int], listed: tuple[int, int]) -> str:
    # Said in the user's terms: the manifest's field names and width x height, as cameras are described.
    return (f"its images are {actual[1]}x{actual[0]} but the manifest says {listed[1]}x{listed[0]} (width x height); "
            f"set image_width and image_height in the manifest to the episodes' size")


def layout_mismatches(image_size: tuple[int, int] | None, action_convention: str | None,
                      episode: Episode) -> list[str]:
    """How an episode differs from its manifest's image size and action convention (None: the manifest's value is
    itself invalid and reported elsewhere, so there is nothing to compare with)."""
    problems = []
    if image_size is not None and episode.image_size != image_size:
        problems.append(_size_mismatch(episode.image_size, image_size))
    convention = episode.metadata.get("action_convention")
    if action_convention is not None and convention != action_convention:
        problems.append(f"its actions follow {show(convention)} but the manifest says {show(action_convention)}")
    return problems


@dataclass(frozen=True)
class Dataset:
    """A dataset folder as its manifest describes it. Only episodes listed in the manifest exist for a reader:
    temporary files and unlisted episode files are ignored (check reports them)."""

    path: Path
    manifest: Manifest

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        path = Path(path)
        return cls(path, read_manifest(path))

    @property
    def entries(self) -> tuple[EpisodeEntry, ...]:
        return self.manifest.episodes

    def __len__(self) -> int:
        return len(self.manifest.episodes)

    @property
    def source_format(self) -> SourceFormat:
        return SourceFormat(str(manifest_path(self.path)), self.manifest.image_size, self.manifest.action_convention)

    def episode_path(self, entry: EpisodeEntry) -> Path:
        return self.path / EPISODES_FOLDER / entry.file

    def read(self, entry: EpisodeEntry, verify: bool = True) -> Episode:
        """The whole episode, validated; with `verify`, its sha256 is checked against the manifest first."""
        path = self.episode_path(entry)
        episode = load_episode(path, entry.sha256 if verify else None)
        problems = entry_mismatches(asdict(entry), episode) + layout_mismatches(
            self.manifest.image_size, self.manifest.action_convention, episode)
        if problems:
            raise DatasetError(f"{path}: " + "; ".join(problems) + f" (`navigator data check "
                               f"{shlex.quote(str(self.path))}` lists every such problem)")
        return episode

    def verify_files(self) -> None:
        """Check every listed episode file's sha256 against the manifest (the bytes only, nothing decoded): readers
        of a few arrays (`read_arrays`, as training reads) skip the checksum, so a file changed or damaged since it
        was written is caught here, before any work. CorruptEpisodeError (a ChecksumError when the bytes differ)
        naming the first such file and the way out."""
        for entry in self.entries:
            path = self.episode_path(entry)
            try:
                actual = file_sha256(path)
            except OSError as error:
                if error.errno in ACCESS_ERRORS:  # not damage: recording it again would not help
                    raise DatasetError(access_problem(error)) from None
                raise CorruptEpisodeError(f"{path}: cannot be read ({error.strerror or error}); "
                                          f"{self._repair_hint()}") from None
            if actual != entry.sha256:
                raise checksum_mismatch(path, actual, entry.sha256, self._repair_hint())

    def _repair_hint(self) -> str:
        quoted = shlex.quote(str(self.path))
        return (f"`navigator data check {quoted}` lists every such file, and `navigator collect --out {quoted} "
                f"--resume` records them again")

    def read_arrays(self, entry: EpisodeEntry, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Only the named contract arrays (no checksum), e.g. actions for statistics without decoding images."""
        path = self.episode_path(entry)
        arrays = load_arrays(path, names)
        frames = next(iter(arrays.values())).shape[0] if arrays else entry.frames
        problems = []
        if frames != entry.frames:
            problems.append(f"the manifest lists frames {entry.frames} but the episode file holds {frames}")
        if "images" in arrays and arrays["images"].shape[1:3] != self.manifest.image_size:
            height, width = arrays["images"].shape[1:3]
            problems.append(_size_mismatch((height, width), self.manifest.image_size))
        if problems:
            raise DatasetError(f"{path}: " + "; ".join(problems) + f" (`navigator data check "
                               f"{shlex.quote(str(self.path))}` lists every such problem)")
        return arrays

    def __iter__(self) -> Iterator[Episode]:
        return (self.read(entry) for entry in self.entries)

    def completed(self) -> set[EpisodeKey]:
        return {entry.key for entry in self.entries}


def open_datasets(paths: Sequence[str | Path]) -> list[Dataset]:
    """Open several datasets to use together, refusing one dataset given twice (`require_distinct`) and different
    image sizes or action conventions (the error names both manifests and both values). Every command that uses
    datasets together (data info, preview and export, train) opens them here."""
    for path in paths:  # a collection still adding episodes would be read in part
        refuse_if_in_use(Path(path), "dataset")
    datasets = [Dataset.open(path) for path in paths]
    require_distinct(paths)
    _require_distinct_episodes(datasets)
    require_compatible([dataset.source_format for dataset in datasets])
    return datasets


def require_episodes(datasets: Iterable[Dataset], given: str) -> None:
    """Refuse a dataset that holds no episodes (a collection stopped before its first), named as `given` (the flag
    or recipe key that named it): nothing to learn from, and said before any work rather than after."""
    for dataset in datasets:
        if not dataset.entries:
            raise DatasetError(f"{given} {dataset.path} holds no episodes; record some with navigator collect")


def require_one_scenario(datasets: Sequence[Dataset], given: str) -> None:
    """Refuse datasets recorded with different cameras or airframes (each told by its first episode's metadata),
    named as `given`: a policy learns one camera and one airframe's action scaling, and its checkpoint records the
    first dataset's, so the others' frames and actions would be learnt as what they are not."""
    def scenario(dataset: Dataset) -> tuple[Any, Any]:
        metadata = dataset.read(dataset.entries[0], verify=False).metadata
        return metadata.get("airframe"), metadata.get("camera") or {}

    first = datasets[0] if datasets else None
    for dataset in datasets[1:]:
        (airframe, camera), (first_airframe, first_camera) = scenario(dataset), scenario(first)
        if airframe != first_airframe:
            raise DatasetError(f"{given} {dataset.path} was recorded on the {airframe} airframe and {first.path} on "
                               f"the {first_airframe}: a policy learns one airframe's action limits; train on "
                               f"datasets recorded alike (navigator collect --airframe)")
        differing = sorted(key for key in {*camera, *first_camera} if camera.get(key) != first_camera.get(key))
        if differing:
            shown = ", ".join(f"{key} {camera.get(key)} (not {first_camera.get(key)})" for key in differing)
            raise DatasetError(f"{given} {dataset.path} was recorded with another camera than {first.path}: {shown}; "
                               f"a policy learns one camera: train on datasets recorded alike (navigator collect "
                               f"--config FILE with the same camera:)")


def _require_distinct_episodes(datasets: Sequence[Dataset]) -> None:
    """Refuse two datasets holding the same episode (the same file content, by the manifests' sha256): a copy of a
    dataset given beside it escapes `require_distinct`, and would count its episodes twice just the same."""
    seen: dict[str, Dataset] = {}
    for dataset in datasets:
        for entry in dataset.entries:
            first = seen.setdefault(entry.sha256, dataset)
            if first is not dataset:
                raise DatasetError(
                    f"{first.path} and {dataset.path} hold the same episode ({entry.task}, {entry.preset}, seed "
                    f"{entry.seed}; sha256 {entry.sha256[:12]}…): one is a copy of the other; give each dataset "
                    f"once (otherwise its episodes count twice, and a copy can land in both training and validation)")


def require_distinct(paths: Sequence[str | Path]) -> None:
    """Refuse one dataset folder given twice, however it is spelt (X, X/, ./X, a symbolic link or another mount of
    the same folder): its episodes would count twice, in statistics, exports and training, where the copies of an
    episode could land in both training and validation. Folders are compared by device and inode; a path that is not
    a folder is left to the code that opens it, which says what is wrong with it."""
    seen: dict[tuple[int, int], Path] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            continue
        status = path.stat()
        identity = (status.st_dev, status.st_ino)
        if identity in seen:
            first = seen[identity]
            same = f"{first} is given twice" if str(first) == str(path) else (
                f"{first} and {path} are the same dataset folder")
            raise DatasetError(f"{same}: give each dataset once (otherwise its episodes count twice)")
        seen[identity] = path
