"""Closed-loop verification of an exported graph: fly whole episodes in the simulator with the PyTorch policy,
record at every step what it saw (the frame at the policy's input size, the state, dt) and what it did, then replay
the recording through ONNX Runtime (`BundlePolicy`, hidden state fed back as onboard) and measure the largest action
difference over every step of every episode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from navigator.onboard.bundle import BundlePolicy
from navigator.rollout import run_episode
from policies.preprocessing import ImageSpec, crop_and_resize


@dataclass(frozen=True)
class Recording:
    """One episode flown by the PyTorch policy: per step (T steps) the policy's input and its action."""

    seed: int
    ending: str
    success: bool
    images: np.ndarray  # uint8 (T, H, W, 3), cropped and resized to the policy's input
    states: np.ndarray  # float32 (T, 7)
    dts: np.ndarray  # float32 (T,), seconds since the previous step
    actions: np.ndarray  # float32 (T, 4), normalised


def record_episodes(env, pilot, image_spec: ImageSpec, seeds: Sequence[int],
                    on_episode: Callable[[Recording], None] | None = None) -> list[Recording]:
    """Fly one episode per seed with `pilot` (a CheckpointPilot: the PyTorch policy) and record every step."""
    recordings = []
    for seed in seeds:
        steps: dict[str, list] = {"images": [], "states": [], "dts": [], "actions": []}

        def on_step(observation, action, info) -> None:
            steps["images"].append(crop_and_resize(observation["image"], image_spec))
            steps["states"].append(observation["state"])
            steps["dts"].append(info["dt"])
            steps["actions"].append(action)

        result = run_episode(env, pilot, seed, on_step=on_step)
        recording = Recording(seed, result.ending, result.success, np.stack(steps["images"]),
                              np.stack(steps["states"]).astype(np.float32),
                              np.asarray(steps["dts"], np.float32), np.stack(steps["actions"]).astype(np.float32))
        recordings.append(recording)
        if on_episode is not None:
            on_episode(recording)
    return recordings


def replay(policy: BundlePolicy, recordings: Sequence[Recording]) -> float:
    """The largest absolute difference between `policy`'s actions and the recorded ones, over every component of
    every step (each episode from a reset hidden state); infinite if the graph gives a non-finite action."""
    worst = 0.0
    for recording in recordings:
        policy.reset()
        for image, state, dt, expected in zip(recording.images, recording.states, recording.dts,
                                              recording.actions):
            difference = float(np.max(np.abs(policy.step(image, state, float(dt)) - expected)))
            worst = max(worst, difference if np.isfinite(difference) else float("inf"))
    return worst
