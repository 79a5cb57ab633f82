"""Pilots: whatever flies an environment, behind one small interface.

`pretrained` is the shipped liquid policy, `expert` the privileged demonstrator of the task, and any policy
checkpoint written by `navigator train` flies too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from navigator.errors import UserError

PILOT_CHOICES = ("pretrained", "expert", "a policy checkpoint (.pt)")


def pretrained_checkpoint() -> Path:
    """The shipped policy: a CfC-NCP trained by `navigator train --config launch/train/fly_to_target.yaml`."""
    import policies  # lazy package: no torch import here

    return Path(policies.__file__).resolve().parent / "pretrained" / "fly-to-target-cfc-ncp.pt"


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


class CheckpointPilot:
    """A trained policy from a checkpoint, stepped in torch with its hidden state carried across steps."""

    def __init__(self, path: Path, env) -> None:
        import torch

        from policies.checkpoint import load_checkpoint
        from policies.preprocessing import crop_and_resize

        try:
            self._policy, self.metadata = load_checkpoint(path)
        except (OSError, ValueError) as error:
            raise UserError(str(error)) from None
        self.name = str(path)
        self._torch = torch
        self._crop_and_resize = crop_and_resize
        spec = self._policy.config.image
        camera = env.unwrapped.camera
        if (spec.input_height, spec.input_width) != (camera.height, camera.width):
            raise UserError(f"{path} was trained on {spec.input_width}x{spec.input_height} images but this scenario's "
                            f"camera gives {camera.width}x{camera.height}; fly it with the camera it was trained on")
        trained_on = self.metadata.get("airframe")
        if trained_on is not None and trained_on != env.unwrapped.airframe.name:
            raise UserError(f"{path} was trained on the {trained_on} airframe, not {env.unwrapped.airframe.name}: its "
                            f"actions are scaled by that airframe's limits; fly it with --airframe {trained_on}")
        self._dt = torch.tensor([env.unwrapped.dt], dtype=torch.float32)
        self.reset()

    def reset(self) -> None:
        self._hidden = self._policy.initial_hidden(1)

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        torch = self._torch
        frame = self._crop_and_resize(observation["image"], self._policy.config.image)
        with torch.inference_mode():
            action, self._hidden = self._policy.step(torch.from_numpy(frame)[None],
                                                     torch.from_numpy(observation["state"])[None], self._hidden,
                                                     self._dt)
        return action[0].numpy()


def make_pilot(spec: str, env) -> Pilot:
    """"pretrained" (the shipped policy), "expert", or the path of a policy checkpoint."""
    if spec == "expert":
        return ExpertPilot(env)
    path = pretrained_checkpoint() if spec == "pretrained" else Path(spec)
    if path.suffix == ".pt":
        if not path.is_file():
            raise UserError(f"pilot checkpoint {path} does not exist")
        return CheckpointPilot(path, env)
    raise UserError(f"unknown pilot {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
