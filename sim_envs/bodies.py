"""A layout built into PyBullet clients: the collision world for physics, the visual world for cameras.

Collision geometry goes into one static compound body (a physics step then costs microseconds however many trees
there are); visual geometry goes into render-only clients that are never stepped.

Built this way so that a worker can reset thousands of times in bounded memory and leave nothing behind on disk:
- Meshes come from the OBJ files shipped in `sim_envs/meshes/`, scaled per body with `meshScale`. PyBullet never
  frees vertex lists passed inline to `createVisualShape` (about 17 KiB per crown, 1 MiB per reset, even past
  `disconnect`); a file's mesh is parsed once and cached by name.
- The ground texture exists as a file only while PyBullet loads it, in a temporary folder removed at once. PyBullet
  caches every file it reads by name until the process ends; caching is off while the texture loads, so that the
  cache holds no textures and a reused name can never show a stale one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from sim_envs.layout import Layout
from sim_envs.scenery import Color, Scenery

GROUND_MARGIN = 45.0  # metres of ground beyond the flight area, so the horizon is ground, not sky
TARGET_RADIUS = 0.3
MESH_DIR = Path(__file__).resolve().parent / "meshes"
SPHERE_MESH = MESH_DIR / "sphere.obj"  # unit radius
TRUNK_MESH = MESH_DIR / "trunk.obj"  # unit radius, unit height, centred


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


def _mesh_body(client: int, mesh: Path, scale: tuple[float, float, float], color: Color,
               position: tuple[float, float, float]) -> int:
    shape = p.createVisualShape(p.GEOM_MESH, fileName=str(mesh), meshScale=list(scale), rgbaColor=[*color, 1.0],
                                physicsClientId=client)
    return p.createMultiBody(0, -1, shape, basePosition=position, physicsClientId=client)


def sphere_body(client: int, radius: float, color: Color, position: tuple[float, float, float]) -> int:
    """A visual-only sphere (crown, target, decoy)."""
    return _mesh_body(client, SPHERE_MESH, (radius, radius, radius), color, position)


def ground_texture(scenery: Scenery, seed: int, size: int = 256) -> np.ndarray:
    """Low-frequency blobs of two colours plus fine grain: enough texture to sense motion, unique per seed."""
    rng = np.random.default_rng(seed)
    blobs = cv2.resize(rng.uniform(0, 1, (12, 12)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    mix = np.clip(blobs, 0, 1)[:, :, None]
    base, patch = np.asarray(scenery.ground_base, np.float32), np.asarray(scenery.ground_patch, np.float32)
    colors = (1 - mix) * base + mix * patch
    grain = rng.normal(0, scenery.ground_grain, (size, size, 1)).astype(np.float32)
    return (np.clip(colors + grain, 0, 1) * 255).astype(np.uint8)


def load_texture(client: int, image: np.ndarray) -> int:
    """Load an RGB image as a texture of `client`, leaving no file behind and nothing in PyBullet's file cache."""
    with tempfile.TemporaryDirectory(prefix="liquid-navigator-texture-") as folder:
        path = Path(folder) / "texture.bmp"  # uncompressed: written and read in a few ms, where PNG takes tens
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        # Turning caching off also empties the cache (this client's files, every client's parsed meshes).
        p.setPhysicsEngineParameter(enableFileCaching=0, physicsClientId=client)
        try:
            return p.loadTexture(str(path), physicsClientId=client)
        finally:
            p.setPhysicsEngineParameter(enableFileCaching=1, physicsClientId=client)


def build_visuals(client: int, layout: Layout, scenery: Scenery) -> None:
    """Ground, obstacles and decoys in a render-only client."""
    b = layout.bounds
    half_x = (b.x_max - b.x_min) / 2 + GROUND_MARGIN
    half_y = (b.y_max - b.y_min) / 2 + GROUND_MARGIN
    ground_shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[half_x, half_y, 0.01], physicsClientId=client)
    ground = p.createMultiBody(0, -1, ground_shape, basePosition=[(b.x_min + b.x_max) / 2, (b.y_min + b.y_max) / 2,
                                                                  -0.01], physicsClientId=client)
    texture = load_texture(client, ground_texture(scenery, layout.texture_seed))
    p.changeVisualShape(ground, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    for o in layout.obstacles:
        if o.kind == "pillar":
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=[o.radius, o.radius, o.height / 2],
                                        rgbaColor=[*o.color, 1.0], physicsClientId=client)
            p.createMultiBody(0, -1, shape, basePosition=[o.x, o.y, o.height / 2], physicsClientId=client)
            continue
        _mesh_body(client, TRUNK_MESH, (o.radius, o.radius, o.height), scenery.trunk_color, (o.x, o.y, o.height / 2))
        if o.crown_radius > 0.0:
            sphere_body(client, o.crown_radius, o.color, (o.x, o.y, o.crown_center_z))
    for decoy in layout.decoys:
        sphere_body(client, TARGET_RADIUS, decoy.color, decoy.position)
