"""Pilots: whatever flies an environment, behind one small interface.

`expert` is the privileged demonstrator of the task; trained checkpoints and exported bundles plug in here too.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from navigator.errors import UserError

PILOT_CHOICES = ("expert",)


class Pilot(Protocol):
    name: str

    def reset(self) -> None: ...

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray: ...


class ExpertPilot:
    """The task's privileged expert (it reads the world, not the observation)."""

    name = "expert"

    def __init__(self, env) -> None:
        from sim_envs.experts import make_expert

        self._expert = make_expert(env)

    def reset(self) -> None:
        self._expert.reset()

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return self._expert.act()


def make_pilot(spec: str, env) -> Pilot:
    if spec == "expert":
        return ExpertPilot(env)
    raise UserError(f"unknown pilot {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
