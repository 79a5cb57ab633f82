"""What an evaluation flies: pilots, task, suites (preset specs), seeds and scenario, as a YAML-loadable config.

Every pilot flies the same (suite, seed) worlds, so comparisons between pilots are paired. Evaluation seeds start far
from the seeds demonstrations use (0, 1, ...) and below DAgger's (1,000,000 per round).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from navigator.config import MAX_SEED, SettingError, check_seed_span, check_settings, setting
from navigator.scenario import (HELD_OUT_SEED, CameraSettings, ScenarioConfig, canonical_airframe, canonical_pilot,
                                canonical_preset, canonical_task, set_canonical)


@dataclass(frozen=True, order=True)
class EpisodeKey:
    """One episode of an evaluation: pilot `pilot` (index into EvalSettings.pilots) in suite `suite` (index into
    EvalSettings.suites) from world seed `seed`. Ordered as reports list them: suite, pilot, seed."""

    suite: int
    pilot: int
    seed: int


@dataclass(frozen=True)
class EvalSettings:
    pilots: tuple[str, ...] = ("pretrained",)  # as `navigator fly --pilot` takes them
    task: str = "fly-to-target"
    suites: tuple[str, ...] = ("summer", "autumn", "winter", "night")  # preset specs, e.g. "night+wind"
    episodes: int = setting(20, ge=1)  # per suite and pilot: seeds seed, seed+1, ..., seed+episodes-1
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)
    airframe: str = "x500"
    camera: CameraSettings = field(default_factory=CameraSettings)
    max_seconds: float | None = setting(None, gt=0.0)  # None: the task's own limit

    def __post_init__(self) -> None:
        """Check ranges and names (before any world is built) and store names one way only ("winter + wind" as
        "winter+wind"), so that a suite given twice in two spellings is caught."""
        check_settings(self)
        check_seed_span(self.seed, self.episodes, "seed", "episodes")
        set_canonical(self, "task", canonical_task)
        set_canonical(self, "airframe", canonical_airframe)
        set_canonical(self, "pilots", lambda names: tuple(map(canonical_pilot, names)))
        set_canonical(self, "suites", lambda names: tuple(map(canonical_preset, names)))
        for name in ("pilots", "suites"):
            names = getattr(self, name)
            if not names:
                raise SettingError(name, "must name at least one")
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise SettingError(name, f"repeat {', '.join(repeated)}: give each once")
        _refuse_equivalent_suites(self.suites)

    @property
    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)

    def keys(self) -> list[EpisodeKey]:
        """Every episode, in report order."""
        return [EpisodeKey(s, p, seed) for s in range(len(self.suites)) for p in range(len(self.pilots))
                for seed in self.seeds]

    def scenario(self, suite: str) -> ScenarioConfig:
        return ScenarioConfig(task=self.task, preset=suite, airframe=self.airframe, camera=self.camera,
                              max_seconds=self.max_seconds)



def _refuse_equivalent_suites(suites: tuple[str, ...]) -> None:
    """Two specs that compose the same scenery (`winter+wind`, `wind+winter`) would fly the same worlds twice."""
    from sim_envs.presets import resolve_preset

    seen: dict[object, str] = {}
    for suite in suites:
        scenery = resolve_preset(suite)
        if scenery in seen:
            raise SettingError("suites", f"{seen[scenery]} and {suite} are the same scenery: give it once")
        seen[scenery] = suite
