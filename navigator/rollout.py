"""Closed-loop episodes: a pilot flies an environment from a seed to an ending, with per-step hooks for recording.

One loop for `fly`, `collect` and `eval`, so that every figure comes from the same code path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

StepHook = Callable[[dict[str, np.ndarray], np.ndarray, dict[str, Any]], None]


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    ending: str
    success: bool
    steps: int
    time: float  # simulated seconds
    path_length: float  # metres flown
    final_distance: float  # metres from the (active) target at the end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_episode(env, pilot, seed: int, on_step: StepHook | None = None, labeller=None,
                perturb: Callable[[np.ndarray], np.ndarray] | None = None) -> EpisodeResult:
    """Fly one episode: `pilot` flies (as `--pilot` means on the command line), from `env.reset(seed=seed)` to an
    ending. `labeller` (DAgger: the expert) labels every frame the pilot flies into; without one the pilot's own
    action is the label. `perturb(action)` changes what is flown, never the label (DART noise).
    `on_step(observation, label, info)` sees each observation with its label, and `info["executed_action"]` says
    what was flown."""
    observation, info = env.reset(seed=seed)
    pilot.reset()
    if labeller is not None:
        labeller.reset()
    while True:
        flown = np.asarray(pilot.act(observation, info), np.float32)
        label = flown if labeller is None else np.asarray(labeller.act(observation, info), np.float32)
        if perturb is not None:
            flown = perturb(flown)
        if on_step is not None:
            on_step(observation, label, {**info, "executed_action": flown})
        observation, _, terminated, truncated, info = env.step(flown)
        if terminated or truncated:
            break
    distance = float(info["distance"])
    return EpisodeResult(
        seed=seed, ending=info["ending"], success=bool(info["success"]), steps=env.unwrapped.steps,
        time=round(float(info["time"]), 6), path_length=round(float(info["path_length"]), 6),
        final_distance=round(distance, 6) if math.isfinite(distance) else float("nan"),
    )


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Success rate, mean time and path length (of all episodes) and the count of each ending."""
    count = len(results)
    endings: dict[str, int] = {}
    for r in results:
        endings[r.ending] = endings.get(r.ending, 0) + 1
    return {
        "episodes": count,
        "success_rate": sum(r.success for r in results) / count if count else 0.0,
        "mean_time": sum(r.time for r in results) / count if count else 0.0,
        "mean_path_length": sum(r.path_length for r in results) / count if count else 0.0,
        "endings": dict(sorted(endings.items())),
    }
