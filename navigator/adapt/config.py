"""What one adaptation is: the user's settings (`AdaptConfig`, what `navigator adapt` reads from flags), and the
training recipe they become (`AdaptTrainConfig`, a TrainConfig that also records how it continues a trained policy:
`Continuation`).

The recipe continues the starting policy's own: its model, image normalisation, windows, augmentation and
regularisation come from the starting checkpoint (its `train_config` and its weights' config), so that adapting
changes only what the user asked for (the data, the strategy, the epochs, the learning rate, the seed). The
continuation is part of the recipe: run.json records it (resuming refuses a changed one, naming it), every checkpoint
carries it in its `train_config` (so an evaluation groups training seeds of one strategy, never two strategies), and
the starting checkpoint is named by its sha256 as well as its path (a retrained file at the same path is another
start).

DAgger rounds (`dagger`, the training pipeline's own) are the adaptation's too: round r flies the current adapted
policy in the scenario of the NEW data (the pipeline reads it from data[0]'s manifest, and an adaptation's data holds
only its new demonstrations: replayed datasets are the strategy's, kept apart in `Continuation.replay`), the expert
labels the flights, and training continues on the new data plus every round's roll-outs, under the same strategy
(replayed batches, the frozen CNN, the anchor to the STARTING weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navigator.config import (
    MAX_SEED,
    SettingError,
    check_settings,
    from_dict,
    setting,
    setting_check,
    to_dict,
)
from navigator.resume import Difference, differences
from navigator.scenario import canonical_task, set_canonical
from navigator.training.config import MAX_EPOCHS, DaggerConfig, TrainConfig, check_device

# name -> what it trains on and what it trains, in the user's words (help texts and messages list them in this order).
STRATEGIES: dict[str, str] = {
    "finetune": "all weights, on the new data only",
    "replay": "all weights, on batches that mix the new data with replayed old data (--replay, --replay-fraction)",
    "freeze-cnn": "only the liquid head, on the new data; the perception CNN keeps its weights",
    "l2-anchor": "all weights, on the new data, with an L2 penalty pulling them back to the starting weights "
                 "(--anchor; a simple EWC-like regulariser)",
}
# The settings one strategy alone reads (setting -> that strategy): given for another strategy they would be ignored
# silently, so they are refused (`unread_settings`).
STRATEGY_SETTINGS: dict[str, str] = {"replay": "replay", "replay_fraction": "replay", "anchor": "l2-anchor"}
# Parameter-name prefixes of the perception CNN (policies/policy.py names it `encoder`): what freeze-cnn keeps.
CNN_PREFIX = "encoder."
# Settings of the starting policy's training recipe that an adaptation keeps (the others are the adaptation's own).
INHERITED = ("window", "stride", "lr_final_fraction", "weight_decay", "grad_clip", "val_fraction", "augment")
# Where the replay strategy's old data comes from for the shipped policy: its recipe collects it.
SHIPPED_OLD_DATA = ("the shipped fly-to-target policy's old data is its recipe's summer dataset: `navigator train "
                    "--config launch/train/fly_to_target.yaml` collects it into "
                    "datasets/summer-fly-to-target-600-near-target (or `navigator collect --out "
                    "datasets/summer-fly-to-target-600-near-target --episodes 600 --dart-near-target 0.5`)")


def canonical_strategy(name: Any) -> str:
    """A strategy's name as STRATEGIES spells it, whatever its case and separators ("Freeze_CNN" -> "freeze-cnn",
    "Fine Tune" -> "finetune"); ValueError listing the valid ones."""
    from sim_envs import normal_name

    if isinstance(name, str):
        unseparated = {strategy.replace("-", ""): strategy for strategy in STRATEGIES}
        found = unseparated.get(normal_name(name).replace("-", ""))
        if found is not None:
            return found
    raise ValueError(f"unknown strategy {name!r}; valid strategies are: {', '.join(STRATEGIES)}")


def unread_settings(names: Any, strategies: Any) -> list[tuple[str, str]]:
    """Of the settings `names`, the strategy-specific ones (STRATEGY_SETTINGS) that none of `strategies` reads, each
    as (setting, the strategy that reads it), in STRATEGY_SETTINGS' order."""
    return [(name, owner) for name, owner in STRATEGY_SETTINGS.items() if name in names and owner not in strategies]


