"""The world seeds a checkpoint was trained on, read from its metadata, so that an evaluation never scores a policy on
worlds it has seen.

`navigator train` records in each checkpoint the seeds of every episode of every dataset it trained on, DAgger
rounds included (`metadata["training_seeds"]`: runs of consecutive seeds per task). Checkpoints written before that
carry only their recipe (`metadata["train_config"]`): the `collect` section (demonstration seeds `seed .. seed +
episodes - 1` for each part) and the `dagger` section (round r flies seeds `1_000_000 * r ..` for `dagger.episodes`
episodes); a run trained on datasets collected separately then does not say its demonstrations' seeds, `complete`
is False and only what is known is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.config import MAX_SEED
from navigator.errors import UserError
from navigator.training.config import DAGGER_SEED_STRIDE


@dataclass(frozen=True)
class SeedRange:
    """Seeds first .. first + count - 1 of `task` (None: any task) were flown for training, by `source`."""

    task: str | None
    first: int
    count: int
    source: str  # "demonstrations" or "dagger round R"

    def overlap(self, task: str, seeds: range) -> range:
        if self.task is not None and self.task != task:
            return range(0)
        return range(max(self.first, seeds.start), min(self.first + self.count, seeds.stop))


@dataclass(frozen=True)
class TrainingSeeds:
    ranges: tuple[SeedRange, ...]
    complete: bool  # False: some training data's seeds are not recorded in the checkpoint


def recorded_training_fields(prefix: str) -> tuple[tuple[str, str], ...]:
    """The fields (navigator.json_fields) of a pilot's record of its training under `prefix` ("source" in a
    bundle's policy.json, "pilots[]" in eval.json): its training seeds (TrainingSeeds as a mapping) and its recipe
    (groups.Recipe as a mapping), each may be null."""
    seeds, recipe = f"{prefix}.training_seeds", f"{prefix}.recipe"
    return ((seeds, "optional mapping or null"), (f"{seeds}.ranges", "list"), (f"{seeds}.ranges[]", "mapping"),
            (f"{seeds}.ranges[].task", "text or null"), (f"{seeds}.ranges[].first", "non-negative integer"),
            (f"{seeds}.ranges[].count", "non-negative integer"), (f"{seeds}.ranges[].source", "text"),
            (f"{seeds}.complete", "bool"), (recipe, "optional mapping or null"), (f"{recipe}.model", "text"),
            (f"{recipe}.seed", "integer"), (f"{recipe}.sha256", "text"))


def _described(source: str) -> str:
    """A recorded training data folder as messages name it: a DAgger round's roll-outs by their round, and the
    folder only where it means something here (a relative path, or one that exists): a shipped policy records the
    folders of the machine it was trained on."""
    path = Path(source)
    round_number = re.fullmatch(r"round-(\d+)", path.name) if path.parent.name == "dagger" else None
    what = f"DAgger round {round_number.group(1)}'s roll-outs" if round_number else "data"
    if path.is_absolute() and not path.exists():
        return f"{what}, recorded on the machine it was trained on"
    return f"{what} in {source}"


def training_seeds(metadata: dict[str, Any]) -> TrainingSeeds:
    """What a checkpoint's metadata says about the seeds its training data used."""
    recorded = metadata.get("training_seeds")
    if isinstance(recorded, list):
        return TrainingSeeds(tuple(SeedRange(r["task"], r["first"], r["count"], _described(r["source"]))
                                   for r in recorded), complete=True)
    recipe = metadata.get("train_config")
    if not isinstance(recipe, dict):
        return TrainingSeeds((), complete=False)
    ranges: list[SeedRange] = []
    collect = recipe.get("collect")
    complete = isinstance(collect, dict)
    if complete:
        ranges += [SeedRange(part["task"], collect["seed"], part["episodes"], "demonstrations")
                   for part in collect["parts"]]
    dagger = recipe.get("dagger") or {}
    ranges += [SeedRange(None, DAGGER_SEED_STRIDE * r, dagger["episodes"], f"dagger round {r}")
               for r in range(1, dagger.get("rounds", 0) + 1)]
    return TrainingSeeds(tuple(ranges), complete)


def training_overlap(who: str, seeds: TrainingSeeds, task: str, flown: range, seed_option: str = "--seed",
                     flights: str = "this evaluation") -> str | None:
    """How seeds `flown` overlap those training flew, in words (`who`: "pilot P", the subject; `flights`: what would
    fly them, "this explanation"), naming the overlap and a free starting seed (to give as `seed_option`); None
    when they do not."""
    for known in seeds.ranges:
        shared = known.overlap(task, flown)
        if shared:
            free = _free_start(seeds, task, flown)
            trained = range(known.first, known.first + known.count)
            return (f"{who} was trained on {task} {seed_span(trained)} ({known.source}), and {flights} would fly "
                    f"{seed_span(shared)} of them: fly worlds it has not seen, e.g. {seed_option} {free}")
    return None


def _free_start(seeds: TrainingSeeds, task: str, flown: range) -> int:
    """A first seed from which as many episodes as `flown` meet none of the training seeds of `task` and stay within
    [0, MAX_SEED]: the first such seed after `flown`'s start, else the last before it."""
    starts = sorted({0, *(edge for r in seeds.ranges for edge in (r.first + r.count, r.first - len(flown)))})
    valid = [start for start in starts if 0 <= start <= MAX_SEED - len(flown) + 1
             and not any(r.overlap(task, range(start, start + len(flown))) for r in seeds.ranges)]
    after = [start for start in valid if start >= flown.start]
    return after[0] if after else valid[-1] if valid else flown.stop


def check_no_overlap(who: str, seeds: TrainingSeeds, task: str, evaluated: range, seed_option: str = "--seed",
                     flights: str = "this evaluation") -> None:
    """Refuse evaluation seeds that training flew: a UserError saying `training_overlap`."""
    overlap = training_overlap(who, seeds, task, evaluated, seed_option, flights)
    if overlap is not None:
        raise UserError(overlap)


def seed_span(seeds: range, kind: str = "") -> str:
    """`seeds` for a message: "seed 7" for one, "seeds 7-9" for more, after `kind` ("world seeds 7-9")."""
    named = f"{kind} " if kind else ""
    return f"{named}seed {seeds.start}" if len(seeds) == 1 else f"{named}seeds {seeds.start}-{seeds.stop - 1}"
