"""Success against start distance: a suite's episodes in bins of their straight start-to-target distance, with a
Wilson interval per bin. The bins are the same for every pilot (they fly the same worlds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.stats import wilson_interval

EPISODES_PER_BIN = 5  # aimed at: fewer makes every interval uninformative
MAX_BINS = 6


@dataclass(frozen=True)
class DistanceBin:
    """Episodes starting `low` to `high` metres from their target (`high` included in the last bin only)."""

    low: float
    high: float
    episodes: int
    successes: int
    success_interval: tuple[float, float] | None  # Wilson 95%; None for an empty bin

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.episodes if self.episodes else None


def bin_edges(distances: Sequence[float], episodes: int) -> list[float]:
    """Equal-width bin edges (metres) from the whole metre below the shortest distance to the one above the longest:
    about EPISODES_PER_BIN of `episodes` (per pilot) per bin, 1 to MAX_BINS bins. ValueError without distances."""
    if not distances:
        raise ValueError("need at least one distance to bin")
    low, high = math.floor(min(distances)), math.ceil(max(distances))
    high = max(high, low + 1)
    count = max(1, min(MAX_BINS, episodes // EPISODES_PER_BIN))
    return [low + (high - low) * i / count for i in range(count + 1)]


def distance_bins(records: Sequence[EpisodeRecord], edges: Sequence[float]) -> list[DistanceBin]:
    """`records` (one pilot's, one suite's) counted into the bins between consecutive `edges`."""
    bins = []
    for i, (low, high) in enumerate(zip(edges, edges[1:])):
        last = i == len(edges) - 2
        inside = [r for r in records if low <= r.straight_distance < high or (last and r.straight_distance == high)]
        successes = sum(r.success for r in inside)
        bins.append(DistanceBin(low, high, len(inside), successes,
                                wilson_interval(successes, len(inside)) if inside else None))
    return bins
