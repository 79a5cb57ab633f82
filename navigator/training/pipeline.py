"""A whole training recipe: collect the demonstrations if they are missing, train, then DAgger rounds.

Every stage is resumable. Progress is recorded in `out/progress.json` after each stage, so an interrupted run
continues with the stage it was in: a collection flies only its missing episodes, a training resumes from its last
epoch. DAgger round r rolls out the current best policy, has the expert label every frame (into the dataset
`out/dagger/round-r`), adds those episodes to the data and continues training from the current weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from navigator.collect import CollectConfig, CollectedEpisode, CollectPart, collect, open_for_collection
from navigator.dataset import read_manifest
from navigator.dataset.manifest import manifest_path
from navigator.errors import UserError
from navigator.training.config import TrainConfig
from navigator.training.loop import EpochReport, train
from policies.checkpoint import load_checkpoint
from policies.policy import Policy

ProgressFile = dict[str, list[str]]


class Hooks:
    """What the command shows while the recipe runs (the pipeline itself prints nothing)."""

    def stage(self, name: str, detail: str) -> None: ...

    def episode(self, collected: CollectedEpisode) -> None: ...

    def epoch(self, report: EpochReport) -> None: ...

    def batch(self, index: int, frames: int, loss: float) -> None: ...


def _collect_into(out: Path, config: CollectConfig, hooks: Hooks) -> None:
    writer, _ = open_for_collection(out, config, resume=manifest_path(out).exists())
    collect(out, config, writer, hooks.episode)


def dagger_collect_config(config: TrainConfig, flier: Path, round_index: int) -> CollectConfig:
    """Round r's roll-outs: the tasks, presets, airframe and camera of the first dataset's recipe, with seeds no
    demonstration used; worker count and the like from the recipe's `collect` section when there is one."""
    recipe = read_manifest(Path(config.data[0])).recipe
    base = config.collect or CollectConfig()
    parts = tuple(CollectPart(task=p["task"], preset=p["preset"], episodes=config.dagger.episodes)
                  for p in recipe.get("parts", [])) or (CollectPart(episodes=config.dagger.episodes),)
    camera = recipe.get("camera")
    # The roll-outs fly the scenario the demonstrations were recorded in.
    return replace(base, parts=parts, seed=1_000_000 * round_index, flier=str(flier), keep_failed=True,
                   airframe=recipe.get("airframe", base.airframe), max_seconds=recipe.get("max_seconds"),
                   camera=type(base.camera)(**camera) if isinstance(camera, dict) else base.camera)


def run_recipe(config: TrainConfig, resume: bool, hooks: Hooks) -> Path:
    """Run the recipe; returns the path of the best policy checkpoint."""
    out = Path(config.out)
    progress_path = out / "progress.json"
    if not resume and progress_path.exists():
        raise UserError(f"{out} already holds a training run: pass --resume to continue it, or choose another --out")
    progress: ProgressFile = json.loads(progress_path.read_text()) if progress_path.exists() else {"completed": []}
    out.mkdir(parents=True, exist_ok=True)

    first = Path(config.data[0])
    if config.collect is not None and "collect" not in progress["completed"]:
        hooks.stage("collect", f"{first} ({sum(p.episodes for p in config.collect.parts)} episodes)")
        _collect_into(first, config.collect, hooks)
        _complete(progress, "collect", progress_path)

    data = list(config.data)
    policy: Policy | None = None
    stages = ["train"] + [f"dagger-{r}" for r in range(1, config.dagger.rounds + 1)]
    for index, stage in enumerate(stages):
        if stage != "train":
            round_data = out / "dagger" / f"round-{index}"
            data.append(str(round_data))
        if stage in progress["completed"]:
            continue
        if stage != "train":
            hooks.stage(stage, f"the current policy flies {config.dagger.episodes} episodes per task, the expert "
                               f"labels them into {round_data}")
            _collect_into(round_data, dagger_collect_config(config, out / "best.pt", index), hooks)
            policy, _ = load_checkpoint(out / "best.pt")
        epochs = config.epochs if stage == "train" else config.dagger.epochs
        hooks.stage(stage, f"{epochs} epochs on {len(data)} dataset(s)")
        train(config, data, out, epochs, resume=True, on_epoch=hooks.epoch, on_batch=hooks.batch,
              initial=policy, stage=stage)
        _complete(progress, stage, progress_path)
    return out / "best.pt"


def _complete(progress: ProgressFile, stage: str, path: Path) -> None:
    progress["completed"].append(stage)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(progress) + "\n")
    partial.replace(path)
