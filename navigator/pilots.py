"""Pilots: whatever flies an environment, behind one small interface.

`pretrained` is the shipped liquid policy, `expert` the privileged demonstrator of the task, and any policy
checkpoint written by `navigator train` flies too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from navigator.errors import UserError

PILOT_CHOICES = ("pretrained", "expert", "a policy checkpoint (.pt)")


def pretrained_checkpoint(task: str) -> Path:
    """The shipped policy of `task` (a CLI task name): the CfC-NCP that `navigator train --config
    launch/train/<task>.yaml` trains, with its evaluation report beside it (policies/pretrained/README.md).
    UserError when no policy is shipped for the task."""
    import policies  # lazy package: no torch import here

    folder = Path(policies.__file__).resolve().parent / "pretrained"
    path = folder / f"{task}-cfc-ncp.pt"
    if not path.is_file():
        shipped = sorted(p.name.removesuffix("-cfc-ncp.pt") for p in folder.glob("*-cfc-ncp.pt"))
        raise UserError(f"no pretrained policy is shipped for the task {task!r} (shipped: {', '.join(shipped)}); "
                        f"fly --pilot expert, or train one: navigator train --data DATASET --out runs/NAME")
    return path


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


# The camera settings a checkpoint records (from the demonstrations it learnt on), in the order a message lists them.
CAMERA_SETTINGS = ("width", "height", "fov_deg", "tilt_deg", "rate_hz")


class CheckpointPilot:
    """A trained policy from a checkpoint, stepped in torch with its hidden state carried across steps.

    It flies only the camera and airframe it learnt on: another field of view, tilt or rate shows it a world it never
    saw (the preprocessing crops for the trained field of view; dt drives the liquid head's time constants), so every
    differing setting is refused, named, with how to set it. `camera_key` is where the scenario's camera lives in the
    command's --config YAML (`scenario.camera` for fly, `camera` for eval)."""

    def __init__(self, path: Path, env, camera_key: str = "scenario.camera") -> None:
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
        self._check_scenario(path, env, camera_key)
        self._dt = torch.tensor([env.unwrapped.dt], dtype=torch.float32)
        self._dt_s = float(env.unwrapped.dt)
        self.reset()

    def _check_scenario(self, path: Path, env, camera_key: str) -> None:
        spec = self._policy.config.image
        # Older checkpoints may record no camera: their image spec still gives the size and field of view.
        trained = {"width": spec.input_width, "height": spec.input_height, "fov_deg": spec.input_hfov_deg,
                   **{k: v for k, v in (self.metadata.get("camera") or {}).items() if k in CAMERA_SETTINGS}}
        camera = env.unwrapped.camera
        differing = [name for name in CAMERA_SETTINGS
                     if name in trained and not math.isclose(float(trained[name]), float(getattr(camera, name)),
                                                             rel_tol=1e-9, abs_tol=1e-9)]
        problems = []
        if differing:
            listed = ", ".join(f"{name} {trained[name]} (this scenario has {getattr(camera, name)})"
                               for name in differing)
            fix = ", ".join(f"{name}: {trained[name]}" for name in differing)
            *parents, leaf = camera_key.split(".")
            yaml = "{" + leaf + ": {" + fix + "}}"
            for parent in reversed(parents):
                yaml = "{" + parent + ": " + yaml + "}"
            problems.append(f"{path} was trained with another camera: {listed}; fly it with the camera it was "
                            f"trained on, set in a YAML file given with --config: {yaml[1:-1]}")
        trained_on = self.metadata.get("airframe")
        if trained_on is not None and trained_on != env.unwrapped.airframe.name:
            problems.append(f"{path} was trained on the {trained_on} airframe, not {env.unwrapped.airframe.name}: "
                            f"its actions are scaled by that airframe's limits; fly it with --airframe {trained_on}")
        # The task is what the demonstrations showed: a policy that learnt to stop 1 m from a target does not know
        # to hold 2.5 m behind a moving one.
        tasks = sorted({r.get("task") for r in self.metadata.get("training_seeds") or [] if r.get("task")})
        task = env.unwrapped.task_name
        if tasks and task not in tasks:
            problems.append(f"{path} was trained on {' and '.join(tasks)} demonstrations, not {task}: fly it with "
                            f"--task {tasks[0]}, or train a policy for {task}")
        if problems:
            raise UserError("; and ".join(problems))

    def reset(self) -> None:
        self._hidden = self._policy.initial_hidden(1)
        self._steps = 0

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The policy's action for this observation; a non-finite one (weights that overflow on this input) is a
        UserError, as no flight can use it."""
        torch = self._torch
        frame = self._crop_and_resize(observation["image"], self._policy.config.image)
        with torch.inference_mode():
            action, self._hidden = self._policy.step(torch.from_numpy(frame)[None],
                                                     torch.from_numpy(observation["state"])[None], self._hidden,
                                                     self._dt)
        action = action[0].numpy()
        if not np.isfinite(action).all():
            raise UserError(f"{self.name} produced a non-finite action at t={self._steps * self._dt_s:.2f}s; the "
                            f"policy is unusable: retrain it or pick another checkpoint")
        self._steps += 1
        return action


def make_pilot(spec: str, env, camera_key: str = "scenario.camera") -> Pilot:
    """"pretrained" (the shipped policy of the env's task), "expert", or the path of a policy checkpoint.
    `camera_key`: where the command's --config YAML sets the camera, for the message that refuses a checkpoint
    trained on another one."""
    if spec == "expert":
        return ExpertPilot(env)
    path = pretrained_checkpoint(env.unwrapped.task_name) if spec == "pretrained" else Path(spec)
    if path.suffix == ".pt":
        if not path.is_file():
            raise UserError(f"pilot checkpoint {path} does not exist")
        return CheckpointPilot(path, env, camera_key)
    raise UserError(f"unknown pilot {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
