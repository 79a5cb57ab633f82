"""What a comparison is, as a YAML-loadable config (launch/compare/*.yaml): the base training recipe every run
shares, the models, the training seeds and the evaluation settings.

The base recipe is a training recipe file (`recipe:`, e.g. launch/train/fly_to_target.yaml) with `train:` settings
on top; the comparison then sets each run's `model`, `seed` and `out` itself, so `train:` may not give those (the
recipe file's own are replaced). It is resolved, and so checked, when the config is built: a bad recipe is refused
before any data is collected.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from navigator.config import (
    MAX_SEED,
    ConfigError,
    RecordedSettings,
    SettingError,
    field_default,
    load_config,
    read_yaml_mapping,
    setting_check,
    settings_of,
)
from navigator.evaluation.settings import EvalSettings
from navigator.resume import is_within
from navigator.training.config import TrainConfig

# The liquid head first: the others are its baselines.
DEFAULT_MODELS = ("cfc-ncp", "cfc", "ltc-ncp", "lstm", "gru", "mlp")
# Set per run by the comparison: a base recipe that gave them would be silently overridden.
PER_RUN = ("model", "seed", "out")


@dataclass(frozen=True)
class CompareConfig:
    """A comparison: every model of `models` trained once per training seed of `seeds` by the base recipe, all
    evaluated by `evaluation` (navigator eval's settings; the pilots are set by the comparison), written to `out`.
    SettingError (or ConfigError, for the recipe) names the first bad setting."""

    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"workers": "--workers", "resume": "--resume"}

    recipe: str | None = None  # a training recipe YAML (launch/train/*.yaml); None: `train` alone is the recipe
    train: dict[str, Any] = settings_of(lambda: TrainConfig)  # TrainConfig settings on top of the recipe file
    models: tuple[str, ...] = DEFAULT_MODELS
    reference: str = "cfc-ncp"  # the model the others are compared with (one of `models`)
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds; each model is trained once per seed
    evaluation: EvalSettings = field(default_factory=EvalSettings)  # its pilots are the runs' best.pt: not given
    out: str = "reports/comparison"
    # The base recipe resolved from `recipe` and `train` (its model, seed and out are replaced per run).
    base: TrainConfig = field(init=False, repr=False)

    def __post_init__(self) -> None:
        with setting_check("models"):
            object.__setattr__(self, "models", tuple(_model(name) for name in self.models))
        with setting_check("reference"):
            object.__setattr__(self, "reference", _model(self.reference))
        _check_unique("models", self.models)
        if len(self.seeds) < 2:  # the interval spans training seeds: one seed cannot show their spread
            raise SettingError("seeds", f"must list at least two training seeds, got {list(self.seeds)}")
        _check_unique("seeds", self.seeds)
        if self.reference not in self.models:
            raise SettingError("reference", f"{self.reference} is not one of the models ({', '.join(self.models)}); "
                                            f"add it to models or name one of them")
        for seed in self.seeds:
            if not 0 <= seed <= MAX_SEED:
                raise SettingError("seeds", f"must be in [0, {MAX_SEED}], got {seed}")
        if self.evaluation.pilots != field_default(EvalSettings, "pilots"):
            raise SettingError("evaluation.pilots", "must not be given: the comparison's pilots are its runs' best.pt")
        if not self.out:
            raise SettingError("out", "must name a folder, got ''")
        object.__setattr__(self, "base", self._resolve_base())

    def _resolve_base(self) -> TrainConfig:
        """The recipe file with `train` on top. Errors name the setting as written: `train.epochs`, or `epochs in
        launch/train/x.yaml`."""
        given = sorted(set(self.train) & set(PER_RUN))
        if given:
            raise SettingError("train", f"sets {', '.join(given)}, which the comparison sets per run (models, "
                                        f"seeds, out): drop {'it' if len(given) == 1 else 'them'}")
        if self.recipe is not None and not Path(self.recipe).is_file():
            where = "" if Path(self.recipe).is_absolute() else f" (a relative path is read from the current folder, " \
                                                                 f"{Path.cwd()})"
            raise SettingError("recipe", f"{self.recipe} is not a file{where}; give the path of a training recipe "
                                         f"such as launch/train/fly_to_target.yaml, run from the project's folder")
        data = read_yaml_mapping(self.recipe) if self.recipe is not None else {}
        # The recipe file's model is replaced anyway; a placeholder keeps a recipe without one valid.
        data = {**data, "model": self.reference}
        overrides: dict[str, Any] = {}
        for dotted, value in _flatten(self.train):
            if value is None:  # load_config skips None overrides: a `null` (collect: null) goes into the data
                _put(data, dotted, None)
            else:
                overrides[dotted] = value
        source = RecordedSettings(data, str(self.recipe)) if self.recipe is not None else None
        # A ConfigError whose message already names the setting where it was given (flags: `train.KEY`).
        # A setting the recipe file did not give is named as the comparison's (`train.data`), not as a flag.
        every = {f.name: f"train.{f.name}" for f in dataclasses.fields(TrainConfig) if f.init}
        try:
            return load_config(TrainConfig, source, overrides, {key: f"train.{key}" for key in overrides}, every)
        except ConfigError as error:
            # A `null` of `train` went into the recipe's data: a problem with it is the comparison's, not the
            # recipe file's (which the loader would take for damaged).
            nulls = [dotted for dotted, value in _flatten(self.train) if value is None]
            if error.key is None or error.problem is None or not any(is_within(error.key, d) for d in nulls):
                raise
            raise SettingError(f"train.{error.key}", error.problem) from None

    def run_config(self, model: str, seed: int) -> TrainConfig:
        """The recipe of the run of `model` with training seed `seed`, in OUT/runs/MODEL-seedSEED."""
        return dataclasses.replace(self.base, model=model, seed=seed, out=str(run_folder(Path(self.out), model,
                                                                                          seed)))

    def runs(self) -> list[tuple[str, int]]:
        """(model, seed) of every run, in the order they are trained: seed by seed, model by model, so that an
        unfinished comparison already compares every model (on fewer training seeds)."""
        return [(model, seed) for seed in self.seeds for model in self.models]


RECORD = "compare.json"  # OUT/compare.json: the comparison's settings, as --resume reads them back
RECORD_FORMAT = "liquid-navigator/comparison-run"
RECORD_VERSION = 2  # 2: with its checksum (navigator.json_fields); 1, written before checksums, is still read
RUNS = "runs"  # OUT/runs/MODEL-seedSEED
FINISHED = "finished.json"  # OUT/finished.json: the runs whose training finished (navigator.comparison.runner)


def run_folder(out: Path, model: str, seed: int) -> Path:
    return out / RUNS / f"{model}-seed{seed}"


def all_runs_finished(config: CompareConfig) -> bool:
    """Whether OUT/finished.json lists every run of `config`: a finished comparison, which its --resume only reports
    again, from what it recorded, needing none of the data it trained on. False where it cannot be read (the
    comparison says so when it opens the folder)."""
    out = Path(config.out)
    try:
        finished = json.loads((out / FINISHED).read_text())["runs"]
        return {run_folder(out, *run).name for run in config.runs()} <= set(finished)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _model(name: Any) -> str:
    """A model name normalised as everywhere ("LSTM" -> "lstm"); ValueError listing the valid ones."""
    from policies.config import MODEL_NAMES
    from sim_envs import normal_name

    if not isinstance(name, str) or normal_name(name) not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid models are: {', '.join(MODEL_NAMES)}")
    return normal_name(name)


def _check_unique(name: str, values: tuple[Any, ...]) -> None:
    if not values:
        raise SettingError(name, "must name at least one")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise SettingError(name, f"{', '.join(repeated)} given more than once: give each once")


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"dagger": {"rounds": 0}, "lr": 0.01} -> [("dagger.rounds", 0), ("lr", 0.01)]."""
    items: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items += _flatten(value, f"{dotted}.")
        else:
            items.append((dotted, value))
    return items


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for parent in parents:
        child = node.get(parent)
        node[parent] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[leaf] = value
