"""Train/validation split by episode, never by frame: windows of one flight are strongly correlated, so a frame-level
split would leak validation data into training.

Each episode is ranked by a hash of (split seed, task, preset, episode seed) and the lowest-ranked fraction goes to
validation. The result depends only on the seed and the set of keys, not on manifest order or on which datasets are
opened together, and adding episodes moves few existing ones across the split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from navigator.dataset.episode import EpisodeKey


def _rank(seed: int, key: EpisodeKey) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key.task}\x00{key.preset}\x00{key.seed}".encode()).digest()


def split_keys(keys: Sequence[EpisodeKey], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices into `keys` for training and for validation (each sorted). Training keeps at least one episode; with
    val_fraction > 0 and at least two distinct keys, validation gets at least one (with one, none: it would leave
    nothing to train on). Equal keys (the same episode recorded in two datasets) always land on the same side."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    distinct = sorted(set(keys), key=lambda k: _rank(seed, k))
    count = math.floor(val_fraction * len(distinct) + 0.5)
    if val_fraction > 0 and len(distinct) >= 2:
        count = max(count, 1)
    count = min(count, max(len(distinct) - 1, 0))
    validation = set(distinct[:count])
    train = [i for i, key in enumerate(keys) if key not in validation]
    val = [i for i, key in enumerate(keys) if key in validation]
    return train, val
