"""The chase view that `navigator fly --video` records: a third-person camera behind and above the vehicle.

PyBullet's TinyRenderer costs about 0.3 µs per shaded pixel, and seen from above the ground fills most of the view:
at 320x240 the ground alone took three quarters of a chase frame (~28 of ~38 ms; a step of `navigator fly` takes
~5.5 ms). So the ground is photographed once per episode from straight above, and each frame draws it by a
perspective warp of that photograph (OpenCV, under a millisecond); TinyRenderer draws only what stands on the
ground (obstacles, targets, the vehicle), with the ground moved out of its way, at half the output size, and that
layer is upscaled and laid over the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pybullet as p

from sim_envs.camera import Lighting, sky_gradient, tiny_render

_SKY_DEPTH = 0.99999  # depth-buffer value at or above which TinyRenderer drew nothing
_CAPTURE_PIXELS = 512  # the ground photograph's longer side
_CAPTURE_HEIGHT = 2000.0  # metres above the ground the photograph is taken from (nearly orthographic)
_OUT_OF_VIEW = (0.0, 0.0, -1.0e4)  # where the ground waits while TinyRenderer draws the rest
_BELOW_GROUND = 0.05  # metres: drawn points this far under the ground surface are hidden by it


@dataclass(frozen=True)
class _Ground:
    """The ground body and its photograph from above: RGBA, alpha 0 where the photograph missed the ground."""
    body: int
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    top_z: float
    image: np.ndarray  # H x W x 4 uint8
    pixel_to_world: np.ndarray  # 3x3: photograph pixel (u, v, 1) -> ground (x, y, 1)


def _find_ground(client: int) -> tuple[int, tuple[float, float, float]] | None:
    """The ground: the flat, unrotated box of the largest area, with its full extents; None when there is none."""
    best = None
    for index in range(p.getNumBodies(physicsClientId=client)):
        body = p.getBodyUniqueId(index, physicsClientId=client)
        for shape in p.getVisualShapeData(body, physicsClientId=client):
            kind, extents = shape[2], shape[3]
            if shape[1] != -1 or kind != p.GEOM_BOX or extents[2] > 0.05 * min(extents[0], extents[1]):
                continue
            _, orientation = p.getBasePositionAndOrientation(body, physicsClientId=client)
            if abs(abs(orientation[3]) - 1.0) > 1e-6:
                continue
            if best is None or extents[0] * extents[1] > best[1][0] * best[1][1]:
                best = (body, tuple(extents))
    return best


def _photograph_ground(client: int, body: int, extents: tuple[float, float, float], lighting: Lighting) -> _Ground:
    """Render the ground alone from straight above (every other body moved aside for the moment)."""
    position, orientation = p.getBasePositionAndOrientation(body, physicsClientId=client)
    others = [p.getBodyUniqueId(i, physicsClientId=client) for i in range(p.getNumBodies(physicsClientId=client))]
    others = [b for b in others if b != body]
    poses = [p.getBasePositionAndOrientation(b, physicsClientId=client) for b in others]
    for other in others:
        p.resetBasePositionAndOrientation(other, _OUT_OF_VIEW, (0, 0, 0, 1), physicsClientId=client)
    half_x, half_y = 0.5 * extents[0], 0.5 * extents[1]
    top_z = position[2] + 0.5 * extents[2]
    height = _CAPTURE_PIXELS if half_y >= half_x else max(2, round(_CAPTURE_PIXELS * half_y / half_x))
    width = max(2, round(height * half_x / half_y))
    x, y = position[0], position[1]
    # Looking straight down with +y up the image: image right is +x. A plane seen square-on has no perspective.
    view = p.computeViewMatrix((x, y, top_z + _CAPTURE_HEIGHT), (x, y, top_z), (0, 1, 0))
    fov = math.degrees(2 * math.atan(half_y / _CAPTURE_HEIGHT))
    projection = p.computeProjectionMatrixFOV(fov, half_x / half_y, 0.5 * _CAPTURE_HEIGHT, 2 * _CAPTURE_HEIGHT)
    try:
        rgb, depth = tiny_render(client, width, height, view, projection, lighting)
    finally:
        for other, (other_position, other_orientation) in zip(others, poses):
            p.resetBasePositionAndOrientation(other, other_position, other_orientation, physicsClientId=client)
    alpha = np.where(depth < _SKY_DEPTH, 255, 0).astype(np.uint8)
    pixel_to_world = np.array([[2 * half_x / width, 0.0, x - half_x + half_x / width],
                               [0.0, -2 * half_y / height, y + half_y - half_y / height],
                               [0.0, 0.0, 1.0]])
    return _Ground(body, position, orientation, top_z, np.dstack([rgb, alpha]), pixel_to_world)


class ChaseCamera:
    """Renders RGB images of one PyBullet client: the ground by warping its photograph, the rest by TinyRenderer.

    The client must be headless: the ground leaves its place for a moment each frame, which a window would show."""

    def __init__(self, client: int, width: int, height: int, fov_deg: float, near: float, far: float) -> None:
        self.client = client
        self.width, self.height = width, height
        self.near, self.far = near, far
        self._detail = (max(2, width // 2), max(2, height // 2))  # TinyRenderer's layer: half size
        aspect = width / height
        self._vfov = math.degrees(2 * math.atan(math.tan(math.radians(fov_deg) / 2) / aspect))
        self._projection = p.computeProjectionMatrixFOV(self._vfov, aspect, near, far)
        self._lighting = Lighting((0.3, 0.3, 1.0), 0.6, 0.5)
        self._sky = np.zeros((height, width, 3), np.uint8)
        self._ground: _Ground | None = None
        self._photographed = False

    @property
    def warps_ground(self) -> bool:
        """Whether the ground was found and is drawn from its photograph (the fast path) rather than by TinyRenderer
        (a scenery without a flat box for ground falls back to the latter)."""
        return self._ground is not None

    def set_environment(self, sky_top: tuple[float, float, float], sky_horizon: tuple[float, float, float],
                        lighting: Lighting) -> None:
        """A new episode's sky and light; the ground is photographed again at the next frame."""
        self._sky = sky_gradient(self.height, self.width, sky_top, sky_horizon)
        self._lighting = lighting
        self._ground, self._photographed = None, False

    def render(self, eye: tuple[float, float, float], target: tuple[float, float, float]) -> np.ndarray:
        """The view from `eye` towards `target`, level (no roll)."""
        if not self._photographed:
            found = _find_ground(self.client)
            self._ground = _photograph_ground(self.client, *found, self._lighting) if found else None
            self._photographed = True
        view = p.computeViewMatrix(eye, target, (0.0, 0.0, 1.0), physicsClientId=self.client)
        background = self._background(view)
        detail, drawn = self._detail_layer(view, eye, target)
        # Where the layer drew nothing, its pixels take the background's colour, so that upscaling blends edges
        # with what lies behind them instead of with black.
        behind = cv2.resize(background, self._detail, interpolation=cv2.INTER_AREA)
        cv2.copyTo(detail, drawn.view(np.uint8), behind)
        size = (self.width, self.height)
        detail = cv2.resize(behind, size, interpolation=cv2.INTER_LINEAR)
        cover = cv2.resize(drawn.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        return cv2.blendLinear(detail, background, cover, 1.0 - cover)

    def _background(self, view: list[float]) -> np.ndarray:
        """The sky, and in front of it the ground warped from its photograph."""
        ground = self._ground
        if ground is None:
            return self._sky
        ground_to_clip = _plane_to_clip(view, self._projection, ground.top_z)
        # OpenCV puts pixel centres at whole coordinates, half a pixel left of and above OpenGL's.
        clip_to_pixel = np.array([[self.width / 2, 0, self.width / 2 - 0.5],
                                  [0, -self.height / 2, self.height / 2 - 0.5], [0, 0, 1]])
        plane_to_pixel = clip_to_pixel @ ground_to_clip
        warped = cv2.warpPerspective(ground.image, plane_to_pixel @ ground.pixel_to_world, (self.width, self.height),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # A homography also maps the ground behind the camera into the picture (above the horizon): keep the
        # pixels whose ground point lies in front, where the inverse map's homogeneous coordinate is positive.
        inverse = np.linalg.inv(plane_to_pixel)
        u = np.arange(self.width, dtype=np.float32)
        v = np.arange(self.height, dtype=np.float32)
        in_front = (inverse[2, 0] * u[None, :] + inverse[2, 1] * v[:, None] + inverse[2, 2]) > 0
        is_ground = in_front & (warped[:, :, 3] > 127)
        background = self._sky.copy()
        cv2.copyTo(cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB), is_ground.view(np.uint8), background)
        return background

    def _detail_layer(self, view: list[float], eye: tuple[float, float, float],
                      target: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        """TinyRenderer's half-size image of everything but the ground, and where it drew something above it."""
        ground = self._ground
        width, height = self._detail
        if ground is not None:
            p.resetBasePositionAndOrientation(ground.body, _OUT_OF_VIEW, (0, 0, 0, 1), physicsClientId=self.client)
        try:
            rgb, depth = tiny_render(self.client, width, height, view, self._projection, self._lighting)
        finally:
            if ground is not None:
                p.resetBasePositionAndOrientation(ground.body, ground.position, ground.orientation,
                                                  physicsClientId=self.client)
        drawn = depth < _SKY_DEPTH
        if ground is not None:  # the ground, moved aside, no longer hides what waits underneath it
            drawn &= self._height_above(depth, eye, target) > ground.top_z - _BELOW_GROUND
        return rgb, drawn

    def _height_above(self, depth: np.ndarray, eye: tuple[float, float, float],
                      target: tuple[float, float, float]) -> np.ndarray:
        """World z of each pixel's drawn point, from the depth buffer."""
        height = depth.shape[0]
        forward = np.subtract(target, eye, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        # A level camera's right axis is horizontal, so a pixel's height depends only on its row: the point at
        # distance d along the view axis lies d * (forward_z + y_ndc tan(vfov/2) up_z) above the eye.
        up_z = math.hypot(forward[0], forward[1])
        y_ndc = 1 - (np.arange(height, dtype=np.float32) + 0.5) / height * 2
        ray_z = (forward[2] + y_ndc * math.tan(math.radians(self._vfov) / 2) * up_z)[:, None]
        near, far = self.near, self.far
        distance = far * near / (far - (far - near) * depth)
        return eye[2] + distance * ray_z


def _plane_to_clip(view: list[float], projection: list[float], z: float) -> np.ndarray:
    """3x3 homography from points (x, y, 1) of the plane at height z to clip coordinates (x_c, y_c, w_c)."""
    # PyBullet's matrices are column-major (OpenGL): transposing gives the usual row-major form.
    full = np.asarray(projection, np.float64).reshape(4, 4).T @ np.asarray(view, np.float64).reshape(4, 4).T
    rows = full[[0, 1, 3]]
    return np.column_stack([rows[:, 0], rows[:, 1], rows[:, 2] * z + rows[:, 3]])
