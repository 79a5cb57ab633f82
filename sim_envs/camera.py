"""The onboard camera: a body-mounted forward pinhole camera rendered by PyBullet's CPU TinyRenderer.

Rendering needs no display. The camera looks along the body's forward axis tilted up by `tilt_deg`, so that images
pitch and roll with the airframe exactly as a fixed (non-gimballed) camera does on a real quad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as p


@dataclass(frozen=True)
class CameraConfig:
    width: int = 64
    height: int = 48
    fov_deg: float = 80.0  # horizontal field of view
    tilt_deg: float = 0.0  # positive looks up
    rate_hz: int = 30  # camera and policy rate; must divide the physics rate
    near: float = 0.05
    far: float = 80.0

    def __post_init__(self) -> None:
        if not (8 <= self.width <= 1024 and 8 <= self.height <= 1024):
            raise ValueError(f"camera size {self.width}x{self.height} is out of range: use 8..1024 pixels per side")
        if not 10.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"camera fov_deg {self.fov_deg} is out of range: use 10..170 degrees")
        if not -90.0 <= self.tilt_deg <= 90.0:
            raise ValueError(f"camera tilt_deg {self.tilt_deg} is out of range: use -90..90 degrees")
        if self.rate_hz <= 0:
            raise ValueError(f"camera rate_hz must be positive, got {self.rate_hz}")

    @property
    def vertical_fov_deg(self) -> float:
        half = math.atan(math.tan(math.radians(self.fov_deg) / 2) * self.height / self.width)
        return math.degrees(2 * half)

    def to_dict(self) -> dict[str, float | int]:
        return {"width": self.width, "height": self.height, "fov_deg": self.fov_deg, "tilt_deg": self.tilt_deg,
                "rate_hz": self.rate_hz}


@dataclass(frozen=True)
class Lighting:
    direction: tuple[float, float, float]  # towards the sun
    ambient: float
    diffuse: float


class Renderer:
    """Renders RGB images from a pose in one PyBullet client; composites the sky where nothing was drawn."""

    def __init__(self, client: int, width: int, height: int, fov_deg: float, near: float, far: float) -> None:
        self.client = client
        self.width = width
        self.height = height
        aspect = width / height
        vfov = math.degrees(2 * math.atan(math.tan(math.radians(fov_deg) / 2) / aspect))
        self._projection = p.computeProjectionMatrixFOV(vfov, aspect, near, far)
        self._sky = np.zeros((height, width, 3), np.uint8)
        self._lighting = Lighting((0.3, 0.3, 1.0), 0.6, 0.5)

    def set_environment(self, sky_top: tuple[float, float, float], sky_horizon: tuple[float, float, float],
                        lighting: Lighting) -> None:
        self._sky = sky_gradient(self.height, self.width, sky_top, sky_horizon)
        self._lighting = lighting

    def render(self, eye: tuple[float, float, float], forward: tuple[float, float, float],
               up: tuple[float, float, float]) -> np.ndarray:
        rgb, depth = tiny_render(self.client, self.width, self.height, self._view(eye, forward, up),
                                 self._projection, self._lighting)
        return np.where((depth >= 0.99999)[:, :, None], self._sky, rgb)

    def segmentation(self, eye: tuple[float, float, float], forward: tuple[float, float, float],
                     up: tuple[float, float, float]) -> np.ndarray:
        """int32 (height, width): the unique id of the body seen at each pixel from this pose, -1 where nothing
        is (the sky): the same view and projection as `render`, so pixel for pixel its image, nearer bodies
        hiding farther ones. A second TinyRenderer pass: render asks for no segmentation, as flights rarely need
        one."""
        _, _, _, _, segmentation = p.getCameraImage(
            self.width, self.height, self._view(eye, forward, up), self._projection, renderer=p.ER_TINY_RENDERER,
            shadow=0, physicsClientId=self.client)
        return np.asarray(segmentation, np.int32).reshape(self.height, self.width)

    def _view(self, eye: tuple[float, float, float], forward: tuple[float, float, float],
              up: tuple[float, float, float]) -> list[float]:
        target = (eye[0] + forward[0], eye[1] + forward[1], eye[2] + forward[2])
        return p.computeViewMatrix(eye, target, up, physicsClientId=self.client)


def sky_gradient(height: int, width: int, top: tuple[float, float, float],
                 horizon: tuple[float, float, float]) -> np.ndarray:
    """uint8 (height, width, 3): the sky from `top` (first row) to `horizon` (last row), colours RGB in [0, 1]."""
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    gradient = (1 - rows) * np.asarray(top, np.float32) + rows * np.asarray(horizon, np.float32)
    return np.broadcast_to((gradient * 255)[:, None, :], (height, width, 3)).astype(np.uint8)


def tiny_render(client: int, width: int, height: int, view: list[float], projection: list[float],
                lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
    """PyBullet's CPU TinyRenderer: uint8 RGB (height, width, 3) and float32 depth buffer (height, width), where 1
    is the far plane (nothing drawn)."""
    _, _, rgba, depth, _ = p.getCameraImage(
        width, height, view, projection, renderer=p.ER_TINY_RENDERER, flags=p.ER_NO_SEGMENTATION_MASK, shadow=0,
        lightDirection=lighting.direction, lightAmbientCoeff=lighting.ambient, lightDiffuseCoeff=lighting.diffuse,
        lightSpecularCoeff=0.0, physicsClientId=client)
    rgb = np.asarray(rgba, np.uint8).reshape(height, width, 4)[:, :, :3]
    return rgb, np.asarray(depth, np.float32).reshape(height, width)


def body_camera_axes(rotation: tuple[float, ...], tilt_rad: float) -> tuple[tuple[float, float, float], ...]:
    """(forward, up) world vectors of a camera fixed to the body and tilted up by `tilt_rad`.

    `rotation` is the body-to-world rotation matrix in row-major order (PyBullet's getMatrixFromQuaternion).
    """
    c, s = math.cos(tilt_rad), math.sin(tilt_rad)
    # Body FLU axes in world coordinates are the columns of the rotation matrix.
    fx, fy, fz = rotation[0], rotation[3], rotation[6]
    ux, uy, uz = rotation[2], rotation[5], rotation[8]
    forward = (c * fx + s * ux, c * fy + s * uy, c * fz + s * uz)
    up = (-s * fx + c * ux, -s * fy + c * uy, -s * fz + c * uz)
    return forward, up
