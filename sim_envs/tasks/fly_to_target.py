"""`navigator/FlyToTarget-v0`: reach a visually distinct target 3 to 12 m ahead and stop near it.

The target starts inside the camera's view; trees may stand between. Success: within 1 m of the target, slower than
0.3 m/s, for 1 s.
"""

from __future__ import annotations

import math

import numpy as np

from sim_envs.layout import Bounds
from sim_envs.tasks.base import EpisodePlan, NavigationEnv, bearing_in_view
from sim_envs.vehicle import VehicleState

REACH_RADIUS = 1.0
STOP_SPEED = 0.3
HOLD_SECONDS = 1.0
AREA_MARGIN = 6.0


def rectangle_around(points: list[tuple[float, float, float]], margin: float) -> Bounds:
    xs = [pt[0] for pt in points]
    ys = [pt[1] for pt in points]
    return Bounds(min(xs) - margin, max(xs) + margin, min(ys) - margin, max(ys) + margin)


class FlyToTargetEnv(NavigationEnv):
    task_name = "fly-to-target"
    max_seconds = 30.0

    def _plan(self, rng: np.random.Generator) -> EpisodePlan:
        start = (0.0, 0.0, float(rng.uniform(1.2, 1.8)))
        distance = float(rng.uniform(*self.scenery.target_distance))
        bearing = float(rng.uniform(-1, 1)) * bearing_in_view(self.task_fov_deg)
        target = (distance * math.cos(bearing), distance * math.sin(bearing), float(rng.uniform(1.0, 2.0)))
        return EpisodePlan(start, 0.0, [target], rectangle_around([start, target], AREA_MARGIN),
                           keep_clear=[(start[0], start[1], 1.5), (target[0], target[1], 1.5)])

    def _reset_task(self, rng: np.random.Generator) -> None:
        self._held = 0

    def _judge(self, state: VehicleState) -> str | None:
        return "success" if self._holding_near_target(state) else None

    def _holding_near_target(self, state: VehicleState) -> bool:
        """True once the vehicle has stayed within reach, slowly, for HOLD_SECONDS."""
        near = self.distance_to_target() < REACH_RADIUS and math.hypot(*state.velocity) < STOP_SPEED
        self._held = self._held + 1 if near else 0
        return self._held * self.dt >= HOLD_SECONDS - 1e-9
