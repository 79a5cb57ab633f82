"""Recording expert demonstrations into a dataset, in parallel worker processes.

Each episode is identified by (task, preset, seed) and is deterministic given that key, so any number of workers
produce the same dataset, and a resumed collection flies exactly the episodes still missing. Workers write episode
files (atomically); only this parent process touches the manifest.

Recovery data (DART): the executed action is the expert's label plus temporally correlated noise, so the vehicle
drifts off the expert's path and the labels show how to come back; the label stays the expert's clean action.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator import __version__
from navigator.config import to_dict
from navigator.dataset import (ACTION_CONVENTION, DatasetWriter, DroppedEntry, Episode, EpisodeEntry, EpisodeKey,
                               write_episode)
from navigator.errors import UserError
from navigator.scenario import CameraSettings, ScenarioConfig


@dataclass(frozen=True)
class CollectPart:
    task: str = "fly-to-target"
    preset: str = "summer"
    episodes: int = 10

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {self.episodes} for {self.task} in {self.preset}")


@dataclass(frozen=True)
class CollectConfig:
    parts: tuple[CollectPart, ...] = (CollectPart(),)
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = None
    seed: int = 0  # episode i of each part uses seed + i
    dart_noise: float = 0.1  # std of the noise added to executed actions, in normalised action units
    dart_time_constant: float = 0.5  # seconds: the noise is an Ornstein-Uhlenbeck process, not white
    keep_failed: bool = True  # False: failed episodes are not stored, only marked in the manifest
    workers: int = 0  # 0: one per CPU core
    # Who flies: "expert" (demonstrations, with DART noise), or a trained policy (a checkpoint or bundle path) that
    # flies while the expert labels every frame it sees: DAgger's data.
    flier: str = "expert"

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a collection needs at least one part (task, preset, episodes)")
        pairs = [(part.task, part.preset) for part in self.parts]
        duplicates = sorted({pair for pair in pairs if pairs.count(pair) > 1})
        if duplicates:
            raise ValueError(f"parts repeat task and preset {duplicates}: merge them into one part")
        if self.dart_noise < 0 or self.dart_time_constant <= 0:
            raise ValueError("dart_noise must be >= 0 and dart_time_constant > 0")
        if self.seed < 0 or self.workers < 0:
            raise ValueError("seed and workers must be >= 0")

    def keys(self) -> list[EpisodeKey]:
        return [EpisodeKey(part.task, part.preset, self.seed + i) for part in self.parts for i in range(part.episodes)]

    def scenario(self, key: EpisodeKey) -> ScenarioConfig:
        return ScenarioConfig(task=key.task, preset=key.preset, airframe=self.airframe, camera=self.camera,
                              max_seconds=self.max_seconds)

    def recipe(self) -> dict[str, Any]:
        """What the manifest records: everything that decides the data (not how many workers made it)."""
        recipe = to_dict(self)
        recipe.pop("workers")
        return recipe


@dataclass(frozen=True)
class CollectedEpisode:
    """A worker's report: the stored episode, or the marker of a dropped one."""

    entry: EpisodeEntry | None
    dropped: DroppedEntry | None
    frames: int
    success: bool


class CorrelatedNoise:
    """Ornstein-Uhlenbeck noise with stationary standard deviation `std` and time constant `tau`, faded out over the
    last metres before the target: there the task asks the vehicle to hold still, and noise would only make the
    expert fail the hold, not teach a recovery."""

    FADE_START = 3.0  # metres from the target where the noise starts to fade
    FADE_END = 1.0  # metres from the target where it is gone

    def __init__(self, std: float, tau: float, task, rng: np.random.Generator) -> None:
        self._decay = math.exp(-task.dt / tau)
        self._scale = std * math.sqrt(1 - self._decay**2)
        self._rng = rng
        self._task = task
        self._value = rng.normal(0.0, std, 4) if std > 0 else np.zeros(4)

    def __call__(self, label: np.ndarray) -> np.ndarray:
        fade = (self._task.distance_to_target() - self.FADE_END) / (self.FADE_START - self.FADE_END)
        noisy = np.clip(label + min(1.0, max(0.0, fade)) * self._value, -1.0, 1.0).astype(np.float32)
        self._value = self._decay * self._value + self._scale * self._rng.normal(0.0, 1.0, 4)
        return noisy


