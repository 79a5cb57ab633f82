"""Everything an evaluation found: the settings, the pilots, every episode's record, the summary per suite and pilot
(with attention on target when measured), the stress sweeps' curves and the groups of training seeds. `EvalResults`
round-trips exactly through `to_dict`/`from_dict` (and so through results.json), without needing the pilots'
checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from navigator.config import to_dict
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.groups import Recipe, SeedGroup, build_groups
from navigator.evaluation.seeds import SeedRange, TrainingSeeds
from navigator.evaluation.settings import EvalSettings
from navigator.evaluation.stats import mean_bootstrap, wilson_interval
from navigator.evaluation.sweeps import KINDS, SweepCurve, SweepLine

FORMAT = "liquid-navigator/eval-results"
VERSION = 1


@dataclass(frozen=True)
class PilotInfo:
    """A pilot as evaluated: its spec, the sha256 of its checkpoint, the seeds of its training data and its training
    recipe (each None for the expert; the recipe also for a checkpoint that records none)."""

    spec: str
    checkpoint_sha256: str | None
    training_seeds: TrainingSeeds | None
    recipe: Recipe | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"training_seeds": None if self.training_seeds is None else {
            "ranges": [asdict(r) for r in self.training_seeds.ranges], "complete": self.training_seeds.complete}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PilotInfo:
        seeds, recipe = data["training_seeds"], data.get("recipe")  # results written before recipes: None
        return cls(data["spec"], data["checkpoint_sha256"], None if seeds is None else TrainingSeeds(
            tuple(SeedRange(**r) for r in seeds["ranges"]), seeds["complete"]),
            None if recipe is None else Recipe(**recipe))

    def identity(self) -> dict[str, Any]:
        """What makes it the same pilot when an evaluation is resumed: its spec and its checkpoint's bytes."""
        return {"spec": self.spec, "checkpoint_sha256": self.checkpoint_sha256}


@dataclass(frozen=True)
class AttentionSummary:
    """One policy pilot's attention on target in one suite: `episodes` of them had a figure (the target in view at
    a measured step); `mean` is the mean of their figures, `interval` its 95% percentile bootstrap interval over
    those episodes (`stats.mean_bootstrap`; None over one episode), `target_share` the mean share of the image the
    target covered in them (the figure of a saliency spread evenly: a pilot that flies closer sees a bigger target);
    all None without any."""

    episodes: int
    mean: float | None
    interval: tuple[float, float] | None
    target_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"interval": None if self.interval is None else list(self.interval)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttentionSummary:
        return cls(**{**data, "interval": None if data["interval"] is None else tuple(data["interval"])})


@dataclass(frozen=True)
class SuiteSummary:
    """One pilot in one suite. Rates are fractions of `episodes`; the interval is Wilson's 95% score interval of the
    success rate; mean time to target (s, the episode's duration, which includes the task's hold at the target) and
    path efficiency are over successful episodes, None without any. Path efficiency (fly-to-target only) is the
    straight start-to-target distance over the distance covered towards it: the path flown plus what was left at
    the end (under 1 m on success), so that stopping short of the target does not push it above 1; it is at most 1
    by the triangle inequality, and 1 for a straight flight."""

    suite: str
    pilot: str
    episodes: int
    successes: int
    success_rate: float
    success_interval: tuple[float, float]
    mean_time_to_target: float | None
    mean_path_efficiency: float | None
    collision_rate: float
    endings: dict[str, int]
    attention: AttentionSummary | None = None  # None: not measured (no --attention, or a pilot without saliency)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"success_interval": list(self.success_interval),
                               "attention": None if self.attention is None else self.attention.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteSummary:
        attention = data.get("attention")  # absent from results written before attention was measured
        return cls(**{**data, "success_interval": tuple(data["success_interval"]),
                      "attention": None if attention is None else AttentionSummary.from_dict(attention)})


