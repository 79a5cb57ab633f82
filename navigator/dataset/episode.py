"""One recorded flight in memory: the arrays of the episode contract plus its metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from navigator.dataset.errors import InvalidEpisodeError
from navigator.dataset.schema import episode_problems


class EpisodeKey(NamedTuple):
    """What identifies an episode in a dataset: collection is resumed by asking which keys are complete."""

    task: str
    preset: str
    seed: int

    def __str__(self) -> str:
        # How messages name an episode ("fly-to-target/winter+wind seed 42"): users read it, so no tuple repr.
        return f"{self.task}/{self.preset} seed {self.seed}"

    def file_name(self) -> str:
        # Derived from the key, so a re-run of the same episode replaces its file instead of adding a duplicate.
        return f"{self.task}__{self.preset}__seed{self.seed:08d}.npz"


@dataclass
class Episode:
    """Arrays indexed by policy step (leading axis T) and a JSON-able metadata dict (see datasets/README.md)."""

    images: np.ndarray  # (T, H, W, 3) uint8 RGB
    state: np.ndarray  # (T, 7) float32
    action_label: np.ndarray  # (T, 4) float32 in [-1, 1]
    action_executed: np.ndarray  # (T, 4) float32 in [-1, 1]
    dt: np.ndarray  # (T,) float32
    timestamp: np.ndarray  # (T,) float64
    privileged: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def key(self) -> EpisodeKey:
        return EpisodeKey(self.metadata["task"], self.metadata["preset"], int(self.metadata["seed"]))

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the camera images."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def arrays(self) -> dict[str, np.ndarray]:
        """The fixed per-frame arrays by name (privileged ones excluded)."""
        return {"images": self.images, "state": self.state, "action_label": self.action_label,
                "action_executed": self.action_executed, "dt": self.dt, "timestamp": self.timestamp}

    def require_valid(self, where: str) -> None:
        """Raise InvalidEpisodeError listing every way this episode breaks the contract."""
        problems = episode_problems(self.arrays(), self.privileged, self.metadata)
        if problems:
            raise InvalidEpisodeError(f"{where}: " + "; ".join(problems))
