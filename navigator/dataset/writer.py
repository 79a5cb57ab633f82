"""Writing datasets, made for parallel collection.

Workers call `write_episode(dataset, episode)`: it writes one episode file atomically and returns its EpisodeEntry
(small and picklable) without touching the manifest. The parent process owns a `DatasetWriter` and calls `add(entry)`
for each entry a worker returns: it is the only writer of manifest.json, so the manifest is always consistent.
A worker that cannot reach the dataset folder (a Ray worker on another machine) calls `pack_episode(episode)`
instead and returns the file's bytes; the parent writes them with `DatasetWriter.store(entry, data)`.
Killed at any moment, a collection leaves complete episode files, at most one temporary file per worker, and a
manifest that lists only complete episodes; `DatasetWriter.open(...).recover()` then adopts complete files the
manifest missed and removes temporaries, and `missing(keys)` says what is left to collect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from navigator.dataset.atomic import TEMP_SUFFIX, atomic_write_bytes
from navigator.dataset.compat import SourceFormat, require_compatible
from navigator.dataset.episode import Episode, EpisodeKey
from navigator.dataset.episode_file import episode_bytes, file_sha256, load_episode, save_episode
from navigator.dataset.errors import ChecksumError, DatasetError, ManifestError
from navigator.dataset.manifest import (EPISODES_FOLDER, MANIFEST_NAME, DroppedEntry, EpisodeEntry, Manifest,
                                        manifest_path, read_manifest, write_manifest)
from navigator.dataset.schema import ACTION_CONVENTION
from navigator.folder_lock import FolderLock


def _layout_check(dataset: Path, manifest: Manifest, episode: Episode, name: str) -> None:
    require_compatible([
        SourceFormat(str(manifest_path(dataset)), manifest.image_size, manifest.action_convention),
        SourceFormat(f"episode {name}", episode.image_size, str(episode.metadata.get("action_convention"))),
    ])


def _entry(file: str, sha256: str, episode: Episode) -> EpisodeEntry:
    outcome = episode.metadata["outcome"]
    key = episode.key
    return EpisodeEntry(file=file, sha256=sha256, frames=episode.frames, task=key.task, preset=key.preset,
                        seed=key.seed, success=bool(outcome["success"]), ending=str(outcome["ending"]))


def write_episode(dataset: Path, episode: Episode) -> EpisodeEntry:
    """Worker side: validate `episode`, write its file atomically into `dataset`, return the entry for the parent.

    Refuses (before writing anything) an invalid episode, one whose image size or action convention differs from the
    dataset's, and one whose key is already complete, so a sound file is never overwritten.
    """
    dataset = Path(dataset)
    manifest = read_manifest(dataset)
    episode.require_valid(f"episode not written to {dataset}")
    name = episode.key.file_name()
    _layout_check(dataset, manifest, episode, name)
    if any(entry.key == episode.key for entry in manifest.episodes):
        raise DatasetError(f"{dataset}: episode {episode.key} is already complete (file {name}); collect only the "
                           f"keys that DatasetWriter.missing() returns")
    sha256 = save_episode(dataset / EPISODES_FOLDER / name, episode)
    return _entry(name, sha256, episode)


def pack_episode(episode: Episode) -> tuple[EpisodeEntry, bytes]:
    """Worker side, for a worker that cannot reach the dataset folder: validate `episode` and return its entry and
    the bytes of its file, for the parent to `DatasetWriter.store`. The bytes are those `write_episode` writes."""
    data = episode_bytes(episode)
    return _entry(episode.key.file_name(), hashlib.sha256(data).hexdigest(), episode), data


@dataclass
class Recovery:
    """What `DatasetWriter.recover` did after an interrupted collection."""

    adopted: list[EpisodeEntry] = field(default_factory=list)
    # (file, why it was not adopted, the name it was set aside as: never deleted, no longer read as an episode)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)
    removed_temporaries: list[str] = field(default_factory=list)


@dataclass
class Verification:
    """What `DatasetWriter.verify_listed` found among the manifest's episodes: entries whose file is gone, and entries
    whose file no longer matches its recorded sha256 (each set aside under the returned name). All of them were
    removed from the manifest, so a resumed collection flies them again."""

    missing: list[EpisodeEntry] = field(default_factory=list)
    damaged: list[tuple[EpisodeEntry, str]] = field(default_factory=list)  # (entry, name it was set aside as)


DAMAGED_SUFFIX = ".damaged"


def _set_aside(path: Path) -> str:
    """Rename a damaged or foreign episode file to a free name next to it (NAME.damaged, NAME.damaged-2, ...), which
    nothing reads as an episode; returns that name."""
    candidate, number = path.with_name(path.name + DAMAGED_SUFFIX), 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{number}")
    path.rename(candidate)
    return candidate.name


class DatasetWriter:
    """The parent process's handle on a dataset: the one place that changes manifest.json."""

    def __init__(self, path: Path, manifest: Manifest, created: tuple[Path, ...] | None = None,
                 lock: FolderLock | None = None) -> None:
        self.path = Path(path)
        self._manifest = manifest
        self._lock = lock  # this process writes the dataset as long as the writer lives (navigator.folder_lock)
        # Set by `create` only: the folders it made (outermost first), which `discard_if_empty` may remove along
        # with the manifest. None for a dataset that was opened: that one is never discarded.
        self._created = created

    @classmethod
    def create(cls, path: str | Path, *, image_size: tuple[int, int], recipe: dict[str, Any],
               action_convention: str = ACTION_CONVENTION) -> DatasetWriter:
        """Start a new dataset at `path` (which may exist but must hold no manifest) with an empty manifest."""
        path = Path(path)
        if manifest_path(path).exists():
            raise ManifestError(f"{manifest_path(path)}: a dataset already exists here; open it to continue it "
                                f"(resume) or choose another folder")
        episodes = path / EPISODES_FOLDER
        created = tuple(folder for folder in (*reversed(episodes.parents), episodes) if not folder.exists())
        episodes.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(path, "dataset")
        height, width = (int(v) for v in image_size)
        manifest = Manifest(height, width, action_convention, dict(recipe))
        write_manifest(path, manifest)
        return cls(path, manifest, created, lock)

    @classmethod
    def open(cls, path: str | Path) -> DatasetWriter:
        """Continue an existing dataset (after an interruption, or to add episodes)."""
        path = Path(path)
        lock = FolderLock(path, "dataset") if path.is_dir() else None  # before reading: none writes meanwhile
        manifest = read_manifest(path)
        (path / EPISODES_FOLDER).mkdir(exist_ok=True)
        return cls(path, manifest, lock=lock)

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def completed(self) -> set[EpisodeKey]:
        """Keys of the episodes the manifest lists as complete (kept, or flown and dropped)."""
        return {entry.key for entry in (*self._manifest.episodes, *self._manifest.dropped)}

    def missing(self, keys: Iterable[EpisodeKey]) -> list[EpisodeKey]:
        """The keys among `keys` still to collect, in the given order."""
        done = self.completed()
        return [EpisodeKey(*key) for key in keys if EpisodeKey(*key) not in done]

    def add(self, entry: EpisodeEntry) -> None:
        """Record a complete episode file (as returned by write_episode) in the manifest, atomically.

        The file's checksum is verified first, so the manifest never vouches for bytes it has not seen."""
        path = self.path / EPISODES_FOLDER / entry.file
        if not path.is_file():
            raise DatasetError(f"{path}: episode file to add does not exist")
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise ChecksumError(f"{path}: sha256 {actual[:12]}… differs from {entry.sha256[:12]}… reported by its "
                                f"writer; it was changed after it was written")
        self._manifest = self._manifest.with_entry(entry)
        write_manifest(self.path, self._manifest)

    def store(self, entry: EpisodeEntry, data: bytes) -> None:
        """Write an episode file that a worker packed (`pack_episode`) atomically, then `add` its entry: the parent
        writes it, for a worker on a machine that does not share the dataset folder. Refuses (before writing) bytes
        whose sha256 differs from the entry's and an episode that is already complete, so a sound file is never
        overwritten."""
        path = self.path / EPISODES_FOLDER / entry.file
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            raise ChecksumError(f"{path}: the episode's bytes (sha256 {actual[:12]}…) differ from the "
                                f"{entry.sha256[:12]}… its worker computed; they were damaged on the way")
        if entry.key in self.completed():
            raise DatasetError(f"{self.path}: episode {entry.key} is already complete (file {entry.file}); collect "
                               f"only the keys that DatasetWriter.missing() returns")
        atomic_write_bytes(path, data)
        self.add(entry)

    def set_recipe(self, recipe: dict[str, Any]) -> None:
        """Record a new recipe (an extended collection records its larger episode counts), atomically."""
        self._manifest = replace(self._manifest, recipe=dict(recipe))
        write_manifest(self.path, self._manifest)

    def discard_if_empty(self) -> bool:
        """After a collection that failed before recording anything: remove the manifest and the folders `create`
        made, so a failed run leaves no empty dataset behind. Does nothing (returns False) for a dataset this writer
        did not create, or one that holds any episode, dropped mark or other file: never the user's data."""
        if self._created is None or self._manifest.episodes or self._manifest.dropped:
            return False
        folder = self.path / EPISODES_FOLDER
        leftovers = [p for p in folder.iterdir() if not p.name.endswith(TEMP_SUFFIX)] if folder.is_dir() else []
        others = [p for p in self.path.iterdir() if p.name not in (EPISODES_FOLDER, MANIFEST_NAME)]
        if leftovers or others:
            return False
        for temporary in folder.iterdir():
            temporary.unlink()
        manifest_path(self.path).unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
        for created in reversed(self._created):
            if created.is_dir() and not any(created.iterdir()):
                created.rmdir()
        return True

    def drop(self, entry: DroppedEntry) -> None:
        """Record an episode that was flown but not kept, atomically."""
        self._manifest = self._manifest.with_dropped(entry)
        write_manifest(self.path, self._manifest)

    def write(self, episode: Episode) -> EpisodeEntry:
        """Single-process convenience: write_episode then add."""
        entry = write_episode(self.path, episode)
        self.add(entry)
        return entry

    def verify_listed(self) -> Verification:
        """Before continuing a dataset: check that every episode the manifest lists still has its file, with the
        recorded sha256. A missing one is removed from the manifest; a damaged one is renamed aside (never deleted)
        and removed from the manifest; either way `missing()` then names it again, so it is flown again."""
        verification = Verification()
        folder = self.path / EPISODES_FOLDER
        for entry in self._manifest.episodes:
            path = folder / entry.file
            if not path.is_file():
                verification.missing.append(entry)
            elif file_sha256(path) != entry.sha256:
                verification.damaged.append((entry, _set_aside(path)))
        gone = {entry.key for entry in verification.missing} | {entry.key for entry, _ in verification.damaged}
        if gone:
            self._manifest = replace(self._manifest,
                                     episodes=tuple(e for e in self._manifest.episodes if e.key not in gone))
            write_manifest(self.path, self._manifest)
        return verification

    def recover(self) -> Recovery:
        """After an interrupted collection, with no writer running: adopt complete episode files the manifest does
        not list (each is read and validated in full first), and delete leftover temporary files."""
        recovery = Recovery()
        folder = self.path / EPISODES_FOLDER
        listed = {entry.file for entry in self._manifest.episodes}
        for path in sorted(folder.iterdir()):
            if path.name.endswith(TEMP_SUFFIX):
                path.unlink()
                recovery.removed_temporaries.append(path.name)
            elif path.suffix == ".npz" and path.name not in listed:
                try:
                    episode = load_episode(path)
                    _layout_check(self.path, self._manifest, episode, path.name)
                except DatasetError as error:
                    recovery.rejected.append((path.name, str(error), _set_aside(path)))
                    continue
                if episode.key.file_name() != path.name or episode.key in self.completed():
                    recovery.rejected.append((path.name, f"holds episode {episode.key}, which belongs in "
                                                         f"{episode.key.file_name()} or is already listed",
                                              _set_aside(path)))
                    continue
                entry = _entry(path.name, file_sha256(path), episode)
                self.add(entry)
                recovery.adopted.append(entry)
        return recovery
