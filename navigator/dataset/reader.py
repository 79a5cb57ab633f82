"""Reading datasets: one folder (`Dataset.open`) or several used together (`open_datasets`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from navigator.dataset.compat import SourceFormat, require_compatible
from navigator.dataset.episode import Episode, EpisodeKey
from navigator.dataset.episode_file import load_arrays, load_episode
from navigator.dataset.errors import DatasetError
from navigator.dataset.manifest import EPISODES_FOLDER, EpisodeEntry, Manifest, manifest_path, read_manifest


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
        episode = load_episode(self.episode_path(entry), entry.sha256 if verify else None)
        if episode.frames != entry.frames or episode.key != entry.key:
            raise DatasetError(f"{self.episode_path(entry)}: holds {episode.key} with {episode.frames} frames but "
                               f"the manifest lists {entry.key} with {entry.frames}")
        require_compatible([self.source_format, SourceFormat(str(self.episode_path(entry)), episode.image_size,
                                                             str(episode.metadata["action_convention"]))])
        return episode

    def read_arrays(self, entry: EpisodeEntry, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Only the named contract arrays (no checksum), e.g. actions for statistics without decoding images."""
        path = self.episode_path(entry)
        arrays = load_arrays(path, names)
        frames = next(iter(arrays.values())).shape[0] if arrays else entry.frames
        if frames != entry.frames:
            raise DatasetError(f"{path}: has {frames} frames but the manifest lists {entry.frames}")
        if "images" in arrays:
            size = arrays["images"].shape[1:3]
            require_compatible([self.source_format,
                                SourceFormat(str(path), (size[0], size[1]), self.manifest.action_convention)])
        return arrays

    def __iter__(self) -> Iterator[Episode]:
        return (self.read(entry) for entry in self.entries)

    def completed(self) -> set[EpisodeKey]:
        return {entry.key for entry in self.entries}


def open_datasets(paths: Sequence[str | Path]) -> list[Dataset]:
    """Open several datasets to use together, refusing different image sizes or action conventions (the error names
    both manifests and both values)."""
    datasets = [Dataset.open(path) for path in paths]
    require_compatible([dataset.source_format for dataset in datasets])
    return datasets
