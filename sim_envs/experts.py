"""Privileged experts: pilots that know the world (targets, obstacles, the target's future path) and output the same
normalised [vx, vy, vz, yaw_rate] heading-frame action as every policy. They are the demonstrators for imitation.

Every expert keeps the target centred in the camera (yaw towards it) and translates along a planned collision-free
path, so what the camera sees explains what the expert does. A new target outside the camera's view (hike's next
one) is searched for by turning one fixed way (left), never towards where only the expert knows it lies: a policy
that cannot see it cannot learn which way a privileged expert would turn, and imitating both ways averages them into
not turning at all. A target lost from view later, which only a learner's DAgger roll-out does, is turned towards:
searching for it one fixed way as well was measured, and flew fly-to-target worse in wind (README, "The shipped
policies").
"""

from __future__ import annotations

import math

import numpy as np

from sim_envs.errors import UnknownNameError
from sim_envs.planning import path_length, plan_path, point_at, progress_on_path
from sim_envs.tasks.base import NavigationEnv
from sim_envs.tasks.fly_to_target import FlyToTargetEnv
from sim_envs.tasks.follow import STANDOFF, FollowEnv

SAFETY_MARGIN = 0.35  # metres of clearance beyond the airframe's radius
STOP_SHORT = 0.5  # metres before the target where the expert stops
LOOKAHEAD = 1.2  # metres along the path
DECELERATION = 0.8  # m/s², for the speed profile that stops at the goal
FACE_FIRST = math.radians(35.0)  # turn towards a new target before moving when it is this far off
REPLAN_OFF_PATH = 1.0  # metres: pushed this far off the plan (noise, a learner flying), plan again from here
VIEW_MARGIN = math.radians(4.0)  # a target this far inside the view's edge counts as seen
SEARCH_YAW_RATE = 0.8  # share of the airframe's yaw-rate limit, turning left, while the target is out of view


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class Expert:
    """Base: turns a desired world-frame velocity and yaw into a normalised heading-frame action."""

    def __init__(self, env: NavigationEnv) -> None:
        self.env = env
        limits = env.airframe.limits
        self.limits = (limits.vx, limits.vy, limits.vz, limits.yaw_rate)
        self.cruise = 0.6 * min(limits.vx, limits.vy)
        self.reset()

    def reset(self) -> None:
        """Call after env.reset(): forget plans made for the previous episode."""

    def act(self) -> np.ndarray:
        raise NotImplementedError

    def _command(self, vx_world: float, vy_world: float, vz: float, yaw_rate: float) -> np.ndarray:
        yaw = self.env.vehicle_state.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        heading = (c * vx_world + s * vy_world, -s * vx_world + c * vy_world, vz, yaw_rate)
        action = np.array([h / lim for h, lim in zip(heading, self.limits)], np.float32)
        return np.clip(action, -1.0, 1.0)

    def _face(self, point: tuple[float, float, float]) -> tuple[float, float]:
        """(yaw-rate command towards `point`, bearing error)."""
        state = self.env.vehicle_state
        x, y, _ = state.position
        if math.hypot(point[0] - x, point[1] - y) < 0.8:  # bearing is ill-defined right above the point
            return 0.0, 0.0
        error = _wrap(math.atan2(point[1] - y, point[0] - x) - state.yaw)
        return max(-0.8, min(0.8, 2.0 * error / self.limits[3])) * self.limits[3], error

    def _climb(self, height: float) -> float:
        limit = 0.6 * self.limits[2]
        return max(-limit, min(limit, 1.2 * (height - self.env.vehicle_state.position[2])))


class TargetExpert(Expert):
    """Fly-to-target and hike: plan around the trees to each target in turn and stop just short of it."""

    def reset(self) -> None:
        self._planned_for: int | None = None
        self._path: list[tuple[float, float]] = []

    def act(self) -> np.ndarray:
        env = self.env
        target = env.target_position()
        yaw_rate, bearing_error = self._face(target)
        if self._planned_for != env.active_target:
            if abs(bearing_error) > FACE_FIRST:  # a new target off to the side: turn in place until facing it
                if abs(bearing_error) > math.radians(env.task_fov_deg) / 2 - VIEW_MARGIN:  # not even in view
                    yaw_rate = SEARCH_YAW_RATE * self.limits[3]
                return self._command(0.0, 0.0, self._climb(target[2]), yaw_rate)
            self._plan(target)
        x, y, _ = env.vehicle_state.position
        travelled, off_path = progress_on_path(self._path, (x, y))
        if off_path > REPLAN_OFF_PATH:
            self._plan(target)
            travelled, _ = progress_on_path(self._path, (x, y))
        remaining = max(0.0, self._length - STOP_SHORT - travelled)
        speed = min(self.cruise, math.sqrt(2 * DECELERATION * remaining))
        ahead = point_at(self._path, min(travelled + LOOKAHEAD, self._length - STOP_SHORT))
        dx, dy = ahead[0] - x, ahead[1] - y
        norm = math.hypot(dx, dy)
        # Close to the goal, steer onto the stopping point itself so the vehicle settles there.
        if norm < 1e-6:
            vx = vy = 0.0
        else:
            gain = min(speed, 1.0 * norm) / norm
            vx, vy = gain * dx, gain * dy
        return self._command(vx, vy, self._climb(target[2]), yaw_rate)

    def _plan(self, target: tuple[float, float, float]) -> None:
        env = self.env
        x, y, _ = env.vehicle_state.position
        inflate = env.airframe.collision_radius + SAFETY_MARGIN
        self._path = plan_path((x, y), (target[0], target[1]), env.layout.obstacles, inflate, env.plan.bounds)
        self._length = path_length(self._path)
        self._planned_for = env.active_target


class FollowExpert(Expert):
    """Follow: track the point of the target's own (obstacle-free) path one stand-off behind it."""

    def act(self) -> np.ndarray:
        env = self.env
        path = env.target_path()
        step = min(env.steps, len(path) - 2)
        spacing = max(1e-6, math.dist(path[1][:2], path[0][:2]))
        behind = step - int(round(STANDOFF / spacing))
        if behind >= 0:
            desired = path[behind]
            feedforward = ((path[behind + 1][0] - desired[0]) / env.dt, (path[behind + 1][1] - desired[1]) / env.dt)
        else:  # the target has not yet travelled a stand-off: hold the start
            desired, feedforward = env.plan.start, (0.0, 0.0)
        x, y, _ = env.vehicle_state.position
        vx = feedforward[0] + 1.0 * (desired[0] - x)
        vy = feedforward[1] + 1.0 * (desired[1] - y)
        speed = math.hypot(vx, vy)
        if speed > self.limits[0]:
            vx, vy = vx * self.limits[0] / speed, vy * self.limits[0] / speed
        target = env.target_position()
        yaw_rate, _ = self._face(target)
        return self._command(vx, vy, self._climb(target[2]), yaw_rate)


def make_expert(env) -> Expert:
    """The privileged expert for `env` (a task environment, wrapped or not)."""
    task = env.unwrapped
    if isinstance(task, FollowEnv):
        return FollowExpert(task)
    if isinstance(task, FlyToTargetEnv):  # hike included: it is a chain of fly-to-target legs
        return TargetExpert(task)
    raise UnknownNameError("task environment", type(task).__name__, ["FlyToTargetEnv", "HikeEnv", "FollowEnv"])
