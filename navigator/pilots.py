"""Pilots: whatever flies an environment, behind one small interface.

`pretrained` is the shipped liquid policy, `expert` the privileged demonstrator of the task; any policy checkpoint
written by `navigator train` flies too (in PyTorch), and so does any bundle written by `navigator export` (through
ONNX Runtime, as the onboard runtime flies it).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from navigator.errors import UserError

if TYPE_CHECKING:  # torch is imported only when a checkpoint flies
    from policies.heads import Hidden
    from policies.policy import Policy

PILOT_CHOICES = ("pretrained", "expert", "a policy checkpoint (.pt)", "an exported bundle (its folder or policy.json)")
BUNDLE_MANIFEST = "policy.json"  # navigator.onboard.bundle.MANIFEST_NAME, without importing onnxruntime here


@contextmanager
def one_math_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 while inside (when torch is loaded: a policy pilot loads it), as in eval's
    worker processes. Every policy call is one batch-1 step of a small network: threads gain nothing on it, where
    the cores are busy their synchronisation made a step 100x slower (114 ms instead of 0.7 ms, measured under load
    9 on 2 cores), and one thread everywhere lets `navigator fly` reproduce `navigator eval`'s flight of a seed."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def is_bundle(path: Path) -> bool:
    """Whether `path` names an exported bundle: its policy.json, or a folder holding one."""
    return path.name == BUNDLE_MANIFEST or (path.is_dir() and (path / BUNDLE_MANIFEST).is_file())


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


def shipped_policy_now(sha256: str) -> Path | None:
    """The policy file under policies/pretrained (the shipped ones and those kept under previous/) whose content has
    `sha256`, or None: where a policy that was `pretrained` once is kept after the shipped one was replaced."""
    import policies  # lazy package: no torch import here
    from navigator.dataset import file_sha256

    folder = Path(policies.__file__).resolve().parent / "pretrained"
    return next((path for path in sorted(folder.rglob("*.pt")) if file_sha256(path) == sha256), None)


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


class ScenarioMismatch(UserError):
    """`check_scenario`'s refusal: each way the scenario differs from the policy's training (`differences`, e.g.
    "P was trained on the x500 airframe, not tiny"), each followed in the message by how to fly it instead
    (`advice`, e.g. "fly it with --airframe x500"). A command that cannot fly otherwise (explain of a recorded
    episode) restates the differences with advice of its own."""

    def __init__(self, differences: list[str], advice: list[str]) -> None:
        super().__init__("; and ".join(f"{found}; {fix}" for found, fix in zip(differences, advice)))
        self.differences = differences
        self.advice = advice

    def __reduce__(self):  # raised in worker processes: pickled by its arguments
        return type(self), (self.differences, self.advice)


def check_scenario(name: str, env, camera_key: str, trained_camera: dict[str, Any], airframe: str | None,
                   tasks: list[str]) -> None:
    """Refuse to fly a policy (`name`) in a scenario other than the one it learnt: another camera setting of
    CAMERA_SETTINGS than `trained_camera`'s, another airframe than `airframe`, a task not in `tasks` (None/empty:
    not recorded, not checked). One ScenarioMismatch names every difference and how to set it. `camera_key` is where the
    scenario's camera lives in the command's --config YAML (`scenario.camera` for fly, `camera` for eval).

    What the policy records is checked first against what a scenario can be (known task and airframe names, a camera
    within CameraSettings' bounds): the advice below repeats those values, and must never suggest one that is refused.
    """
    from navigator.scenario import CameraSettings, canonical_airframe, canonical_task

    def recorded(what: str, canonical, value):
        try:
            return canonical(value)
        except (TypeError, ValueError) as error:
            raise UserError(f"{name} records {what} that no scenario has ({error}): it was edited, or written by "
                            f"another version of navigator; export or train it again") from None

    tasks = [recorded("a task", canonical_task, task) for task in tasks]
    if airframe is not None:
        airframe = recorded("an airframe", canonical_airframe, airframe)
    recorded("a camera", lambda camera: CameraSettings(**camera), {k: trained_camera[k] for k in CAMERA_SETTINGS
                                                                    if k in trained_camera})
    description = env.unwrapped.description()
    camera = description.camera
    differing = [setting for setting in CAMERA_SETTINGS
                 if setting in trained_camera and not math.isclose(float(trained_camera[setting]),
                                                                   float(getattr(camera, setting)),
                                                                   rel_tol=1e-9, abs_tol=1e-9)]
    problems, advice = [], []
    if differing:
        listed = ", ".join(f"{setting} {trained_camera[setting]} (this scenario has {getattr(camera, setting)})"
                           for setting in differing)
        fix = ", ".join(f"{setting}: {trained_camera[setting]}" for setting in differing)
        *parents, leaf = camera_key.split(".")
        yaml = "{" + leaf + ": {" + fix + "}}"
        for parent in reversed(parents):
            yaml = "{" + parent + ": " + yaml + "}"
        problems.append(f"{name} was trained with another camera: {listed}")
        advice.append(f"fly it with the camera it was trained on, set in a YAML file given with --config: "
                      f"{yaml[1:-1]}")
    if airframe is not None and airframe != description.airframe:
        problems.append(f"{name} was trained on the {airframe} airframe, not {description.airframe}: its actions "
                        f"are scaled by that airframe's limits")
        advice.append(f"fly it with --airframe {airframe}")
    # The task is what the demonstrations showed: a policy that learnt to stop 1 m from a target does not know
    # to hold 2.5 m behind a moving one.
    if tasks and description.task not in tasks:
        problems.append(f"{name} was trained on {' and '.join(tasks)} demonstrations, not {description.task}")
        advice.append(f"use it with --task {' or --task '.join(tasks)}, or train a policy for {description.task}")
    if problems:
        raise ScenarioMismatch(problems, advice)


def _refuse_non_finite(name: str, action: np.ndarray, seconds: float) -> None:
    if not np.isfinite(action).all():
        raise UserError(f"{name} produced a non-finite action at t={seconds:.2f}s; the policy is unusable: retrain "
                        f"it or pick another checkpoint")


class CheckpointPilot:
    """A trained policy from a checkpoint, stepped in torch with its hidden state carried across steps.

    It flies only the camera and airframe it learnt on: another field of view, tilt or rate shows it a world it never
    saw (the preprocessing crops for the trained field of view; dt drives the liquid head's time constants), so every
    differing setting is refused, named, with how to set it (`check_scenario`)."""

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
        spec = self._policy.config.image
        # Older checkpoints may record no camera: their image spec still gives the size and field of view.
        trained = {"width": spec.input_width, "height": spec.input_height, "fov_deg": spec.input_hfov_deg,
                   **{k: v for k, v in (self.metadata.get("camera") or {}).items() if k in CAMERA_SETTINGS}}
        tasks = sorted({r.get("task") for r in self.metadata.get("training_seeds") or [] if r.get("task")})
        check_scenario(str(path), env, camera_key, trained, self.metadata.get("airframe"), tasks)
        self._dt_s = env.unwrapped.description().dt
        self._dt = torch.tensor([self._dt_s], dtype=torch.float32)
        self.reset()

    @property
    def policy(self) -> Policy:
        """The torch policy it flies: what saliency is computed on."""
        return self._policy

    @property
    def hidden(self) -> Hidden:
        """The recurrent state the next `act` starts from (batch 1)."""
        return self._hidden

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
        _refuse_non_finite(self.name, action, self._steps * self._dt_s)
        self._steps += 1
        return action


class BundlePilot:
    """An exported bundle (`navigator export`) flown through ONNX Runtime by `navigator.onboard.bundle.BundlePolicy`,
    the runtime the companion computer uses, with the same refusals as CheckpointPilot from what policy.json records
    (camera, airframe, task). A bundle that fails its checks (checksum, schema, graph shapes) is a UserError."""

    def __init__(self, path: Path, env, camera_key: str = "scenario.camera") -> None:
        from navigator.onboard.bundle import BundlePolicy, load_bundle
        from policies.preprocessing import crop_and_resize

        self.bundle = load_bundle(path)
        self.manifest = self.bundle.manifest
        self.name = str(path)
        check_scenario(str(path), env, camera_key, self.bundle.camera, self.bundle.airframe, [self.bundle.task])
        self._crop_and_resize = crop_and_resize
        self._policy = BundlePolicy(self.bundle)
        self._dt_s = env.unwrapped.description().dt
        self.reset()

    def reset(self) -> None:
        self._policy.reset()
        self._steps = 0

    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The bundle's action for this observation; a non-finite one is a UserError, as for a checkpoint."""
        frame = self._crop_and_resize(observation["image"], self.bundle.image_spec)
        action = self._policy.step(frame, observation["state"], self._dt_s)
        _refuse_non_finite(self.name, action, self._steps * self._dt_s)
        self._steps += 1
        return action


def make_pilot(spec: str, env, camera_key: str = "scenario.camera") -> Pilot:
    """"pretrained" (the shipped policy of the env's task), "expert", the path of a policy checkpoint, or an
    exported bundle (its folder or policy.json). `camera_key`: where the command's --config YAML sets the camera,
    for the message that refuses a policy trained on another one."""
    if spec == "expert":
        return ExpertPilot(env)
    path = pretrained_checkpoint(env.unwrapped.description().task) if spec == "pretrained" else Path(spec)
    if is_bundle(path):
        return BundlePilot(path, env, camera_key)
    if path.suffix == ".pt":
        if not path.is_file():
            raise UserError(f"pilot checkpoint {path} does not exist")
        return CheckpointPilot(path, env, camera_key)
    raise UserError(f"unknown pilot {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
