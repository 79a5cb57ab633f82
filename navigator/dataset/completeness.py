"""Whether a dataset holds every episode its recipe asks for.

A collection that was stopped leaves a sound but partial dataset: every listed episode is fine, some are simply
missing. `navigator collect` records its configuration in the manifest's `recipe`: `parts[i]` has `task`, `preset`
and `episodes`, and episode j of a part flies seed `seed + j` (navigator/collect.py, `CollectConfig.keys`). An
episode counts as present when it is stored or dropped (flown, failed and not kept). A recipe without parts (one
not written by `navigator collect`) states no expectation, and such a dataset counts as complete.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from navigator.dataset.episode import EpisodeKey
from navigator.dataset.manifest import Manifest, fits


@dataclass(frozen=True)
class Completeness:
    """Which of the episodes a dataset's recipe asks for it holds (stored or dropped)."""

    expected: tuple[EpisodeKey, ...] | None  # None: the recipe states no expectation
    present: frozenset[EpisodeKey]  # stored and dropped

    @property
    def missing(self) -> list[EpisodeKey]:
        return [key for key in self.expected or () if key not in self.present]

    @property
    def unexpected(self) -> list[EpisodeKey]:
        """Episodes held (stored or dropped) that the recipe does not ask for: a recipe edited after collection."""
        wanted = set(self.expected or ())
        return [] if self.expected is None else sorted(key for key in self.present if key not in wanted)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def done(self) -> int:
        """Episodes of the recipe already flown (stored or dropped)."""
        return len(self.expected) - len(self.missing) if self.expected is not None else len(self.present)

    def message(self, dataset: str | Path) -> str:
        """The warning for an incomplete dataset, naming what is missing and how to finish it."""
        by_part = groupby(self.missing, key=lambda key: (key.task, key.preset))
        missing = "; ".join(f"{task}/{preset} {_seed_runs([key.seed for key in keys])}"
                            for (task, preset), keys in by_part)
        return (f"incomplete: {self.done} of {len(self.expected or ())} episodes flown, the collection stopped early "
                f"(missing {missing}); finish it with `navigator collect --out {shlex.quote(str(dataset))} --resume` "
                f"and the settings it was started with (the manifest's recipe)")


def _seed_runs(seeds: list[int]) -> str:
    """`seeds 13-19, 25` for sorted seeds: a long stretch of missing episodes stays one short phrase."""
    runs = []
    for _, run in groupby(enumerate(seeds), key=lambda pair: pair[1] - pair[0]):
        values = [seed for _, seed in run]
        runs.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(runs)


def _expected_keys(recipe: dict[str, Any]) -> tuple[EpisodeKey, ...] | None:
    parts, seed = recipe.get("parts"), recipe.get("seed", 0)
    if not isinstance(parts, list) or not parts or not fits(seed, "int"):
        return None
    keys = []
    for part in parts:
        if not (isinstance(part, dict) and fits(part.get("task"), "str") and fits(part.get("preset"), "str")
                and fits(part.get("episodes"), "int")):
            return None  # not a recipe `navigator collect` wrote: it says nothing reliable about what to expect
        keys += [EpisodeKey(part["task"], part["preset"], seed + i) for i in range(part["episodes"])]
    return tuple(keys)


def completeness(manifest: Manifest) -> Completeness:
    """How complete the dataset of `manifest` is compared with its recipe. `data check` warns and `data info` says
    "13 of 20 episodes (incomplete)" when `complete` is False; the training side can warn the same way with
    `message(dataset_path)`."""
    present = frozenset(entry.key for entry in (*manifest.episodes, *manifest.dropped))
    return Completeness(_expected_keys(manifest.recipe), present)
