"""The demonstration dataset: the episode file format, writing (parallel-safe, resumable), reading, checking,
previews, robomimic export and the windowed training loader. Specified in datasets/README.md.

Imports only numpy and OpenCV (h5py inside the export function alone), so it works wherever the CLI does."""

from navigator.dataset.check import CheckReport, Problem, check_dataset
from navigator.dataset.compat import SourceFormat, require_compatible
from navigator.dataset.completeness import Completeness, completeness
from navigator.dataset.episode import Episode, EpisodeKey
from navigator.dataset.episode_file import file_sha256, load_arrays, load_episode, save_episode
from navigator.dataset.errors import (ChecksumError, CorruptEpisodeError, DatasetError, DatasetNotFoundError,
                                      IncompatibleDatasetsError, InvalidEpisodeError, ManifestError,
                                      SchemaVersionError)
from navigator.dataset.loader import Batch, WindowLoader, WindowRef
from navigator.dataset.manifest import DroppedEntry, EpisodeEntry, Manifest, read_manifest
from navigator.dataset.normalization import NormStats, compute_stats
from navigator.dataset.reader import Dataset, open_datasets
from navigator.dataset.schema import ACTION_CONVENTION, ENDINGS, FORMAT_NAME, SCHEMA_VERSION
from navigator.dataset.split import split_keys
from navigator.dataset.windows import window_starts
from navigator.dataset.writer import DatasetWriter, Recovery, Verification, write_episode

__all__ = [
    "ACTION_CONVENTION", "ENDINGS", "FORMAT_NAME", "SCHEMA_VERSION", "Batch", "CheckReport", "ChecksumError",
    "Completeness", "CorruptEpisodeError", "Dataset", "DatasetError", "DatasetNotFoundError", "DatasetWriter",
    "DroppedEntry", "Episode", "EpisodeEntry", "EpisodeKey", "IncompatibleDatasetsError", "InvalidEpisodeError",
    "SourceFormat", "Manifest", "ManifestError", "NormStats", "Problem", "Recovery", "SchemaVersionError",
    "Verification", "WindowLoader", "WindowRef", "check_dataset", "completeness", "compute_stats", "file_sha256",
    "load_arrays", "load_episode", "open_datasets", "read_manifest", "require_compatible", "save_episode",
    "split_keys", "window_starts", "write_episode",
]
