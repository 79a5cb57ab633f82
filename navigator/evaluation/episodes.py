"""One evaluation episode: a pilot flies one world to its ending, and what the report needs is recorded.

Episodes fly in spawn worker processes or on Ray actors (`navigator.backends`), each keeping one environment per
scenario (and its pilots) for reuse; each episode is deterministic given (pilot, suite, seed), so the records do not
depend on the number of workers nor the backend, and an episode flown again (to film it) is the episode recorded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.backends import LOCAL, Backend, Cluster, run_jobs
from navigator.evaluation.settings import EpisodeKey, EvalSettings
from navigator.dataset.schema import ENDINGS
from navigator.json_fields import is_integer, is_number

PATH_EVERY = 10  # camera steps between recorded path points (a third of a second at 30 Hz)


@dataclass(frozen=True)
class EpisodeRecord:
    """How one episode went. Positions are world-frame metres (x, y, z up); times are simulated seconds."""

    pilot: str
    suite: str
    seed: int
    ending: str  # navigator.dataset.schema.ENDINGS (the tasks' endings, tests/test_collect.py checks)
    success: bool
    steps: int  # camera (policy) steps
    time: float  # seconds flown
    path_length: float  # metres flown
    final_distance: float | None  # metres from the active target at the end; None if the physics blew up
    start: tuple[float, float, float]  # the vehicle at reset
    target: tuple[float, float, float]  # the (first) target at reset
    path_xy: tuple[tuple[float, float], ...]  # x, y every PATH_EVERY steps, and the last step's
    # Attention on target (navigator.explain.attention), with `EvalSettings.attention`: the mean over the measured
    # steps with the target in view (None without any), the target's mean share of the image at those steps (what
    # an evenly spread saliency would score), and how many there were; attention_steps is None where nothing was
    # measured (no --attention, or a pilot without saliency: the expert, an exported bundle).
    attention: float | None = None
    target_share: float | None = None
    attention_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["start"], record["target"] = list(self.start), list(self.target)
        record["path_xy"] = [list(point) for point in self.path_xy]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        """The record `to_dict` wrote. ValueError (or KeyError, TypeError) when a field is missing or of the wrong
        kind: a record edited or damaged by hand is never reported as if it had been flown."""
        record = cls(**{**data, "start": _point(data["start"], 3), "target": _point(data["target"], 3),
                        "path_xy": tuple(_point(point, 2) for point in data["path_xy"])})
        record._check()
        return record

    def _check(self) -> None:
        if not (isinstance(self.pilot, str) and isinstance(self.suite, str) and is_integer(self.seed)
                and self.ending in ENDINGS and self.success is (self.ending == "success")
                and is_integer(self.steps) and self.steps >= 0 and is_number(self.time) and is_number(self.path_length)
                and (self.final_distance is None or is_number(self.final_distance))
                and (self.attention is None or is_number(self.attention))
                and (self.target_share is None or is_number(self.target_share))
                and (self.attention_steps is None or is_integer(self.attention_steps))):
            raise ValueError("an episode record with a missing or malformed field")

    @property
    def straight_distance(self) -> float:
        """Metres from the start to the target, in a straight line."""
        return math.dist(self.start, self.target)


def _point(value: Any, size: int) -> tuple[float, ...]:
    """A recorded point (x, y[, z]) as a tuple; ValueError if it is not `size` finite numbers."""
    point = tuple(value)
    if len(point) != size or not all(is_number(coordinate) for coordinate in point):
        raise ValueError(f"a recorded point is not {size} finite numbers")
    return point


def fly_episode(env, pilot, pilot_spec: str, suite: str, seed: int, video=None) -> EpisodeRecord:
    """Fly `pilot` in `env` (built for `suite`) from `seed` and record the episode; `video` (a
    navigator.video.VideoWriter) gets every step's onboard camera beside a chase view, as `navigator fly --video`.
    A pilot that measures attention on target (navigator.explain.attention.AttentionMeter) has its figure
    recorded."""
    from navigator.explain.attention import AttentionMeter
    from navigator.rollout import run_episode

    trace: list[np.ndarray] = []
    first: dict[str, np.ndarray] = {}

    def on_step(observation, label, info) -> None:
        if not first:
            first.update(start=info["position"], target=info["target_position"])
        trace.append(info["position"][:2])
        if video is not None:
            video.write(env.unwrapped.side_by_side_frame(),
                        f"{suite} seed {seed}  t {info['time']:5.1f}s  d {info['distance']:5.1f}m")

    result = run_episode(env, pilot, seed, on_step=on_step)
    points = trace[::PATH_EVERY] + ([trace[-1]] if (len(trace) - 1) % PATH_EVERY else [])
    attention, target_share, attention_steps = (pilot.figure() if isinstance(pilot, AttentionMeter)
                                                else (None, None, None))
    return EpisodeRecord(
        pilot=pilot_spec, suite=suite, seed=seed, ending=result.ending, success=result.success, steps=result.steps,
        time=result.time, path_length=result.path_length,
        final_distance=result.final_distance if math.isfinite(result.final_distance) else None,
        start=_rounded(first["start"], 6), target=_rounded(first["target"], 6),
        path_xy=tuple(_rounded(point, 3) for point in points), attention=attention, target_share=target_share,
        attention_steps=attention_steps,
    )


def _rounded(values: np.ndarray, digits: int) -> tuple[float, ...]:
    return tuple(round(float(v), digits) for v in values)


# One environment per worker process and scenario, and one pilot per (scenario, pilot spec), reused across episodes.
_worker_envs: dict[Any, Any] = {}
_worker_pilots: dict[tuple[Any, str], Any] = {}


def _init_worker() -> None:
    # Each worker gets one core's worth of math threads: torch reads this when (lazily) imported.
    os.environ["OMP_NUM_THREADS"] = "1"


def _fly_one(job: tuple[EvalSettings, EpisodeKey, Path | None]) -> tuple[EpisodeKey, EpisodeRecord]:
    from navigator.pilots import make_pilot
    from navigator.scenario import make_scenario_env
    from navigator.video import VideoWriter

    settings, key, video_path = job
    suite, spec = settings.flown_suites[key.suite], settings.pilots[key.pilot]
    scenario = settings.scenario(suite)
    if scenario not in _worker_envs:
        _worker_envs[scenario] = make_scenario_env(scenario)
    env = _worker_envs[scenario]
    env.unwrapped.use_scenery(settings.scenery(suite))  # a sweep level's, or (None) the suite's preset's
    if (scenario, spec) not in _worker_pilots:
        _worker_pilots[scenario, spec] = _measured(make_pilot(spec, env), env, settings)
    pilot = _worker_pilots[scenario, spec]
    if video_path is None:
        return key, fly_episode(env, pilot, spec, suite, key.seed)
    with VideoWriter(video_path, env.unwrapped.description().camera.rate_hz) as video:
        return key, fly_episode(env, pilot, spec, suite, key.seed, video)


def _measured(pilot, env, settings: EvalSettings):
    """`pilot`, measuring its attention on target if the settings ask for it and it is a policy checkpoint (the
    expert reads the world and a bundle is an ONNX graph: neither has saliency to measure)."""
    from navigator.pilots import CheckpointPilot

    if not settings.attention or not isinstance(pilot, CheckpointPilot):
        return pilot
    from navigator.explain.attention import AttentionMeter

    return AttentionMeter(pilot, env, settings.attention_method, settings.attention_interval)


def fly_episodes(settings: EvalSettings, keys: list[EpisodeKey], workers: int,
                 videos: dict[EpisodeKey, Path] | None = None, backend: Backend = LOCAL,
                 on_ready: Callable[[Cluster], None] | None = None) -> Iterator[tuple[EpisodeKey, EpisodeRecord]]:
    """Fly `keys` in `workers` worker processes on `backend` (always separate processes, so that a record does not
    depend on the parent's thread settings); yields (key, record) as episodes finish, in no particular order. An
    episode with a path in `videos` is filmed there (an .mp4 that must not exist yet, in an existing folder, so
    filming needs the local backend: a Ray worker's folder may be on another machine)."""
    if videos and backend.kind != "local":
        raise ValueError("episodes are filmed by local workers only: their videos go into this machine's folders")
    videos = videos or {}
    yield from run_jobs(_fly_one, [(settings, key, videos.get(key)) for key in keys], workers, backend,
                        _init_worker, on_ready)
