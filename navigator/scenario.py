"""The scenario a command flies in (task, preset, airframe, camera), as a YAML-loadable config, and the environment
factory every pipeline (fly, collect, eval, sitl) shares, so that they all build the world the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from navigator.errors import UserError


@dataclass(frozen=True)
class CameraSettings:
    width: int = 64
    height: int = 48
    fov_deg: float = 80.0
    tilt_deg: float = 0.0
    rate_hz: int = 30


@dataclass(frozen=True)
class ScenarioConfig:
    task: str = "fly-to-target"
    preset: str = "summer"
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = None  # None: the task's own limit


def make_scenario_env(scenario: ScenarioConfig, render_mode: str | None = None):
    """The gymnasium environment for a scenario; bad names and settings become UserErrors that list the choices."""
    from sim_envs import make_env
    from sim_envs.camera import CameraConfig

    try:
        camera = CameraConfig(**dataclasses.asdict(scenario.camera))
        return make_env(scenario.task, preset=scenario.preset, airframe=scenario.airframe, camera=camera,
                        max_seconds=scenario.max_seconds, render_mode=render_mode)
    except ValueError as error:
        raise UserError(str(error)) from None
