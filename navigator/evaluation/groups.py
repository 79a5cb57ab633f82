"""Across training seeds of one model: checkpoints trained by the same recipe apart from its seed (and where it was
written, and how many threads and how much cache it used) form a group, whose success per suite is the mean over its
seeds with a hierarchical bootstrap interval (`stats.seed_bootstrap`): how much of a difference between models is
the luck of a training seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from navigator.evaluation.stats import seed_bootstrap

if TYPE_CHECKING:
    from navigator.evaluation.episodes import EpisodeRecord
    from navigator.evaluation.results import PilotInfo

# Settings of a training recipe that do not make another model: the seed (what the group spans), where the run was
# written, and resources.
NOT_RECIPE = ("seed", "out", "threads", "cache_mb")


@dataclass(frozen=True)
class Recipe:
    """What a checkpoint says of its training: the model's name, the training seed and the sha256 of the rest of the
    recipe (its `train_config` less NOT_RECIPE, as sorted JSON)."""

    model: str
    seed: int
    sha256: str


def checkpoint_recipe(metadata: dict[str, Any]) -> Recipe | None:
    """The recipe of a checkpoint from its metadata; None when the checkpoint does not record one."""
    config = metadata.get("train_config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), str) or not isinstance(
            config.get("seed"), int):
        return None
    rest = {name: value for name, value in config.items() if name not in NOT_RECIPE}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()
    return Recipe(config["model"], config["seed"], digest)


@dataclass(frozen=True)
class GroupSuite:
    """A group in one suite: mean success over its seeds and worlds, and the 95% hierarchical bootstrap interval."""

    suite: str
    success_rate: float
    success_interval: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "success_rate": self.success_rate,
                "success_interval": list(self.success_interval)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupSuite:
        return cls(data["suite"], data["success_rate"], tuple(data["success_interval"]))


@dataclass(frozen=True)
class SeedGroup:
    """Pilots of one model and recipe, each from another training seed (`training_seeds`, in `pilots`' order)."""

    label: str  # the model's name, with " #2", " #3", ... where several groups share a model
    model: str
    pilots: tuple[str, ...]
    training_seeds: tuple[int, ...]
    suites: tuple[GroupSuite, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "pilots": list(self.pilots),
                "training_seeds": list(self.training_seeds), "suites": [s.to_dict() for s in self.suites]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeedGroup:
        return cls(data["label"], data["model"], tuple(data["pilots"]), tuple(data["training_seeds"]),
                   tuple(GroupSuite.from_dict(s) for s in data["suites"]))


def find_groups(pilots: Sequence[PilotInfo]) -> list[tuple[str, list[PilotInfo]]]:
    """(label, members) for every recipe that at least two pilots of distinct training seeds share, in the order
    their first pilots come. A second checkpoint of a seed already in the group (another epoch of the same run)
    stays out of it: the group's members must be independent trainings."""
    members: dict[str, list[PilotInfo]] = {}
    for pilot in pilots:
        if pilot.recipe is None:
            continue
        group = members.setdefault(pilot.recipe.sha256, [])
        if pilot.recipe.seed not in {member.recipe.seed for member in group}:
            group.append(pilot)
    groups = [group for group in members.values() if len(group) >= 2]
    labels = []
    for group in groups:
        same_model = [g for g in groups if g[0].recipe.model == group[0].recipe.model]
        labels.append(group[0].recipe.model if len(same_model) == 1 else
                      f"{group[0].recipe.model} #{same_model.index(group) + 1}")
    return list(zip(labels, groups))


def build_groups(pilots: Sequence[PilotInfo], suites: Sequence[str], records: Sequence[EpisodeRecord],
                 seeds: Sequence[int]) -> tuple[SeedGroup, ...]:
    """Every group's success per suite over the world `seeds` (each pilot's record of each is in `records`)."""
    outcome = {(r.suite, r.pilot, r.seed): r.success for r in records}
    groups = []
    for label, group in find_groups(pilots):
        rows = []
        for suite in suites:
            mean, low, high = seed_bootstrap([[outcome[suite, p.spec, seed] for seed in seeds] for p in group])
            rows.append(GroupSuite(suite, round(mean, 6), (round(low, 6), round(high, 6))))
        groups.append(SeedGroup(label, group[0].recipe.model, tuple(p.spec for p in group),
                                tuple(p.recipe.seed for p in group), tuple(rows)))
    return tuple(groups)
