"""Stress sweeps: one knob of the scenery (sensor noise, exposure, occluders, wind) turned up level by level on top of
a base suite, as the liquid-network papers chart robustness. Every level flies the same worlds (seeds) as the others
and every pilot the same worlds as the others, so the curves are paired.

A level is flown as a suite of its own, named `BASE@KIND=LEVEL` ("summer@noise=8"): its episodes, records and
summaries are those of any suite; `point_scenery` gives the scenery the environment flies there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sim_envs is imported only where a scenery is made: naming a sweep builds no world
    from sim_envs.scenery import Scenery

# The `wind` preset's gusts per m/s of steady wind (1.5 m/s of gusts on 2 m/s) and their time constant.
GUST_SHARE = 0.75
GUST_TIME_CONSTANT = 1.5


@dataclass(frozen=True)
class SweepKind:
    """One kind of stress: what a level means (`unit`), the default levels, and how a level changes a scenery."""

    name: str
    unit: str
    levels: tuple[float, ...]
    apply: Callable[[Scenery, float], Scenery]
    whole: bool = False  # levels are counts (whole numbers)
    low: float = 0.0  # the smallest valid level
    high: float | None = None  # the largest valid level, None: no limit


def _noise(scenery: Scenery, level: float) -> Scenery:
    return dataclasses.replace(scenery, noise_std=level)


def _brightness(scenery: Scenery, level: float) -> Scenery:
    return dataclasses.replace(scenery, exposure=scenery.exposure * level)


def _occlusion(scenery: Scenery, level: float) -> Scenery:
    return dataclasses.replace(scenery, occlusion_patches=int(level))


def _wind(scenery: Scenery, level: float) -> Scenery:
    from sim_envs.wind import WindConfig

    return dataclasses.replace(scenery, wind=WindConfig(steady_speed=level, gust_std=GUST_SHARE * level,
                                                        gust_time_constant=GUST_TIME_CONSTANT))


KINDS: dict[str, SweepKind] = {kind.name: kind for kind in (
    SweepKind("noise", "sensor noise std (grey levels)", (0, 4, 8, 12, 16, 24), _noise, high=255.0),
    SweepKind("brightness", "exposure factor", (1.0, 0.6, 0.35, 0.2, 0.1, 0.05), _brightness, high=4.0),
    SweepKind("occlusion", "black patches", (0, 1, 2, 3, 4, 5), _occlusion, whole=True, high=20.0),
    SweepKind("wind", "steady wind (m/s)", (0, 1, 2, 3, 4, 5), _wind, high=20.0),
)}


@dataclass(frozen=True)
class SweepPoint:
    """Level `level` of sweep `kind` on top of suite `base`."""

    base: str
    kind: str
    level: float

    @property
    def suite(self) -> str:
        """The suite name its episodes are recorded under: "summer@noise=8"."""
        return f"{self.base}@{self.kind}={self.level:g}"


def check_sweep(kinds: tuple[str, ...], levels: tuple[float, ...]) -> None:
    """ValueError naming the problem: an unknown or repeated kind, levels given for several kinds at once, a level
    out of its kind's range or not whole where counts are swept, or a level given twice."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown sweep {kind!r}; valid sweeps are: {', '.join(KINDS)}")
    repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if repeated:
        raise ValueError(f"sweep {', '.join(repeated)} given more than once: give each once")
    if not levels:
        return
    if len(kinds) != 1:
        raise ValueError("levels need exactly one sweep to apply to; sweep one kind at a time to set its levels")
    kind = KINDS[kinds[0]]
    for level in levels:
        if level < kind.low or (kind.high is not None and level > kind.high):
            raise ValueError(f"{kind.name} level {level:g} is out of range: give levels from {kind.low:g} to "
                             f"{kind.high:g} ({kind.unit})")
        if kind.whole and level != int(level):
            raise ValueError(f"{kind.name} levels count {kind.unit}: give whole numbers, not {level:g}")
    if len({f"{level:g}" for level in levels}) != len(levels):  # as suite names tell them apart
        raise ValueError("a level is given twice: give each once")


def sweep_points(base: str, kinds: tuple[str, ...], levels: tuple[float, ...]) -> tuple[SweepPoint, ...]:
    """Every level of every kind (`levels` when given, for the one kind, else each kind's defaults), in order."""
    return tuple(SweepPoint(base, kind, float(level)) for kind in kinds for level in (levels or KINDS[kind].levels))


def point_scenery(point: SweepPoint) -> Scenery:
    """The scenery flown at `point`: the base suite's, with the kind's knob set to the level."""
    from sim_envs.presets import resolve_preset

    return KINDS[point.kind].apply(resolve_preset(point.base), point.level)


@dataclass(frozen=True)
class SweepLine:
    """One pilot's success at each level of a sweep (rates and Wilson 95% intervals, in the levels' order)."""

    pilot: str
    successes: tuple[int, ...]
    success_rates: tuple[float, ...]
    success_intervals: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class SweepCurve:
    """A sweep's outcome: `kind` on top of `base` at `levels` (flown as `suites`), one line per pilot."""

    kind: str
    base: str
    unit: str
    levels: tuple[float, ...]
    suites: tuple[str, ...]
    episodes: int  # per level and pilot
    lines: tuple[SweepLine, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "base": self.base, "unit": self.unit, "levels": list(self.levels),
                "suites": list(self.suites), "episodes": self.episodes,
                "lines": [{"pilot": line.pilot, "successes": list(line.successes),
                           "success_rates": list(line.success_rates),
                           "success_intervals": [list(interval) for interval in line.success_intervals]}
                          for line in self.lines]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepCurve:
        lines = tuple(SweepLine(line["pilot"], tuple(line["successes"]), tuple(line["success_rates"]),
                                tuple(tuple(interval) for interval in line["success_intervals"]))
                      for line in data["lines"])
        return cls(data["kind"], data["base"], data["unit"], tuple(data["levels"]), tuple(data["suites"]),
                   data["episodes"], lines)
