"""`navigator/Follow-v0`: keep a moving target at a stand-off distance.

The target moves along a smooth random path (a constant speed with an Ornstein-Uhlenbeck turn rate), through a
corridor kept free of obstacles. Success: after the task's full duration (40 s), the distance was within 1 m of the
stand-off for at least 75% of the time. An episode cut shorter (`max_seconds` below 40) ends in timeout, never in
success: a few seconds of following say nothing about keeping up. The target is lost (an early ending) after 2 s
farther than three stand-offs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim_envs.tasks.base import EpisodePlan, NavigationEnv
from sim_envs.tasks.fly_to_target import AREA_MARGIN, rectangle_around
from sim_envs.vehicle import VehicleState

STANDOFF = 2.5
TASK_SECONDS = 40.0  # the duration success is judged over, whatever max_seconds cuts an episode to
BAND = 1.0
GOOD_FRACTION = 0.75
LOST_SECONDS = 2.0


class FollowEnv(NavigationEnv):
    task_name = "follow"
    max_seconds = TASK_SECONDS

    def _plan(self, rng: np.random.Generator) -> EpisodePlan:
        start = (0.0, 0.0, 1.5)
        height = float(rng.uniform(1.2, 1.8))
        speed = float(rng.uniform(0.3, 0.5)) * self.airframe.limits.vx
        steps = int(round(self.max_seconds / self.dt)) + 2
        heading, turn_rate = 0.0, 0.0
        x, y = STANDOFF, 0.0
        path = []
        # Turn rate as a mean-reverting random walk: smooth curves, never a sharp corner.
        for _ in range(steps):
            path.append((x, y, height))
            turn_rate += -turn_rate * self.dt / 3.0 + float(rng.normal(0.0, 0.25)) * math.sqrt(self.dt)
            turn_rate = max(-0.6, min(0.6, turn_rate))
            heading += turn_rate * self.dt
            x += speed * math.cos(heading) * self.dt
            y += speed * math.sin(heading) * self.dt
        self._path = path
        corridor = [(px, py, 1.8) for px, py, _ in path[:: max(1, int(1.0 / (speed * self.dt)))]]
        return EpisodePlan(start, 0.0, [path[0]], rectangle_around([start, *path], AREA_MARGIN),
                           keep_clear=[(start[0], start[1], 1.8), *corridor])

    def _reset_task(self, rng: np.random.Generator) -> None:
        self._good_steps = 0
        self._far_steps = 0

    def target_path(self) -> list[tuple[float, float, float]]:
        """The target's whole trajectory, one point per control step (privileged: for the expert)."""
        return self._path

    def target_position(self) -> tuple[float, float, float]:
        return self._path[min(self.steps, len(self._path) - 1)]

    def _advance_targets(self) -> None:
        self.world.place_target(0, self.target_position())

    def _show_targets(self) -> None:
        self.world.place_target(0, self.target_position())

    def _judge(self, state: VehicleState) -> str | None:
        distance = self.distance_to_target()
        self._good_steps += abs(distance - STANDOFF) < BAND
        self._far_steps = self._far_steps + 1 if distance > 3 * STANDOFF else 0
        if self._far_steps * self.dt >= LOST_SECONDS:
            return "lost"
        if self.time >= TASK_SECONDS - 1e-9 and self._good_steps >= GOOD_FRACTION * self.steps:
            return "success"
        return None

    def _task_info(self) -> dict[str, Any]:
        return {"standoff_error": self.distance_to_target() - STANDOFF,
                "tracking_fraction": self._good_steps / max(1, self.steps)}
