"""A world's layout generated from a `Scenery` and a seed, as plain data: obstacles, decoys, bounds, sun, texture seed.

The layout is computed before anything is built, so that the collision world, the rendered world and the privileged
expert all read one description (`sim_envs.bodies` builds it into PyBullet clients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim_envs.camera import Lighting
from sim_envs.scenery import Color, Scenery


@dataclass(frozen=True)
class Obstacle:
    kind: str  # "tree" or "pillar"
    x: float
    y: float
    radius: float  # trunk radius, or half the side of a pillar
    height: float
    crown_radius: float  # 0 for a bare tree or a pillar
    color: Color  # crown colour (trees) or body colour (pillars)

    @property
    def crown_center_z(self) -> float:
        return self.height + 0.5 * self.crown_radius


@dataclass(frozen=True)
class Bounds:
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    z_max: float = 6.0

    def contains(self, x: float, y: float, z: float) -> bool:
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max and z <= self.z_max


@dataclass(frozen=True)
class Decoy:
    """A sphere of the target's size that is not the target: its centre (x, y, z) in metres and its RGB colour."""
    position: tuple[float, float, float]
    color: Color


@dataclass(frozen=True)
class Layout:
    bounds: Bounds
    obstacles: tuple[Obstacle, ...]
    decoys: tuple[Decoy, ...]
    lighting: Lighting
    texture_seed: int


def generate_layout(scenery: Scenery, rng: np.random.Generator, bounds: Bounds,
                    keep_clear: list[tuple[float, float, float]],
                    avoid_targets: list[tuple[float, float, float]] | None = None) -> Layout:
    """Place obstacles by rejection sampling: never inside a keep-clear circle (x, y, radius), and with gaps of
    at least 1.6 m between obstacles so that a path always exists for the expert and the larger airframe."""
    obstacles = _place_obstacles(scenery, rng, bounds, keep_clear)
    decoys = _place_decoys(scenery, rng, bounds, obstacles, avoid_targets or [])
    elevation = math.radians(float(rng.uniform(*scenery.sun_elevation)))
    azimuth = float(rng.uniform(0, 2 * math.pi))
    sun = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return Layout(bounds, obstacles, decoys, Lighting(sun, scenery.ambient, scenery.diffuse),
                  int(rng.integers(2**31)))


def _place_obstacles(scenery: Scenery, rng: np.random.Generator, bounds: Bounds,
                     keep_clear: list[tuple[float, float, float]]) -> tuple[Obstacle, ...]:
    margin = 4.0  # trees just outside the flight area, so its edge is not a wall of empty ground
    x_lo, x_hi = bounds.x_min - margin, bounds.x_max + margin
    y_lo, y_hi = bounds.y_min - margin, bounds.y_max + margin
    wanted = int(round(scenery.obstacle_density * (x_hi - x_lo) * (y_hi - y_lo)))
    obstacles: list[Obstacle] = []
    for _ in range(wanted * 8):
        if len(obstacles) >= wanted:
            break
        x, y = float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi))
        kind = "pillar" if scenery.obstacle_style == "pillars" else "tree"
        if kind == "pillar":
            radius = float(rng.uniform(0.15, 0.35))
            height = float(rng.uniform(3.0, 6.0))
            crown = 0.0
            color = scenery.trunk_color
        else:
            radius = float(rng.uniform(0.12, 0.25))
            height = float(rng.uniform(3.0, 4.5))
            bare = rng.uniform() < scenery.bare_tree_fraction
            crown = 0.0 if bare else float(rng.uniform(0.9, 1.5))
            color = scenery.crown_colors[int(rng.integers(len(scenery.crown_colors)))]
        if any(math.hypot(x - cx, y - cy) < r + radius for cx, cy, r in keep_clear):
            continue
        if any(math.hypot(x - o.x, y - o.y) < o.radius + radius + 1.6 for o in obstacles):
            continue
        obstacles.append(Obstacle(kind, x, y, radius, height, crown, color))
    return tuple(obstacles)


def _place_decoys(scenery: Scenery, rng: np.random.Generator, bounds: Bounds, obstacles: tuple[Obstacle, ...],
                  avoid_targets: list[tuple[float, float, float]]) -> tuple[Decoy, ...]:
    """Decoys at least 3 m from every target and clear of the trunks, coloured in turn from `decoy_colors`.

    The colours take no random draws, so presets that differ only in them (`distractors`, `twins`) place their
    decoys at the same positions for the same seed: a paired comparison of the colour alone."""
    decoys: list[Decoy] = []
    for _ in range(scenery.distractors * 20):
        if len(decoys) >= scenery.distractors:
            break
        x, y = float(rng.uniform(bounds.x_min, bounds.x_max)), float(rng.uniform(bounds.y_min, bounds.y_max))
        z = float(rng.uniform(1.0, 2.0))
        if any(math.hypot(x - tx, y - ty) < 3.0 for tx, ty, _ in avoid_targets):
            continue
        if any(math.hypot(x - o.x, y - o.y) < o.radius + 0.5 for o in obstacles):
            continue
        decoys.append(Decoy((x, y, z), scenery.decoy_colors[len(decoys) % len(scenery.decoy_colors)]))
    return tuple(decoys)
