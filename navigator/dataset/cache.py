"""A least-recently-used cache of decoded episodes, bounded by bytes rather than by count (episodes differ in length,
and the budget that matters is RAM)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

Arrays = dict[str, np.ndarray]


class EpisodeCache:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, tuple[Arrays, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, load: Callable[[], Arrays]) -> Arrays:
        """The cached arrays for `key`, or `load()`'s, kept if they fit (evicting the least recently used)."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        arrays = load()
        size = sum(a.nbytes for a in arrays.values())
        if size <= self.max_bytes:
            while self.bytes + size > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self.bytes -= evicted
            self._items[key] = (arrays, size)
            self.bytes += size
        return arrays
