"""Mean and standard deviation of states and action labels, computed over the training split only (statistics that
saw validation data would leak it). The trainer applies them and stores them with the model, so that export and the
onboard runtime normalise exactly as training did."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

# A component that barely varies (say height in a level-flight task) would turn float noise into large normalised
# values; its std is floored at this.
MIN_STD = 1e-2


@dataclass(frozen=True)
class NormStats:
    state_mean: np.ndarray  # (7,) float32
    state_std: np.ndarray  # (7,) float32, >= MIN_STD
    action_mean: np.ndarray  # (4,) float32
    action_std: np.ndarray  # (4,) float32, >= MIN_STD
    frames: int  # how many frames they were computed from

    def to_dict(self) -> dict[str, Any]:
        return {"state_mean": self.state_mean.tolist(), "state_std": self.state_std.tolist(),
                "action_mean": self.action_mean.tolist(), "action_std": self.action_std.tolist(),
                "frames": self.frames}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormStats:
        def vector(name: str) -> np.ndarray:
            return np.asarray(data[name], dtype=np.float32)

        return cls(vector("state_mean"), vector("state_std"), vector("action_mean"), vector("action_std"),
                   int(data["frames"]))


class _Moments:
    """Streaming sums in float64: one pass over the episodes, no concatenation of the whole dataset."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.total = np.zeros(width)
        self.squares = np.zeros(width)

    def add(self, values: np.ndarray) -> None:
        values = values.astype(np.float64)
        self.count += values.shape[0]
        self.total += values.sum(axis=0)
        self.squares += np.square(values).sum(axis=0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 0.0))
        return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)


def compute_stats(episodes: Iterable[dict[str, np.ndarray]]) -> NormStats:
    """Statistics over every frame of the given episodes (each a dict with `state` and `action_label`)."""
    state, action = _Moments(7), _Moments(4)
    for arrays in episodes:
        state.add(arrays["state"])
        action.add(arrays["action_label"])
    if state.count == 0:
        raise ValueError("cannot compute normalisation statistics from no frames (is the training split empty?)")
    return NormStats(*state.mean_std(), *action.mean_std(), frames=state.count)
