"""What a learning curve is, as a YAML-loadable config (launch/adapt/*.yaml): the starting policy, the new sceneries,
the numbers of new demonstrations, the strategies, the training seeds, the adaptation's training settings (DAgger
rounds included: `train: {dagger: {rounds, episodes, epochs}}`) and the
evaluation (navigator eval's settings: its `suites` are the old suites, on which forgetting is measured).

Every (scenery, demonstrations, strategy, seed) is one adaptation: the first `demonstrations` episodes of one
dataset collected per scenery (so a larger set contains every smaller one), flown from world seed `collect_seed` on,
with the evaluation's airframe, camera and time limit, by the expert with DART noise `dart_noise`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from navigator.adapt.config import (
    SHIPPED_OLD_DATA,
    AdaptConfig,
    canonical_strategy,
    unread_settings,
)
from navigator.comparison.config import _check_unique
from navigator.config import (
    MAX_SEED,
    SettingError,
    check_seed_span,
    check_settings,
    field_default,
    from_dict,
    setting,
    setting_check,
    settings_of,
    unread_problems,
)
from navigator.evaluation.settings import EvalSettings
from navigator.scenario import canonical_preset, canonical_task

# The adaptation settings a curve may set in `train:` (the others are set per run, or come from the policy).
TRAIN_SETTINGS = ("epochs", "lr", "batch_size", "patience", "replay_fraction", "anchor", "weight_mix", "dagger",
                  "threads", "cache_mb")
# Of those, the ones that cannot change a result: they may differ when a curve is resumed.
RESOURCES = ("threads", "cache_mb")
CURVE_RECORD = "adapt-curve.json"  # OUT/adapt-curve.json: the curve's settings, as --resume reads them back
CURVE_RECORD_FORMAT, CURVE_RECORD_VERSION = "liquid-navigator/adapt-curve-run", 2


@dataclass(frozen=True)
class CurveConfig:
    """A learning curve; SettingError names the first bad setting."""

    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"workers": "--workers", "resume": "--resume"}

    pilot: str = "pretrained"  # the policy every run starts from: pretrained (of `evaluation.task`) or a .pt
    sceneries: tuple[str, ...] = ("night", "pillars", "wind")  # new surroundings (presets), one dataset each
    demonstrations: tuple[int, ...] = (5, 10, 20, 50)  # new episodes per adaptation: prefixes of the dataset
    strategies: tuple[str, ...] = ("finetune", "replay", "freeze-cnn", "l2-anchor")
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds of each adaptation
    replay: tuple[str, ...] = ()  # the old data the replay strategy replays
    collect_seed: int = setting(20_000, ge=0, le=MAX_SEED)  # world seed of each scenery's first demonstration
    dart_noise: float = setting(0.1, ge=0.0, le=1.0)  # the demonstrations' recovery noise, as navigator collect's
    train: dict[str, Any] = settings_of(lambda: AdaptConfig, TRAIN_SETTINGS)  # AdaptConfig settings of TRAIN_SETTINGS
    evaluation: EvalSettings = field(default_factory=lambda: EvalSettings(suites=("summer",)))  # suites: the old
    out: str = "reports/adapt"

    def __post_init__(self) -> None:
        check_settings(self)
        with setting_check("sceneries"):
            object.__setattr__(self, "sceneries", tuple(canonical_preset(s) for s in self.sceneries))
        with setting_check("strategies"):
            object.__setattr__(self, "strategies", tuple(canonical_strategy(s) for s in self.strategies))
        for name in ("sceneries", "demonstrations", "strategies", "seeds"):
            _check_unique(name, getattr(self, name))
        if len(self.seeds) < 2:  # the interval spans training seeds: one seed cannot show their spread
            raise SettingError("seeds", f"must list at least two training seeds, got {list(self.seeds)}")
        for seed in self.seeds:
            if not 0 <= seed <= MAX_SEED:
                raise SettingError("seeds", f"must be in [0, {MAX_SEED}], got {seed}")
        if any(count < 1 for count in self.demonstrations) or list(self.demonstrations) != sorted(self.demonstrations):
            raise SettingError("demonstrations", f"must be positive counts in increasing order, got "
                                                 f"{list(self.demonstrations)}")
        check_seed_span(self.collect_seed, max(self.demonstrations), "collect_seed", "demonstrations")
        old = set(self.evaluation.suites) & set(self.sceneries)
        if old:
            raise SettingError("sceneries", f"{', '.join(sorted(old))} is also an old suite (evaluation.suites): "
                                            f"a scenery is either new or old")
        if self.evaluation.pilots != field_default(EvalSettings, "pilots"):
            raise SettingError("evaluation.pilots", "must not be given: the curve's pilots are its starting policy "
                                                    "and its adaptations")
        if self.evaluation.sweeps:
            raise SettingError("evaluation.sweeps", "must not be given: the curve evaluates named suites only")
        unknown = sorted(set(self.train) - set(TRAIN_SETTINGS))
        flags = [name for name in unknown if name in self.COMMAND_LINE_ONLY]
        if flags:
            raise SettingError("train", f"sets {', '.join(flags)}, which the command takes: give "
                                        f"{', '.join(self.COMMAND_LINE_ONLY[name] for name in flags)} on the command "
                                        f"line")
        settings = {field.name for field in dataclasses.fields(AdaptConfig)}
        typed = [name for name in unknown if name not in settings]
        if typed:
            which = "is not a setting" if len(typed) == 1 else "are not settings"
            raise SettingError("train", f"sets {', '.join(typed)}, which {which}; it may set "
                                        f"{', '.join(TRAIN_SETTINGS)}")
        if "device" in unknown:
            raise SettingError("train", f"sets device, which a curve does not: its adaptations train on the CPU "
                                        f"(navigator adapt --device trains one elsewhere); it may set "
                                        f"{', '.join(TRAIN_SETTINGS)}")
        if unknown:
            raise SettingError("train", f"sets {', '.join(unknown)}, which a curve sets per run or takes from the "
                                        f"policy; it may set {', '.join(TRAIN_SETTINGS)}")
        if "replay" in self.strategies and not self.replay:
            raise SettingError("replay", f"must give the old data (dataset folders) for the replay strategy; "
                                         f"{SHIPPED_OLD_DATA}")
        # A strategy-specific setting no strategy of the curve reads would be ignored silently: the top-level
        # replay, and train's replay_fraction and anchor (train applies to every strategy: only refused when none
        # of them reads it).
        unread = unread_settings({*self.train, *(("replay",) if self.replay else ())}, self.strategies)
        if unread:
            name, owner = unread[0]
            raise SettingError(name if name == "replay" else f"train.{name}",
                               f"is read by the {owner} strategy only, which strategies does not list: drop it, or "
                               f"add {owner} to strategies")
        adaptation = self.adaptation(self.sceneries[0], self.demonstrations[0], self.strategies[0],
                                     self.seeds[0])  # checks train
        for unread in unread_problems(adaptation, self.train, "train"):  # dagger: {episodes: 3} without rounds
            raise SettingError(unread.key, unread.problem, unread.mentions)
        if not self.out:
            raise SettingError("out", "must name a folder, got ''")

    @property
    def task(self) -> str:
        return canonical_task(self.evaluation.task)

    @property
    def new_seeds(self) -> range:
        """The world seeds of each scenery's demonstrations."""
        return range(self.collect_seed, self.collect_seed + max(self.demonstrations))

    def runs(self) -> list[tuple[str, int, str, int]]:
        """(scenery, demonstrations, strategy, seed) of every adaptation, in the order they run."""
        return [(scenery, count, strategy, seed) for scenery in self.sceneries for count in self.demonstrations
                for strategy in self.strategies for seed in self.seeds]

    def adaptation(self, scenery: str, count: int, strategy: str, seed: int, data: str = "DATA",
                   out: str = "OUT") -> AdaptConfig:
        """One run's settings (its data and out given by the runner). A bad `train:` setting is a SettingError named
        `train.KEY`."""
        settings = {**self.train, "pilot": self.pilot, "task": self.task, "data": [data], "strategy": strategy,
                    "replay": list(self.replay) if strategy == "replay" else [], "seed": seed, "out": out}
        try:
            return from_dict(AdaptConfig, settings)
        except ValueError as error:  # a ConfigError naming the setting: the train: section's, as the user wrote it
            key = getattr(error, "key", None)
            problem = getattr(error, "problem", None) or str(error)
            known = str(key).split(".")[0] in self.train  # dagger.rounds: a key of train's dagger mapping
            raise SettingError(f"train.{key}" if known else str(key or "train"), problem) from None


def curve_settings(config: CurveConfig, start_sha256: str) -> dict[str, Any]:
    """What the curve's record holds and resuming compares: everything but where it is written and the resources,
    and the starting checkpoint's sha256 (a retrained file at the same path is another curve)."""
    from navigator.config import to_dict
    from navigator.resume import without

    settings = without(to_dict(config), ("out", *(f"train.{name}" for name in RESOURCES)))
    return {**settings, "start_sha256": start_sha256}