@dataclass(frozen=True)
class Continuation:
    """How a training continues a trained policy, as its recipe records it. `replay_fraction` is set for the replay
    strategy only and `anchor` for l2-anchor only (None otherwise), so that a setting a strategy does not read never
    makes two recipes differ."""

    start: str = ""  # the checkpoint whose weights the training starts from
    start_sha256: str = ""  # that file's sha256 when the adaptation started
    strategy: str = "finetune"
    replay: tuple[str, ...] = ()  # old datasets mixed into every batch (replay only)
    replay_fraction: float | None = setting(None, gt=0.0, lt=1.0)  # share of each batch's windows from `replay`
    anchor: float | None = setting(None, gt=0.0)  # weight of the L2 anchor: times the mean squared weight change
    # Share of the trained weight change each best.pt keeps: start + weight_mix * (trained - start) (WiSE-FT); None
    # keeps it all (as recipes recorded before the mix existed say, so that they still resume)
    weight_mix: float | None = setting(None, gt=0.0, lt=1.0)

    def __post_init__(self) -> None:
        check_settings(self)
        with setting_check("strategy"):
            object.__setattr__(self, "strategy", canonical_strategy(self.strategy))
        if not self.start or len(self.start_sha256) != 64:
            raise SettingError("start", "must name the starting checkpoint and its sha256")
        if (self.strategy == "replay") != bool(self.replay) or (self.strategy == "replay") != (
                self.replay_fraction is not None):
            raise SettingError("replay", "replay datasets and replay_fraction are set for the replay strategy, and "
                                         "only for it")
        if (self.strategy == "l2-anchor") != (self.anchor is not None):
            raise SettingError("anchor", "is set for the l2-anchor strategy, and only for it")


@dataclass(frozen=True)
class AdaptTrainConfig(TrainConfig):
    """A training recipe that continues a trained policy (`adapt`) instead of starting from fresh weights."""

    adapt: Continuation | None = None  # always given: None only so that the field may follow TrainConfig's defaults

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adapt is None:
            raise SettingError("adapt", "must say which checkpoint the training continues")


@dataclass(frozen=True)
class AdaptConfig:
    """What `navigator adapt` reads from its flags: the policy to start from, the new data, the strategy and the
    training's few settings of its own. SettingError names the first bad one."""

    pilot: str = "pretrained"  # the shipped policy of `task`, or a policy checkpoint (.pt)
    task: str = "fly-to-target"  # whose shipped policy `pretrained` is
    data: tuple[str, ...] = ()  # the new demonstrations (dataset folders)
    strategy: str = "finetune"
    replay: tuple[str, ...] = ()  # old demonstrations to replay (the replay strategy)
    replay_fraction: float = setting(0.5, gt=0.0, lt=1.0)  # of each batch's windows, the share replayed
    # l2-anchor's weight on the mean squared change of the weights: fine-tuning 10 epochs on 5 night demonstrations
    # moved the shipped weights by a mean square of 5e-6 at an imitation loss of 1e-3, so 100 makes that change cost
    # half the loss
    anchor: float = setting(100.0, gt=0.0)
    # The adapted policy's weights are start + weight_mix * (trained - start): 1 keeps the trained weights; below 1
    # they lie on the line back to the starting ones, trading some of what was learnt for less forgetting (WiSE-FT,
    # Wortsman et al. 2022, which interpolates a fine-tuned model with its start). With any strategy.
    weight_mix: float = setting(1.0, gt=0.0, le=1.0)
    epochs: int = setting(10, ge=1, le=MAX_EPOCHS)
    # DAgger rounds after the training on the new data: the adapted policy flies `episodes` worlds of the new data's
    # scenery, labelled by the expert. Round r flies world seeds DAGGER_SEED_STRIDE * r on (1000000, 2000000, ...):
    # past the evaluation's (100000 on) and the demonstrations'. The shipped policy's own DAgger rounds flew the same
    # seeds (in summer); that does not matter for honesty: the checkpoint's training_seeds lists both rounds' seeds,
    # each with its dataset, so navigator eval refuses those worlds either way, and evaluations never fly them.
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    lr: float = setting(1e-3, gt=0.0, le=1.0)  # peak learning rate (cosine decay as in the starting recipe)
    batch_size: int = setting(16, ge=1)  # windows of new data per batch (replay adds its share on top)
    patience: int = setting(6, ge=1, le=MAX_EPOCHS)  # early stopping: epochs without a better validation loss
    seed: int = setting(0, ge=0, le=MAX_SEED)  # split, shuffling, augmentation and replay draws
    out: str = "runs/adapted"
    threads: int = setting(2, ge=1, le=1024)
    device: str = "cpu"  # cpu, cuda or cuda:N: where the network trains (checked with the recipe it becomes)
    cache_mb: int = setting(4096, ge=0)

    def __post_init__(self) -> None:
        check_settings(self)
        set_canonical(self, "task", canonical_task)
        object.__setattr__(self, "device", check_device(self.device))
        with setting_check("strategy"):
            object.__setattr__(self, "strategy", canonical_strategy(self.strategy))
        pilot = self.pilot.strip().lower() if isinstance(self.pilot, str) else self.pilot
        if pilot == "expert":
            raise SettingError("pilot", "expert is the privileged demonstrator, not a policy with weights to adapt; "
                                        "give pretrained or a policy checkpoint (.pt)")
        if pilot != "pretrained" and not str(self.pilot).endswith(".pt"):
            folder = Path(str(self.pilot))
            if (folder / "run.json").is_file():  # a training run's (or adaptation's) folder: its policy is in it
                raise SettingError("pilot", f"{self.pilot} is a training run's folder; give its policy: "
                                            f"{folder / 'best.pt'}")
            bundle = (" (an exported bundle cannot be trained: adapt the checkpoint it was exported from)"
                      if folder.is_dir() else "")
            raise SettingError("pilot", f"must be pretrained or a policy checkpoint (.pt), got {self.pilot!r}{bundle}")
        if not self.data:
            raise SettingError("data", "no new demonstrations: give --data DATASET (record some with navigator "
                                       "collect --preset NEW_SCENERY --episodes 20 --out datasets/NEW)")
        if self.strategy == "replay" and not self.replay:
            raise SettingError("replay", f"the replay strategy needs the old data: give --replay DATASET; "
                                         f"{SHIPPED_OLD_DATA}")
        if self.replay and self.strategy != "replay":
            raise SettingError("replay", f"is read by the replay strategy only, not {self.strategy}: drop it, or "
                                         f"give --strategy replay")
        if not self.out:
            raise SettingError("out", "must name a folder, got ''")

    def continuation(self, start: str, start_sha256: str) -> Continuation:
        """How the recipe records this adaptation of the checkpoint `start` (whose file has `start_sha256`)."""
        return Continuation(start=start, start_sha256=start_sha256, strategy=self.strategy, replay=self.replay,
                            replay_fraction=self.replay_fraction if self.strategy == "replay" else None,
                            anchor=self.anchor if self.strategy == "l2-anchor" else None,
                            weight_mix=self.weight_mix if self.weight_mix < 1 else None)

    def recipe(self, start: str, start_sha256: str, model: dict[str, Any],
               start_recipe: dict[str, Any] | None) -> AdaptTrainConfig:
        """The training recipe: the starting policy's `model` settings (model, normalisation, feature_size,
        head_size: what its weights are), the INHERITED settings of its `start_recipe` (its checkpoint's
        `train_config`; None: the defaults), and this adaptation's own."""
        inherited = {name: (start_recipe or {})[name] for name in INHERITED if name in (start_recipe or {})}
        own = {"data": list(self.data), "out": self.out, "epochs": self.epochs, "lr": self.lr,
               "batch_size": self.batch_size, "patience": self.patience, "seed": self.seed, "threads": self.threads,
               "device": self.device, "cache_mb": self.cache_mb, "dagger": to_dict(self.dagger)}
        continuation = to_dict(self.continuation(start, start_sha256))
        return from_dict(AdaptTrainConfig, {**inherited, **model, **own, "adapt": continuation})


