"""The simulated world: airframes, flight-controller emulation, camera, sceneries, tasks and privileged experts.

Importing this package registers the tasks with gymnasium under the `navigator/` namespace:

    gymnasium.make("navigator/FlyToTarget-v0", preset="winter+wind")
"""

from __future__ import annotations

import importlib.util
import re

import gymnasium

from sim_envs.errors import InvalidNameError, UnknownNameError

if importlib.util.find_spec("pybullet") is not None:  # absent on a companion computer, which never simulates
    from sim_envs import _pybullet  # noqa: F401  (the first, silenced import of pybullet: no build banner)

# CLI task name -> gymnasium id.
TASKS: dict[str, str] = {
    "fly-to-target": "navigator/FlyToTarget-v0",
    "hike": "navigator/Hike-v0",
    "follow": "navigator/Follow-v0",
}

_ENTRY_POINTS = {
    "navigator/FlyToTarget-v0": "sim_envs.tasks.fly_to_target:FlyToTargetEnv",
    "navigator/Hike-v0": "sim_envs.tasks.hike:HikeEnv",
    "navigator/Follow-v0": "sim_envs.tasks.follow:FollowEnv",
}

for _env_id, _entry_point in _ENTRY_POINTS.items():
    if _env_id not in gymnasium.registry:
        # No TimeLimit wrapper: each task ends itself on timeout, with `info["ending"] == "timeout"`.
        gymnasium.register(_env_id, entry_point=_entry_point)


def normal_name(name: str) -> str:
    """The one way names are compared (tasks, airframes, preset parts, and in `navigator` models, strategies,
    methods, sweeps and pilot keywords): surrounding space dropped, lower-cased, and each run of spaces, underscores
    and hyphens read as one hyphen, so that "HIKE" and " hike " are the task `hike`, and "Fly to target",
    "fly_to_target" and "CfC NCP" are `fly-to-target` and `cfc-ncp`."""
    return re.sub(r"[\s_-]+", "-", name.strip().lower())


def canonical_task(name: str) -> str:
    """A task's CLI name in any case ("HIKE"), or its gymnasium id -> the CLI name ("hike"); unknown names are an
    UnknownNameError (a ValueError) that lists the valid ones."""
    if not isinstance(name, str):
        raise InvalidNameError(f"task must be a string such as 'hike', got {name!r}")
    if normal_name(name) in TASKS:
        return normal_name(name)
    for cli_name, env_id in TASKS.items():
        if name.strip() == env_id:
            return cli_name
    raise UnknownNameError("task", name, list(TASKS))


def task_id(name: str) -> str:
    """A CLI task name ("fly-to-target", any case) or a gymnasium id -> the gymnasium id; unknown names list the valid
    ones."""
    return TASKS[canonical_task(name)]


def make_env(task: str, **kwargs):
    """`gymnasium.make` for a task by CLI name or id, e.g. make_env("hike", preset="night")."""
    return gymnasium.make(task_id(task), **kwargs)
