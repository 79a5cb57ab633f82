"""Wind: a steady component plus gusts, as the velocity of the air (world frame, m/s).

Gusts are a first-order Gauss–Markov (Ornstein–Uhlenbeck) process per axis, the shape of the Dryden model's spectrum
at low altitude reduced to one time constant. Near the ground vertical gusts are weaker than horizontal ones (the
Dryden low-altitude intensities differ about two-fold), so the vertical axis gets half the standard deviation.
The vehicle feels the wind through its drag only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VERTICAL_GUST_SHARE = 0.5  # vertical gust std as a share of the horizontal one


@dataclass(frozen=True)
class WindConfig:
    steady_speed: float = 0.0  # m/s, horizontal
    steady_direction: float | None = None  # rad, the direction the air moves towards (CCW from +x); None: random
    gust_std: float = 0.0  # m/s, standard deviation of each horizontal gust component
    gust_time_constant: float = 2.0  # s, correlation time of the gusts

    def __post_init__(self) -> None:
        for name in ("steady_speed", "gust_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"WindConfig.{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.gust_time_constant) and self.gust_time_constant > 0):
            raise ValueError(f"WindConfig.gust_time_constant must be positive, got {self.gust_time_constant!r}")
        if self.steady_direction is not None and not math.isfinite(self.steady_direction):
            raise ValueError(f"WindConfig.steady_direction must be finite or None, got {self.steady_direction!r}")


class Wind:
    def __init__(self, config: WindConfig) -> None:
        self.config = config
        self._steady = np.zeros(3)
        self._gust = np.zeros(3)
        self._std = config.gust_std * np.array([1.0, 1.0, VERTICAL_GUST_SHARE])
        self._rng: np.random.Generator | None = None

    def reset(self, rng: np.random.Generator) -> None:
        """A new episode's wind: the steady direction (when random) and the gusts drawn from their stationary law."""
        config = self.config
        self._rng = rng
        direction = config.steady_direction
        if direction is None:
            direction = float(rng.uniform(-math.pi, math.pi))
        self._steady = config.steady_speed * np.array([math.cos(direction), math.sin(direction), 0.0])
        self._gust = self._std * rng.standard_normal(3)

    def step(self, dt: float) -> np.ndarray:
        """Advance the gusts by `dt` seconds and return the air velocity (3,) world m/s."""
        if self._rng is None:
            raise RuntimeError("Wind.reset(rng) must run before Wind.step")
        # Exact discretisation of the OU process: the variance stays config.gust_std² whatever dt is.
        decay = math.exp(-dt / self.config.gust_time_constant)
        self._gust = decay * self._gust + math.sqrt(1.0 - decay * decay) * self._std * self._rng.standard_normal(3)
        return self._steady + self._gust
