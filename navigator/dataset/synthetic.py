"""Synthetic fly-to-target episodes made with numpy alone, for tests, benchmarks and trying the tools without PyBullet.

The images are a crude perspective rendering (sky gradient, chequered ground, tree trunks, a red target) so that
they compress roughly like flat-shaded simulator frames do; random noise would not.
"""

from __future__ import annotations

import numpy as np

from navigator.dataset.episode import Episode
from navigator.dataset.schema import ACTION_CONVENTION

_LIMITS = np.array([3.0, 3.0, 2.0, 1.5], dtype=np.float32)  # vx, vy, vz m/s, yaw_rate rad/s (a small airframe)
_RATE_HZ = 30.0


def _render(position: np.ndarray, yaw: float, pitch: float, roll: float, target: np.ndarray,
            trees: np.ndarray, height: int, width: int, fov_deg: float) -> np.ndarray:
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x_img, y_img = u - (width - 1) / 2, v - (height - 1) / 2
    # Camera ray in the body frame (forward, left, up), tilted by pitch and roll, then turned by yaw.
    right = x_img * np.cos(roll) + y_img * np.sin(roll)
    down = -x_img * np.sin(roll) + y_img * np.cos(roll)
    fwd = np.ones_like(right) * focal
    up = -down
    fwd, up = fwd * np.cos(pitch) - up * np.sin(pitch), fwd * np.sin(pitch) + up * np.cos(pitch)
    left = -right
    wx = fwd * np.cos(yaw) - left * np.sin(yaw)
    wy = fwd * np.sin(yaw) + left * np.cos(yaw)
    norm = np.sqrt(wx**2 + wy**2 + up**2)
    wx, wy, wz = wx / norm, wy / norm, up / norm
    sky = np.stack([110 + 60 * (1 - wz), 160 + 50 * (1 - wz), 235 + 0 * wz], axis=-1)
    image = sky.copy()
    depth = np.full((height, width), np.inf)
    ground = wz < -1e-3
    t_ground = np.where(ground, -position[2] / np.where(ground, wz, -1.0), np.inf)
    t_finite = np.where(ground, t_ground, 0.0)
    gx, gy = position[0] + t_finite * wx, position[1] + t_finite * wy
    checker = (np.floor(gx) + np.floor(gy)) % 2
    fog = np.clip(t_ground / 40.0, 0, 1)[..., None]
    grass = np.stack([60 + 25 * checker, 120 + 30 * checker, 50 + 10 * checker], axis=-1)
    image = np.where(ground[..., None], grass * (1 - fog) + sky * fog, image)
    depth = np.where(ground, t_ground, depth)
    # Vertical cylinders (trees) and the target sphere, drawn by ray intersection with depth test.
    for cx, cy, radius in trees:
        dx, dy = position[0] - cx, position[1] - cy
        a = wx**2 + wy**2
        b = 2 * (dx * wx + dy * wy)
        c = dx**2 + dy**2 - radius**2
        disc = b**2 - 4 * a * c
        hit_t = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a + 1e-12), np.inf)
        hit_z = position[2] + hit_t * wz
        hit = (hit_t > 0) & (hit_z < 4.0) & (hit_t < depth)
        shade = 0.6 + 0.4 * np.clip(((position[0] + hit_t * wx - cx) / radius), -1, 1)[..., None]
        image = np.where(hit[..., None], np.array([110, 75, 40]) * shade, image)
        depth = np.where(hit, hit_t, depth)
    offset = position - target
    b = 2 * (offset[0] * wx + offset[1] * wy + offset[2] * wz)
    c = offset @ offset - 0.3**2
    disc = b**2 - 4 * c
    hit_t = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / 2, np.inf)
    hit = (hit_t > 0) & (hit_t < depth)
    image = np.where(hit[..., None], np.array([220, 40, 35]), image)
    return np.clip(image, 0, 255).astype(np.uint8)