# The settings of AdaptConfig that a recorded recipe holds, as (AdaptConfig field, dotted recipe key): what
# `navigator adapt --resume` reads back so that no flag needs retyping.
RECORDED = (("pilot", "adapt.start"), ("data", "data"), ("strategy", "adapt.strategy"), ("replay", "adapt.replay"),
            ("replay_fraction", "adapt.replay_fraction"), ("anchor", "adapt.anchor"),
            ("weight_mix", "adapt.weight_mix"), ("epochs", "epochs"),
            ("dagger", "dagger"),
            ("lr", "lr"), ("batch_size", "batch_size"), ("patience", "patience"), ("seed", "seed"),
            ("out", "out"), ("threads", "threads"), ("device", "device"), ("cache_mb", "cache_mb"))


def recorded_adaptation(recipe: dict[str, Any]) -> dict[str, Any]:
    """The AdaptConfig settings a run's recorded recipe (run.json's `config`) holds; settings the strategy did not
    read (recorded as None) are left to their defaults."""
    found = {}
    for name, dotted in RECORDED:
        value: Any = recipe
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            found[name] = value
    return found


def changed_settings(recorded: dict[str, Any], given: dict[str, Any]) -> list[Difference]:
    """The settings `given` now (dotted AdaptConfig keys -> values as the flags give them: {"dagger.rounds": 2}) that
    differ from what a run recorded (`recorded_adaptation`'s settings), as navigator.resume Differences. Compared
    before the merged settings are checked, so that a changed --strategy is named as a change, not as the other
    strategy's missing settings. Left to the later checks: settings the run did not record (those its strategy does
    not read) and `pretrained` as the pilot (recorded as the checkpoint it resolved to)."""
    then, now = {}, {}
    for key, value in given.items():
        old: Any = recorded
        for part in key.split("."):
            old = old.get(part) if isinstance(old, dict) else None
        if old is None or (key == "pilot" and str(value).strip().lower() == "pretrained"):
            continue
        if key == "strategy":
            try:
                value = canonical_strategy(value)
            except ValueError:  # an unknown name differs from the recorded one as it is
                pass
        then[key], now[key] = old, list(value) if isinstance(value, tuple) else value
    return differences(then, now)
