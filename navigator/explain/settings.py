"""What `navigator explain` explains: the pilot, the episode (flown from a seed in a scenario, or read from a dataset),
the saliency method and the ablation's closed-loop episodes, as a YAML-loadable config checked before any work.
Importable without torch (the command's --help reads the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from navigator.config import MAX_SEED, SettingError, check_seed_span, check_settings, setting
from navigator.explain.methods import canonical_method
from navigator.scenario import HELD_OUT_SEED, ScenarioConfig, canonical_pilot, set_canonical

MAX_ABLATION_EPISODES = 1000  # per neuron; the intact policy flies as many


def explainable_pilot(spec: str) -> str:
    """`spec` as `canonical_pilot` gives it, if it has a torch graph to explain: "pretrained" or a policy checkpoint.
    ValueError for the expert and for bundles, saying what to give instead."""
    from navigator.pilots import is_bundle

    spec = canonical_pilot(spec)
    if spec == "expert":
        raise ValueError("the expert reads the world, not the camera: it has no network to explain; give pretrained "
                         "or a policy checkpoint (.pt)")
    if is_bundle(Path(spec)):
        raise ValueError(f"{spec} is an exported ONNX bundle, which keeps no torch graph for saliency, traces or "
                         f"ablation; give the checkpoint it was exported from (.pt), or pretrained")
    return spec


@dataclass(frozen=True)
class ExplainConfig:
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    pilot: str = "pretrained"  # pretrained | a policy checkpoint (.pt)
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)  # the flown episode's world; ablation flies seed, seed+1...
    method: str = "visualbackprop"  # saliency method, one of navigator.explain.methods.METHODS
    ablation_episodes: int = setting(5, ge=0, le=MAX_ABLATION_EPISODES)  # closed-loop worlds per silenced neuron
    from_dataset: str | None = None  # a dataset folder: explain its episode `episode` instead of flying one
    episode: int | None = setting(None, ge=0)  # index in the dataset's manifest (0: its first episode)

    def __post_init__(self) -> None:
        check_settings(self)
        check_seed_span(self.seed, max(1, self.ablation_episodes), "seed", "ablation_episodes")
        set_canonical(self, "pilot", explainable_pilot)
        set_canonical(self, "method", canonical_method)
        if self.episode is not None and self.from_dataset is None:
            raise SettingError("episode", "must come with {from_dataset}: it picks an episode of that dataset; give "
                                          "the dataset, or drop {episode} to fly one", ("episode", "from_dataset"))
        if self.from_dataset is not None and self.scenario.max_seconds is not None:
            # A recorded episode is explained as long as it was recorded: a limit would hold only for the ablation's
            # flights, and explain.json would record a limit the explained episode never had.
            raise SettingError("scenario.max_seconds", "must be left out with {from_dataset}: a recorded episode "
                                                       "is explained whole, as recorded (the limit would hold only "
                                                       "for the ablation's flights); drop {scenario.max_seconds}",
                               ("from_dataset", "scenario.max_seconds"))
        if self.from_dataset is not None and not Path(self.from_dataset).is_dir():
            raise SettingError("from_dataset", f"{self.from_dataset} is not a folder; give a dataset folder "
                                               f"(one holding manifest.json)")

    @property
    def dataset_episode(self) -> int:
        """The dataset episode's index (0 when not given)."""
        return self.episode or 0