def synthetic_episode(seed: int, frames: int = 40, task: str = "fly-to-target", preset: str = "summer",
                      height: int = 48, width: int = 64, dart_noise_std: float = 0.1) -> Episode:
    """A deterministic (for a given seed) episode that keeps the whole episode contract."""
    rng = np.random.default_rng(seed)
    fov_deg = 90.0
    start = np.array([0.0, 0.0, 1.0 + rng.uniform(0, 0.5)])
    target = np.array([8.0 + rng.uniform(0, 4), rng.uniform(-2, 2), 1.0 + rng.uniform(0, 1)])
    trees = np.column_stack([rng.uniform(3, 14, 6), rng.uniform(-5, 5, 6), rng.uniform(0.15, 0.35, 6)])
    dt = np.full(frames, 1.0 / _RATE_HZ, dtype=np.float32)
    dt[1:] += rng.normal(0, 0.002, frames - 1).astype(np.float32)  # onboard-like jitter in the policy rate
    timestamp = np.concatenate([[0.0], np.cumsum(dt[1:], dtype=np.float64)])
    position, yaw = start.copy(), 0.0
    positions, velocities, yaws = np.zeros((frames, 3)), np.zeros((frames, 3)), np.zeros(frames)
    state = np.zeros((frames, 7), dtype=np.float32)
    label = np.zeros((frames, 4), dtype=np.float32)
    executed = np.zeros((frames, 4), dtype=np.float32)
    images = np.zeros((frames, height, width, 3), dtype=np.uint8)
    velocity = np.zeros(3)
    for t in range(frames):
        to_target = target - position
        heading = np.arctan2(to_target[1], to_target[0])
        yaw_error = (heading - yaw + np.pi) % (2 * np.pi) - np.pi
        c, s = np.cos(yaw), np.sin(yaw)
        body = np.array([c * to_target[0] + s * to_target[1], -s * to_target[0] + c * to_target[1], to_target[2]])
        command = np.array([body[0] * 0.8, body[1] * 1.2, body[2] * 1.5, yaw_error * 2.0]) / _LIMITS
        label[t] = np.clip(command, -1, 1)
        executed[t] = np.clip(label[t] + rng.normal(0, dart_noise_std, 4), -1, 1)
        pitch, roll = -0.15 * executed[t, 0], -0.15 * executed[t, 1]
        images[t] = _render(position, yaw, pitch, roll, target, trees, height, width, fov_deg)
        state[t] = [*(np.array([c * velocity[0] + s * velocity[1], -s * velocity[0] + c * velocity[1], velocity[2]])),
                    roll, pitch, executed[t, 3] * _LIMITS[3], position[2]]
        positions[t], velocities[t], yaws[t] = position, velocity, yaw
        step = float(dt[min(t + 1, frames - 1)])
        fwd, lft, upv, yaw_rate = executed[t] * _LIMITS
        velocity = np.array([c * fwd - s * lft, s * fwd + c * lft, upv])
        position = position + velocity * step
        yaw += yaw_rate * step
    distance = np.linalg.norm(target - positions, axis=1)
    success = bool(distance[-1] < 1.0)
    return Episode(
        images=images, state=state, action_label=label, action_executed=executed, dt=dt, timestamp=timestamp,
        privileged={"position": positions, "velocity": velocities, "yaw": yaws,
                    "target_position": np.tile(target, (frames, 1)), "target_distance": distance,
                    "tree_positions": np.tile(trees[None, :, :2], (frames, 1, 1))},
        metadata={"task": task, "preset": preset, "seed": seed, "airframe": "synthetic",
                  "camera": {"width": width, "height": height, "fov_deg": fov_deg, "tilt_deg": 0.0,
                             "rate_hz": _RATE_HZ},
                  "action_limits": _LIMITS.tolist(), "action_convention": ACTION_CONVENTION,
                  "outcome": {"ending": "success" if success else "timeout", "success": success, "steps": frames,
                              "duration": float(timestamp[-1])},
                  "dart_noise_std": dart_noise_std, "software_version": "synthetic"},
    )
