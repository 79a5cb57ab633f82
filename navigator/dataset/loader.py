"""Training windows as numpy batches, for the torch training code to wrap.

Episodes are split into training and validation by episode (split.py); windows are cut as windows.py says; batches
hold images (B, L, H, W, 3) uint8, state (B, L, 7), action (B, L, 4) expert labels, dt (B, L) and mask (B, L) bool,
False on the padding after the end of an episode shorter than the window. Shuffling is a permutation drawn from
(seed, epoch), so a run is reproducible and each epoch differs. Decoded episodes can be kept in an LRU cache bounded
in bytes: with a budget that holds the whole training split, every episode is decoded once per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from navigator.dataset.cache import Arrays, EpisodeCache
from navigator.dataset.compat import require_compatible
from navigator.dataset.manifest import EpisodeEntry
from navigator.dataset.normalization import NormStats, compute_stats
from navigator.dataset.reader import Dataset
from navigator.dataset.split import split_keys
from navigator.dataset.windows import window_starts

Split = Literal["train", "val"]
_TRAINING_ARRAYS = ("images", "state", "action_label", "dt")


@dataclass(frozen=True)
class Batch:
    images: np.ndarray  # (B, L, H, W, 3) uint8
    state: np.ndarray  # (B, L, 7) float32
    action: np.ndarray  # (B, L, 4) float32, the expert's labels
    dt: np.ndarray  # (B, L) float32
    mask: np.ndarray  # (B, L) bool: False on padding

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class EpisodeRef:
    dataset: int  # index into the loader's datasets
    entry: EpisodeEntry


@dataclass(frozen=True)
class WindowRef:
    episode: int  # index into the loader's episodes
    start: int
    length: int  # real frames in the window (< window length only for a short, padded episode)


class WindowLoader:
    def __init__(self, datasets: Dataset | Sequence[Dataset], *, window: int = 32, stride: int = 16,
                 val_fraction: float = 0.1, split_seed: int = 0, cache_bytes: int = 0) -> None:
        self.datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
        if not self.datasets:
            raise ValueError("WindowLoader needs at least one dataset")
        require_compatible([d.source_format for d in self.datasets])
        self.stride = stride
        self.image_size = self.datasets[0].manifest.image_size
        self.episodes = [EpisodeRef(i, entry) for i, d in enumerate(self.datasets) for entry in d.entries]
        # Frames past an episode's end are padding, masked out of the loss and unseen by the causal model before
        # them, so a window longer than every episode trains exactly as one as long as the longest; without the cap
        # batches grow with the window instead of the data (a window of 100,000 frames filled 20 GB and was killed).
        self.window = min(window, max((e.entry.frames for e in self.episodes), default=window))
        train, val = split_keys([e.entry.key for e in self.episodes], val_fraction, split_seed)
        self.split_episodes: dict[Split, list[int]] = {"train": train, "val": val}
        self._windows = {split: [WindowRef(i, start, min(window, self.episodes[i].entry.frames - start))
                                 for i in indices for start in window_starts(self.episodes[i].entry.frames, window,
                                                                             stride)]
                         for split, indices in self.split_episodes.items()}
        self.cache = EpisodeCache(cache_bytes)
        self._stats: NormStats | None = None

    def windows(self, split: Split) -> list[WindowRef]:
        return self._windows[split]

    def frames(self, split: Split) -> int:
        return sum(self.episodes[i].entry.frames for i in self.split_episodes[split])

    def stats(self) -> NormStats:
        """Normalisation statistics over the training split (read without decoding images; computed once)."""
        if self._stats is None:
            refs = [self.episodes[i] for i in self.split_episodes["train"]]
            self._stats = compute_stats(self.datasets[r.dataset].read_arrays(r.entry, ("state", "action_label"))
                                        for r in refs)
        return self._stats

    def _arrays(self, episode: int) -> Arrays:
        ref = self.episodes[episode]
        return self.cache.get((ref.dataset, ref.entry.file),
                              lambda: self.datasets[ref.dataset].read_arrays(ref.entry, _TRAINING_ARRAYS))

    def _batch(self, refs: Sequence[WindowRef]) -> Batch:
        size, length = len(refs), self.window
        height, width = self.image_size
        images = np.zeros((size, length, height, width, 3), dtype=np.uint8)
        state = np.zeros((size, length, 7), dtype=np.float32)
        action = np.zeros((size, length, 4), dtype=np.float32)
        dt = np.zeros((size, length), dtype=np.float32)
        mask = np.zeros((size, length), dtype=bool)
        # Windows of one episode in one batch share a single decode even without a cache.
        decoded: dict[int, Arrays] = {}
        for row, ref in enumerate(refs):
            if ref.episode not in decoded:
                decoded[ref.episode] = self._arrays(ref.episode)
            arrays = decoded[ref.episode]
            span = slice(ref.start, ref.start + ref.length)
            images[row, :ref.length] = arrays["images"][span]
            state[row, :ref.length] = arrays["state"][span]
            action[row, :ref.length] = arrays["action_label"][span]
            dt[row, :ref.length] = arrays["dt"][span]
            mask[row, :ref.length] = True
        return Batch(images, state, action, dt, mask)

    def batches(self, split: Split, batch_size: int, *, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                drop_last: bool = False) -> Iterator[Batch]:
        """One pass over the split's windows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        refs = self._windows[split]
        order = np.random.default_rng([seed, epoch]).permutation(len(refs)) if shuffle else np.arange(len(refs))
        stop = len(refs) - len(refs) % batch_size if drop_last else len(refs)
        for begin in range(0, stop, batch_size):
            yield self._batch([refs[i] for i in order[begin:begin + batch_size]])
