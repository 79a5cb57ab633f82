"""`navigator/Hike-v0`: a chain of targets, each shown only once the one before it is reached.

Each next target lies 40-120 degrees off the direction of the leg just flown, usually outside the camera's view on
arrival, so it has to be searched for. A target counts as reached within 1 m; the last one must be held as in
FlyToTarget (within 1 m, slower than 0.3 m/s, for 1 s).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim_envs.tasks.base import EpisodePlan
from sim_envs.tasks.fly_to_target import AREA_MARGIN, REACH_RADIUS, FlyToTargetEnv, rectangle_around
from sim_envs.vehicle import VehicleState


class HikeEnv(FlyToTargetEnv):
    task_name = "hike"
    max_seconds = 75.0
    target_count = 3

    def _plan(self, rng: np.random.Generator) -> EpisodePlan:
        first = super()._plan(rng)
        start, points = first.start, [first.targets[0]]
        heading = math.atan2(points[0][1] - start[1], points[0][0] - start[0])
        for _ in range(self.target_count - 1):
            heading += float(rng.choice([-1, 1])) * math.radians(float(rng.uniform(40, 120)))
            leg = float(rng.uniform(4.0, 8.0))
            last = points[-1]
            points.append((last[0] + leg * math.cos(heading), last[1] + leg * math.sin(heading),
                           float(rng.uniform(1.0, 2.0))))
        keep_clear = [(start[0], start[1], 1.5)] + [(x, y, 1.5) for x, y, _ in points]
        return EpisodePlan(start, 0.0, points, rectangle_around([start, *points], AREA_MARGIN), keep_clear)

    def _judge(self, state: VehicleState) -> str | None:
        if self.active_target < len(self.plan.targets) - 1:
            if self.distance_to_target() < REACH_RADIUS:
                self.active_target += 1
                self._show_targets()
            return None
        return super()._judge(state)

    def _task_info(self) -> dict[str, Any]:
        return {"target_index": self.active_target, "target_count": len(self.plan.targets)}