@dataclass(frozen=True)
class EvalResults:
    settings: EvalSettings
    pilots: tuple[PilotInfo, ...]
    episodes: tuple[EpisodeRecord, ...]  # in EvalSettings.keys() order: suite, pilot, seed
    summaries: tuple[SuiteSummary, ...]  # suite-major, in the order of the settings' flown suites
    sweeps: tuple[SweepCurve, ...] = ()  # one per sweep kind, in the settings' order
    groups: tuple[SeedGroup, ...] = ()  # pilots of one recipe from several training seeds

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "settings": to_dict(self.settings),
                "pilots": [p.to_dict() for p in self.pilots], "summaries": [s.to_dict() for s in self.summaries],
                "sweeps": [c.to_dict() for c in self.sweeps], "groups": [g.to_dict() for g in self.groups],
                "episodes": [e.to_dict() for e in self.episodes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResults:
        """Results from results.json's document; its checkpoint pilots need not exist any more. ValueError (a
        ConfigError for bad settings) when it is not results of this format and version."""
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not {FORMAT} version {VERSION} results")
        return cls(EvalSettings.recorded(data["settings"]),
                   tuple(PilotInfo.from_dict(p) for p in data["pilots"]),
                   tuple(EpisodeRecord.from_dict(e) for e in data["episodes"]),
                   tuple(SuiteSummary.from_dict(s) for s in data["summaries"]),
                   tuple(SweepCurve.from_dict(c) for c in data.get("sweeps", [])),  # absent from older results
                   tuple(SeedGroup.from_dict(g) for g in data.get("groups", [])))

    def summary(self, suite: str, pilot: str) -> SuiteSummary:
        return next(s for s in self.summaries if (s.suite, s.pilot) == (suite, pilot))


def summarize(suite: str, pilot: str, records: list[EpisodeRecord], task: str) -> SuiteSummary:
    """The summary of one pilot's `records` in one suite."""
    successes = [r for r in records if r.success]
    endings: dict[str, int] = {}
    for record in records:
        endings[record.ending] = endings.get(record.ending, 0) + 1
    low, high = wilson_interval(len(successes), len(records))
    efficiencies = [r.straight_distance / covered for r in successes
                    if (covered := r.path_length + (r.final_distance or 0.0)) > 0]
    return SuiteSummary(
        suite=suite, pilot=pilot, episodes=len(records), successes=len(successes),
        success_rate=_round(len(successes) / len(records)), success_interval=(_round(low), _round(high)),
        mean_time_to_target=_mean([r.time for r in successes]),
        mean_path_efficiency=_mean(efficiencies) if task == "fly-to-target" else None,
        collision_rate=_round(endings.get("collision", 0) / len(records)), endings=dict(sorted(endings.items())),
        attention=summarize_attention(records),
    )


def summarize_attention(records: list[EpisodeRecord]) -> AttentionSummary | None:
    """The attention on target of one pilot's `records` in one suite; None when it was not measured."""
    if any(r.attention_steps is None for r in records):
        return None
    figures = [r.attention for r in records if r.attention is not None]
    if not figures:
        return AttentionSummary(0, None, None, None)
    mean, low, high = mean_bootstrap(figures)
    # One episode's figure has no spread to resample: its bootstrap interval would be the figure itself, a certainty
    # one flight cannot give.
    return AttentionSummary(len(figures), _round(mean), (_round(low), _round(high)) if len(figures) > 1 else None,
                            _mean([r.target_share for r in records if r.attention is not None]))


def build_results(settings: EvalSettings, pilots: tuple[PilotInfo, ...],
                  records: list[EpisodeRecord]) -> EvalResults:
    """Results from every episode's record (any order): sorted into report order and summarised."""
    order = {(suite, pilot): (i, j) for i, suite in enumerate(settings.flown_suites)
             for j, pilot in enumerate(settings.pilots)}
    records = sorted(records, key=lambda r: (order[r.suite, r.pilot], r.seed))
    summaries = tuple(summarize(suite, pilot, [r for r in records if (r.suite, r.pilot) == (suite, pilot)],
                                settings.task)
                      for suite in settings.flown_suites for pilot in settings.pilots)
    by_key = {(s.suite, s.pilot): s for s in summaries}
    sweeps = []
    for kind in settings.sweeps:
        points = [point for point in settings.sweep_points if point.kind == kind]
        lines = tuple(SweepLine(pilot, tuple(by_key[p.suite, pilot].successes for p in points),
                                tuple(by_key[p.suite, pilot].success_rate for p in points),
                                tuple(by_key[p.suite, pilot].success_interval for p in points))
                      for pilot in settings.pilots)
        sweeps.append(SweepCurve(kind, settings.sweep_base, KINDS[kind].unit, tuple(p.level for p in points),
                                 tuple(p.suite for p in points), settings.episodes, lines))
    groups = build_groups(pilots, settings.flown_suites, records, settings.seeds)
    return EvalResults(settings, pilots, tuple(records), summaries, tuple(sweeps), groups)


def _mean(values: list[float]) -> float | None:
    return _round(sum(values) / len(values)) if values else None


def _round(value: float) -> float:
    return round(value, 6)
