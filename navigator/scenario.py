"""The scenario a command flies in (task, preset, airframe, camera), as a YAML-loadable config, and the environment
factory every pipeline (fly, collect, eval, sitl) shares, so that they all build the world the same way.

Names are checked and normalised when the config is built (`winter + wind` is stored as `winter+wind`, ` HIKE ` as
`hike`), before any world is made, so a bad name costs nothing and a good one is recorded one way only. Every name
(task, preset, airframe, pilot keyword) is normalised the same way, `sim_envs.normal_name`; paths stay as given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navigator.config import SettingError, check_settings, setting, setting_check
from navigator.errors import UserError

PHYSICS_HZ = 240  # the world's physics rate; the camera rate must divide it
# The longest episode any command flies: an hour, far beyond every task's own limit (75 s at most). Without a bound a
# typo such as 1e300 plans a path of that many steps (follow) or holds a real-time SITL run forever.
MAX_EPISODE_SECONDS = 3600.0


# The first world seed `fly` and `eval` use by default: far from the seeds training recipes fly (demonstrations
# count up from 0, DAgger round r uses 1,000,000·r), so that judging a policy never replays a world it trained in.
HELD_OUT_SEED = 100_000


@dataclass(frozen=True)
class CameraSettings:
    width: int = setting(64, ge=8, le=1024)
    height: int = setting(48, ge=8, le=1024)
    fov_deg: float = setting(80.0, ge=10.0, le=170.0)
    tilt_deg: float = setting(0.0, ge=-90.0, le=90.0)
    rate_hz: int = setting(30, ge=1, le=PHYSICS_HZ)

    def __post_init__(self) -> None:
        check_settings(self)
        if PHYSICS_HZ % self.rate_hz:
            valid = ", ".join(str(r) for r in range(1, PHYSICS_HZ + 1) if PHYSICS_HZ % r == 0)
            # A SettingError, so that the message names the option or key that set the rate (--camera-rate).
            raise SettingError("rate_hz", f"{self.rate_hz} Hz does not divide the physics rate {PHYSICS_HZ} Hz; "
                                          f"use one of {valid}")


def time_limit_setting() -> Any:
    """The `max_seconds` field every flying config declares: None (the task's own limit) or (0, MAX_EPISODE_SECONDS]."""
    return setting(None, gt=0.0, le=MAX_EPISODE_SECONDS)


def check_time_limit(max_seconds: float | None, camera: CameraSettings) -> None:
    """Refuse a time limit shorter than one camera step: the episode would end before the policy acts once (the
    limit is checked after each step). A SettingError naming `max_seconds` and the camera rate."""
    step = 1.0 / camera.rate_hz
    if max_seconds is not None and max_seconds < step:
        raise SettingError("max_seconds", f"must be at least one camera step ({step:.4g} s at {{camera.rate_hz}} "
                                          f"{camera.rate_hz} Hz), got {max_seconds:g}: the episode would end before "
                                          f"the policy acts once; give a longer {{max_seconds}}, or leave it unset for "
                                          f"the task's own limit", ("camera.rate_hz", "max_seconds"))


def canonical_task(name: str) -> str:
    """The task's CLI name ("HIKE" -> "hike"), or a ValueError listing the valid ones."""
    from sim_envs import canonical_task as canonical

    return canonical(name)


def canonical_airframe(name: str) -> str:
    """The airframe's name ("CF2X" -> "cf2x"), or a ValueError listing the valid ones."""
    from sim_envs.airframe import canonical_airframe as canonical

    return canonical(name)


def canonical_preset(spec: str) -> str:
    """"winter + wind" -> "winter+wind"; unknown or empty names are a ValueError that echoes `spec`."""
    from sim_envs.presets import canonical_preset as canonical

    return canonical(spec)


def canonical_pilot(spec: str) -> str:
    """"pretrained", "expert" (in any case: " Expert " -> "expert"), the path of an existing policy checkpoint (.pt)
    or of an exported bundle (its folder or policy.json), kept as given (paths are case-sensitive); anything else is
    a ValueError that lists the choices. Checked here, not when the pilot is made, so that a typo costs no world
    building."""
    from navigator.pilots import BUNDLE_MANIFEST, PILOT_CHOICES, is_bundle
    from sim_envs import normal_name

    if not isinstance(spec, str):
        raise ValueError(f"pilot must be a string, got {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
    if normal_name(spec) in ("pretrained", "expert"):
        return normal_name(spec)
    if not spec.strip():  # Path("") is the current folder: say what is wrong, not what that folder lacks
        raise ValueError(f"pilot is empty; valid pilots are: {', '.join(PILOT_CHOICES)}")
    path = Path(spec)
    if is_bundle(path):
        if not path.exists():
            raise ValueError(f"pilot bundle {spec} does not exist")
        return spec
    if path.suffix != ".pt":
        if path.is_dir() and (path / "best.pt").is_file():  # a training run's folder: its policy is best.pt
            raise ValueError(f"pilot {spec} is a training run's folder; give its policy: {path / 'best.pt'}")
        if (path / BUNDLE_MANIFEST).is_dir():
            raise ValueError(f"pilot {spec}: its {BUNDLE_MANIFEST} is a folder, not a file; export the bundle again "
                             f"with navigator export")
        if path.is_dir():
            raise ValueError(f"pilot {spec} is a folder without {BUNDLE_MANIFEST}: give an exported bundle's folder "
                             f"or a policy checkpoint (.pt)")
        raise ValueError(f"unknown pilot {spec!r}; valid pilots are: {', '.join(PILOT_CHOICES)}")
    if path.is_dir():
        raise ValueError(f"pilot checkpoint {spec} is a folder, not a checkpoint file; give the path of a .pt file "
                         f"(e.g. RUN/best.pt)")
    if not path.is_file():
        raise ValueError(f"pilot checkpoint {spec} does not exist")
    return spec


def set_canonical(config: object, name: str, canonical: Callable[[str], str]) -> None:
    """Replace field `name` of frozen dataclass `config` by its canonical form; a bad value is a SettingError."""
    with setting_check(name):
        object.__setattr__(config, name, canonical(getattr(config, name)))


@dataclass(frozen=True)
class ScenarioConfig:
    task: str = "fly-to-target"
    preset: str = "summer"
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = time_limit_setting()  # None: the task's own limit

    def __post_init__(self) -> None:
        check_settings(self)
        check_time_limit(self.max_seconds, self.camera)
        set_canonical(self, "task", canonical_task)
        set_canonical(self, "preset", canonical_preset)
        set_canonical(self, "airframe", canonical_airframe)


def make_scenario_env(scenario: ScenarioConfig, render_mode: str | None = None):
    """The gymnasium environment for a scenario; bad names and settings become UserErrors that list the choices,
    and a GUI asked for where no X display answers becomes one that says how to get one."""
    from sim_envs import make_env
    from sim_envs.camera import CameraConfig
    from sim_envs.errors import NoDisplayError

    try:
        camera = CameraConfig(**dataclasses.asdict(scenario.camera))
        return make_env(scenario.task, preset=scenario.preset, airframe=scenario.airframe, camera=camera,
                        max_seconds=scenario.max_seconds, render_mode=render_mode)
    except ValueError as error:
        raise UserError(str(error)) from None
    except NoDisplayError as error:
        raise UserError(f"--gui: {error.reason}; on a headless machine run under `xvfb-run -a`, or drop --gui "
                        f"and record --video instead") from None
