"""Sceneries generated from a seed: the layout as plain data, then built into PyBullet clients.

The layout (obstacles, decoys, ground texture, sun) is computed first from the preset and a random generator, so that
the collision world, the rendered world and the privileged expert all read one description. Collision geometry goes
into one static compound body (a physics step then costs microseconds however many trees there are); visual
geometry goes into a separate render-only client that is never stepped.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from sim_envs.camera import Lighting
from sim_envs.presets import TARGET_COLOR, Scenery

GROUND_MARGIN = 45.0  # metres of ground beyond the flight area, so the horizon is ground, not sky
TARGET_RADIUS = 0.3


@dataclass(frozen=True)
class Obstacle:
    kind: str  # "tree" or "pillar"
    x: float
    y: float
    radius: float  # trunk radius, or half the side of a pillar
    height: float
    crown_radius: float  # 0 for a bare tree or a pillar
    color: tuple[float, float, float]  # crown colour (trees) or body colour (pillars)

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
class Layout:
    bounds: Bounds
    obstacles: tuple[Obstacle, ...]
    decoys: tuple[tuple[float, float, float], ...]
    lighting: Lighting
    texture_seed: int


def generate_layout(scenery: Scenery, rng: np.random.Generator, bounds: Bounds,
                    keep_clear: list[tuple[float, float, float]],
                    avoid_targets: list[tuple[float, float, float]] | None = None) -> Layout:
    """Place obstacles by rejection sampling: never inside a keep-clear circle (x, y, radius), and with gaps of
    at least 1.6 m between obstacles so that a path always exists for the expert and the larger airframe."""
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
    decoys = []
    for _ in range(scenery.distractors * 20):
        if len(decoys) >= scenery.distractors:
            break
        x, y = float(rng.uniform(bounds.x_min, bounds.x_max)), float(rng.uniform(bounds.y_min, bounds.y_max))
        z = float(rng.uniform(1.0, 2.0))
        if any(math.hypot(x - tx, y - ty) < 3.0 for tx, ty, _ in (avoid_targets or [])):
            continue
        if any(math.hypot(x - o.x, y - o.y) < o.radius + 0.5 for o in obstacles):
            continue
        decoys.append((x, y, z))
    elevation = math.radians(float(rng.uniform(*scenery.sun_elevation)))
    azimuth = float(rng.uniform(0, 2 * math.pi))
    sun = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return Layout(bounds, tuple(obstacles), tuple(decoys), Lighting(sun, scenery.ambient, scenery.diffuse),
                  int(rng.integers(2**31)))


def build_collision(client: int, layout: Layout) -> None:
    """The ground plane and one static compound body holding every obstacle's collision shape."""
    p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client), physicsClientId=client)
    if not layout.obstacles:
        return
    types, radii, lengths, extents, positions = [], [], [], [], []

    def add(shape: int, position: list[float], radius: float = 0.0, length: float = 0.0,
            half_extents: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        types.append(shape)
        radii.append(radius)
        lengths.append(length)
        extents.append(list(half_extents))
        positions.append(position)

    for o in layout.obstacles:
        if o.kind == "pillar":
            add(p.GEOM_BOX, [o.x, o.y, o.height / 2], half_extents=(o.radius, o.radius, o.height / 2))
            continue
        add(p.GEOM_CYLINDER, [o.x, o.y, o.height / 2], radius=o.radius, length=o.height)
        if o.crown_radius > 0.0:
            add(p.GEOM_SPHERE, [o.x, o.y, o.crown_center_z], radius=o.crown_radius)
    shape = p.createCollisionShapeArray(types, radii=radii, lengths=lengths, halfExtents=extents,
                                        collisionFramePositions=positions, physicsClientId=client)
    p.createMultiBody(0, shape, -1, physicsClientId=client)


def _icosphere() -> tuple[np.ndarray, list[int]]:
    """A once-subdivided icosahedron (80 faces): round enough at our resolutions, cheap for the CPU rasteriser."""
    t = (1 + 5**0.5) / 2
    verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
             [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
             [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
             [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    midpoints: dict[tuple[int, int], int] = {}

    def midpoint(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in midpoints:
            verts.append([(verts[a][i] + verts[b][i]) / 2 for i in range(3)])
            midpoints[key] = len(verts) - 1
        return midpoints[key]

    subdivided = []
    for a, b, c in faces:
        ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
        subdivided += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    v = np.asarray(verts, np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, [i for face in subdivided for i in face]


def _prism(sides: int = 6) -> tuple[np.ndarray, list[int], np.ndarray]:
    """A unit-radius, unit-height vertical prism centred at the origin (a low-poly trunk), with side normals."""
    verts, normals, indices = [], [], []
    for i in range(sides):
        a0, a1 = 2 * math.pi * i / sides, 2 * math.pi * (i + 1) / sides
        n = [math.cos((a0 + a1) / 2), math.sin((a0 + a1) / 2), 0.0]
        base = len(verts)
        for a in (a0, a1):
            verts += [[math.cos(a), math.sin(a), -0.5], [math.cos(a), math.sin(a), 0.5]]
            normals += [n, n]
        indices += [base, base + 2, base + 1, base + 1, base + 2, base + 3]
    return np.asarray(verts), indices, np.asarray(normals)


_SPHERE = _icosphere()
_TRUNK = _prism()


def _mesh_body(client: int, vertices: np.ndarray, indices: list[int], normals: np.ndarray,
               color: tuple[float, float, float], position: tuple[float, float, float]) -> int:
    shape = p.createVisualShape(p.GEOM_MESH, vertices=vertices.tolist(), indices=indices, normals=normals.tolist(),
                                rgbaColor=[*color, 1.0], physicsClientId=client)
    return p.createMultiBody(0, -1, shape, basePosition=position, physicsClientId=client)


def sphere_body(client: int, radius: float, color: tuple[float, float, float],
                position: tuple[float, float, float]) -> int:
    unit, indices = _SPHERE
    return _mesh_body(client, unit * radius, indices, unit, color, position)


def ground_texture(scenery: Scenery, seed: int, size: int = 256) -> np.ndarray:
    """Low-frequency blobs of two colours plus fine grain: enough texture to sense motion, unique per seed."""
    rng = np.random.default_rng(seed)
    blobs = cv2.resize(rng.uniform(0, 1, (12, 12)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    mix = np.clip(blobs, 0, 1)[:, :, None]
    colors = (1 - mix) * np.asarray(scenery.ground_base, np.float32) + mix * np.asarray(scenery.ground_patch, np.float32)
    grain = rng.normal(0, scenery.ground_grain, (size, size, 1)).astype(np.float32)
    return (np.clip(colors + grain, 0, 1) * 255).astype(np.uint8)


def _texture_file(image: np.ndarray) -> Path:
    """PyBullet loads textures from files: cache each one by content in the temp folder, written atomically."""
    folder = Path(tempfile.gettempdir()) / "liquid-navigator-textures"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(image.tobytes()).hexdigest()[:20]}.png"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex}.tmp.png")  # unique per writer
        cv2.imwrite(str(partial), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        partial.replace(path)
    return path


def build_visuals(client: int, layout: Layout, scenery: Scenery) -> None:
    """Ground, obstacles and decoys in the render-only client."""
    b = layout.bounds
    half_x = (b.x_max - b.x_min) / 2 + GROUND_MARGIN
    half_y = (b.y_max - b.y_min) / 2 + GROUND_MARGIN
    ground_shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[half_x, half_y, 0.01], physicsClientId=client)
    ground = p.createMultiBody(0, -1, ground_shape, basePosition=[(b.x_min + b.x_max) / 2, (b.y_min + b.y_max) / 2,
                                                                  -0.01], physicsClientId=client)
    texture = p.loadTexture(str(_texture_file(ground_texture(scenery, layout.texture_seed))), physicsClientId=client)
    p.changeVisualShape(ground, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    trunk_vertices, trunk_indices, trunk_normals = _TRUNK
    for o in layout.obstacles:
        if o.kind == "pillar":
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[o.radius, o.radius, o.height / 2],
                                        rgbaColor=[*o.color, 1.0], physicsClientId=client)
            p.createMultiBody(0, -1, shape, basePosition=[o.x, o.y, o.height / 2], physicsClientId=client)
            continue
        scale = np.array([o.radius, o.radius, o.height])
        _mesh_body(client, trunk_vertices * scale, trunk_indices, trunk_normals, scenery.trunk_color,
                   (o.x, o.y, o.height / 2))
        if o.crown_radius > 0.0:
            sphere_body(client, o.crown_radius, o.color, (o.x, o.y, o.crown_center_z))
    for decoy in layout.decoys:
        sphere_body(client, TARGET_RADIUS, TARGET_COLOR, decoy)
