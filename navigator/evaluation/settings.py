"""What an evaluation flies: pilots, task, suites (preset specs), stress sweeps, seeds and scenario, as a
YAML-loadable config.

Every pilot flies the same (suite, seed) worlds, so comparisons between pilots are paired. Evaluation seeds start far
from the seeds demonstrations use (0, 1, ...) and below DAgger's (1,000,000 per round). A sweep's levels are flown as
suites of their own (`navigator.evaluation.sweeps`), after the named suites: `flown_suites`. With `attention`, every
policy pilot's attention on target is measured every `attention_every` steps by saliency method `attention_method`;
left unset, `attention_every` becomes the method's own interval when the settings are built, so that eval.json records
the interval flown (and `--resume --attention-every 5` matches a folder started without it).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from navigator.config import (MAX_EPISODES, MAX_SEED, SettingError, check_seed_span, check_settings, from_dict, setting,
                              setting_check)
from navigator.evaluation.sweeps import SweepPoint, check_sweep, point_scenery, sweep_points
from navigator.explain.methods import DEFAULT_EVERY, canonical_method
from navigator.scenario import (HELD_OUT_SEED, CameraSettings, ScenarioConfig, canonical_airframe, canonical_pilot,
                                canonical_preset, canonical_task, check_time_limit, set_canonical, time_limit_setting)

_DEFAULT_SWEEP_BASE = "summer"
_DEFAULT_ATTENTION_METHOD = "visualbackprop"


@dataclass(frozen=True, order=True)
class EpisodeKey:
    """One episode of an evaluation: pilot `pilot` (index into EvalSettings.pilots) in suite `suite` (index into
    EvalSettings.suites) from world seed `seed`. Ordered as reports list them: suite, pilot, seed."""

    suite: int
    pilot: int
    seed: int


@dataclass(frozen=True)
class EvalSettings:
    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"workers": "--workers", "videos": "--videos", "backend": "--backend",
                                                  "address": "--address", "resume": "--resume", "extend": "--extend"}
    pilots: tuple[str, ...] = ("pretrained",)  # as `navigator fly --pilot` takes them
    task: str = "fly-to-target"
    suites: tuple[str, ...] = ("summer", "autumn", "winter", "night")  # preset specs, e.g. "night+wind"
    episodes: int = setting(20, ge=1, le=MAX_EPISODES)  # per suite and pilot: seeds seed, seed+1, ..., seed+episodes-1
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = time_limit_setting()  # None: the task's own limit
    sweeps: tuple[str, ...] = ()  # stress sweeps flown on top of sweep_base: noise | brightness | occlusion | wind
    sweep_levels: tuple[float, ...] = ()  # the one sweep's levels; empty: each sweep's default levels
    sweep_base: str = _DEFAULT_SWEEP_BASE  # the suite (preset spec) the sweeps' levels are applied to
    attention: bool = False  # measure each policy pilot's attention on target (navigator.explain.attention)
    attention_method: str = _DEFAULT_ATTENTION_METHOD  # a saliency method: navigator.explain.methods.METHODS
    # Camera steps between measurements; None: the method's own (DEFAULT_EVERY), filled in with `attention`.
    attention_every: int | None = setting(None, ge=1)

    def __post_init__(self) -> None:
        """Check ranges and names (before any world is built) and store names one way only ("winter + wind" as
        "winter+wind", "Integrated Gradients" as "integrated-gradients"), so that a suite given twice in two
        spellings is caught; with `attention`, an unset `attention_every` becomes the method's own interval."""
        check_settings(self)
        check_time_limit(self.max_seconds, self.camera)
        check_seed_span(self.seed, self.episodes, "seed", "episodes")
        set_canonical(self, "task", canonical_task)
        set_canonical(self, "airframe", canonical_airframe)
        set_canonical(self, "pilots", lambda names: tuple(map(_pilot, names)))
        set_canonical(self, "suites", lambda names: tuple(map(canonical_preset, names)))
        set_canonical(self, "sweep_base", canonical_preset)
        from sim_envs import normal_name

        set_canonical(self, "sweeps", lambda names: tuple(map(normal_name, names)))
        with setting_check("sweep_levels" if self.sweep_levels else "sweeps"):
            check_sweep(self.sweeps, self.sweep_levels)
        set_canonical(self, "attention_method", canonical_method)
        if self.attention and self.attention_every is None:
            object.__setattr__(self, "attention_every", DEFAULT_EVERY[self.attention_method])
        elif not self.attention and self.attention_every is not None:
            # Recorded but never used: the user meant to measure attention, or set the wrong key.
            raise SettingError("attention_every", "must come with {attention}: it sets how often attention is "
                                                  "measured; add {attention}, or drop {attention_every}",
                               ("attention", "attention_every"))
        # Settings read only with another one: given without it, they are recorded but never used.
        if not self.sweeps and self.sweep_base != _DEFAULT_SWEEP_BASE:
            raise SettingError("sweep_base", "must come with {sweeps}: it is the suite the sweeps' levels are "
                                             "applied to; add {sweeps}, or drop {sweep_base}", ("sweeps", "sweep_base"))
        if not self.attention and self.attention_method != _DEFAULT_ATTENTION_METHOD:
            raise SettingError("attention_method", "must come with {attention}: it is how attention is measured; "
                                                   "add {attention}, or drop {attention_method}",
                               ("attention", "attention_method"))
        for name in ("pilots", "suites"):
            names = getattr(self, name)
            if not names:
                raise SettingError(name, "must name at least one")
            # A checkpoint is one pilot however its path is spelt ("run/best.pt", "./run/best.pt").
            same = [_pilot_identity(n) for n in names] if name == "pilots" else list(names)
            repeated = [n for i, n in enumerate(names) if same[i] in same[:i]]
            if repeated:
                raise SettingError(name, f"{', '.join(repeated)} given more than once: give each once")
        _refuse_equivalent_suites(self.suites)
        planned = len(self.flown_suites) * len(self.pilots) * self.episodes
        if planned > MAX_EPISODES:
            raise SettingError("episodes", f"plans {planned:,} episodes in all ({len(self.flown_suites)} suites and "
                                           f"sweep levels x {len(self.pilots)} pilots x {self.episodes:,}), past the "
                                           f"{MAX_EPISODES:,} one evaluation may plan; give fewer {{episodes}}, "
                                           f"{{suites}} or {{sweeps}}", ("episodes", "suites", "sweeps"))

    @property
    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)

    @property
    def attention_interval(self) -> int:
        """Camera steps between two attention measurements: `attention_every` (the method's default if it was
        unset), also for settings recorded before the default was filled in."""
        return self.attention_every or DEFAULT_EVERY[self.attention_method]

    @property
    def sweep_points(self) -> tuple[SweepPoint, ...]:
        """Every level of every sweep, in order."""
        return sweep_points(self.sweep_base, self.sweeps, self.sweep_levels)

    @property
    def flown_suites(self) -> tuple[str, ...]:
        """The named suites, then one suite per sweep level ("summer@noise=8"): what EpisodeKey.suite indexes."""
        return self.suites + tuple(point.suite for point in self.sweep_points)

    def keys(self) -> list[EpisodeKey]:
        """Every episode, in report order."""
        return [EpisodeKey(s, p, seed) for s in range(len(self.flown_suites)) for p in range(len(self.pilots))
                for seed in self.seeds]

    def scenario(self, suite: str) -> ScenarioConfig:
        """The scenario of a flown suite (a sweep level's is its base suite's: `scenery` tells the difference)."""
        point = self._point(suite)
        return ScenarioConfig(task=self.task, preset=suite if point is None else point.base, airframe=self.airframe,
                              camera=self.camera, max_seconds=self.max_seconds)

    def scenery(self, suite: str):
        """The sim_envs Scenery a sweep level flies instead of its scenario's preset; None for a named suite."""
        point = self._point(suite)
        return None if point is None else point_scenery(point)

    def _point(self, suite: str) -> SweepPoint | None:
        return next((point for point in self.sweep_points if point.suite == suite), None)

    @classmethod
    def recorded(cls, data: dict[str, Any], key: str = "settings") -> EvalSettings:
        """Settings as a results file recorded them, checked as any, except that the checkpoints of its pilots need
        not exist any more: they were checked when the evaluation flew (reading results needs no checkpoint)."""
        token = _checking_files.set(False)
        try:
            return from_dict(cls, data, key)
        finally:
            _checking_files.reset(token)

    def flown_by(self, pilots: tuple[str, ...], **changes: Any) -> EvalSettings:
        """These settings with `pilots` (and `changes`) instead, pilots that flew them already (as `recorded`: their
        checkpoints need not exist any more), to read or merge recorded results."""
        token = _checking_files.set(False)
        try:
            return replace(self, pilots=pilots, **changes)
        finally:
            _checking_files.reset(token)