def record_episode(env, config: CollectConfig, key: EpisodeKey) -> Episode:
    """Fly one expert episode with DART noise and return everything the dataset stores about it."""
    from navigator.pilots import ExpertPilot, make_pilot
    from navigator.rollout import run_episode

    task = env.unwrapped
    frames: dict[str, list] = {name: [] for name in ("images", "state", "action_label", "action_executed",
                                                     "timestamp", "position", "velocity", "yaw",
                                                     "target_position", "target_distance")}

    def on_step(observation, label, info) -> None:
        frames["images"].append(observation["image"])
        frames["state"].append(observation["state"])
        frames["action_label"].append(label)
        frames["action_executed"].append(info["executed_action"])
        frames["timestamp"].append(info["time"])
        frames["position"].append(info["position"])
        frames["velocity"].append(info["velocity"])
        frames["yaw"].append(info["yaw"])
        frames["target_position"].append(info["target_position"])
        frames["target_distance"].append(info["distance"])

    noise = CorrelatedNoise(config.dart_noise, config.dart_time_constant, task,
                            np.random.default_rng([key.seed, 0xDA27]))
    flier = None if config.flier == "expert" else make_pilot(config.flier, env)
    result = run_episode(env, ExpertPilot(env), key.seed, on_step=on_step, flier=flier,
                         perturb=noise if flier is None else None)
    steps = len(frames["images"])
    camera = task.camera
    return Episode(
        images=np.stack(frames["images"]),
        state=np.stack(frames["state"]).astype(np.float32),
        action_label=np.stack(frames["action_label"]).astype(np.float32),
        action_executed=np.stack(frames["action_executed"]).astype(np.float32),
        dt=np.full(steps, task.dt, np.float32),
        timestamp=np.asarray(frames["timestamp"], np.float64),
        privileged={name: np.asarray(frames[name], np.float64)
                    for name in ("position", "velocity", "yaw", "target_position", "target_distance")},
        metadata={
            "task": key.task, "preset": key.preset, "seed": key.seed, "airframe": task.airframe.name,
            "camera": camera.to_dict(), "physics_hz": task.world.physics_hz,
            "action_limits": task.airframe.limits.as_array().tolist(), "action_convention": ACTION_CONVENTION,
            "outcome": {"ending": result.ending, "success": result.success, "steps": result.steps,
                        "duration": result.time, "path_length": result.path_length},
            "pilot": "expert", "flier": config.flier, "dart_noise_std": config.dart_noise if flier is None else 0.0,
            "dart_time_constant": config.dart_time_constant, "software_version": __version__,
        },
    )


# One environment per worker process and scenario, reused across its episodes (a reset rebuilds the world).
_worker_envs: dict[ScenarioConfig, Any] = {}


def _collect_one(job: tuple[str, CollectConfig, EpisodeKey]) -> CollectedEpisode:
    from navigator.scenario import make_scenario_env

    out, config, key = job
    scenario = config.scenario(key)
    if scenario not in _worker_envs:
        _worker_envs[scenario] = make_scenario_env(scenario)
    episode = record_episode(_worker_envs[scenario], config, key)
    success = bool(episode.metadata["outcome"]["success"])
    if success or config.keep_failed:
        return CollectedEpisode(write_episode(Path(out), episode), None, episode.frames, success)
    ending = episode.metadata["outcome"]["ending"]
    return CollectedEpisode(None, DroppedEntry(key.task, key.preset, key.seed, ending, episode.frames),
                            episode.frames, success)


def open_for_collection(out: Path, config: CollectConfig, resume: bool) -> tuple[DatasetWriter, list[str]]:
    """A writer for `out`: new, or (resume) the interrupted one after recovering finished files. Also returns
    what recovery did, in words."""
    from navigator.dataset.manifest import manifest_path

    if not resume:
        if manifest_path(out).exists():
            raise UserError(f"{out} already holds a dataset: pass --resume to continue it, or choose another --out")
        return DatasetWriter.create(out, image_size=(config.camera.height, config.camera.width),
                                    recipe=config.recipe()), []
    if not manifest_path(out).exists():
        raise UserError(f"--resume: {out} holds no dataset to continue (no manifest.json); drop --resume to start it")
    writer = DatasetWriter.open(out)
    if writer.manifest.recipe != config.recipe():
        raise UserError(f"--resume: {out} was collected with another recipe; resume with the same task, preset, "
                        f"seed, camera and noise settings (the manifest's 'recipe' lists them), or use another --out")
    recovery = writer.recover()
    notes = [f"adopted {len(recovery.adopted)} finished episode file(s) missing from the manifest"] * bool(
        recovery.adopted)
    notes += [f"set aside {file}: {why}" for file, why in recovery.rejected]
    notes += [f"removed {len(recovery.removed_temporaries)} partial file(s)"] * bool(recovery.removed_temporaries)
    return writer, notes


def collect(out: Path, config: CollectConfig, writer: DatasetWriter,
            on_episode: Callable[[CollectedEpisode], None] | None = None) -> list[CollectedEpisode]:
    """Fly every episode of `config` still missing from `writer`'s dataset; returns what was flown."""
    todo = writer.missing(config.keys())
    workers = min(config.workers or os.cpu_count() or 1, max(1, len(todo)))
    done = []
    for collected in _run_jobs([(str(out), config, key) for key in todo], workers):
        if collected.entry is not None:
            writer.add(collected.entry)
        else:
            writer.drop(collected.dropped)
        done.append(collected)
        if on_episode is not None:
            on_episode(collected)
    return done


def _run_jobs(jobs: list, workers: int) -> Iterator[CollectedEpisode]:
    if workers <= 1:
        try:
            yield from map(_collect_one, jobs)
        finally:
            for env in _worker_envs.values():
                env.close()
            _worker_envs.clear()
        return
    # spawn, not fork: PyBullet clients and BLAS threads do not survive a fork cleanly.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_collect_one, jobs)