# False while recorded settings are read: a checkpoint pilot is then kept as recorded, without looking for its file.
_checking_files: ContextVar[bool] = ContextVar("checking_files", default=True)


def _pilot(spec: str) -> str:
    if _checking_files.get() or not isinstance(spec, str) or spec.strip().lower() in ("pretrained", "expert"):
        return canonical_pilot(spec)
    return spec



def _refuse_equivalent_suites(suites: tuple[str, ...]) -> None:
    """Two specs that compose the same scenery (`winter+wind`, `wind+winter`) would fly the same worlds twice."""
    from sim_envs.presets import resolve_preset

    seen: dict[object, str] = {}
    for suite in suites:
        scenery = resolve_preset(suite)
        if scenery in seen:
            raise SettingError("suites", f"{seen[scenery]} and {suite} are the same scenery: give it once")
        seen[scenery] = suite


def _pilot_identity(pilot: str) -> str:
    """What a pilot spec names: the keyword, the real path of a checkpoint, or the real path of a bundle's folder
    (a bundle given as "b" and as "b/policy.json" is one pilot)."""
    from navigator.pilots import BUNDLE_MANIFEST

    if pilot in ("expert", "pretrained"):
        return pilot
    path = Path(pilot)
    return os.path.realpath(path.parent if path.name == BUNDLE_MANIFEST else path)
