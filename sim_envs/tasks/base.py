"""The environment every task shares: spaces, action handling, physics stepping, endings and `info`.

Observation (what a companion computer has): `image` (uint8 H×W×3 from the onboard camera) and `state` (float32
[vx, vy, vz heading-frame FLU m/s, roll, pitch rad, yaw_rate rad/s CCW, height m]). Action: [vx, vy, vz, yaw_rate]
in the heading frame, normalised to [-1, 1] by the airframe's limits. Privileged quantities go in `info` only.

A task subclass decides where the start and the targets are (`_plan`), how targets move (`_advance_targets`) and
when it has succeeded or failed (`_judge`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from sim_envs.airframe import load_airframe
from sim_envs.camera import CameraConfig
from sim_envs.description import CameraDescription, EnvDescription
from sim_envs.image_effects import apply_effects, random_occluders
from sim_envs.layout import Bounds, Layout, generate_layout
from sim_envs.presets import canonical_preset, resolve_preset
from sim_envs.scenery import Scenery
from sim_envs.vehicle import PhysicsSwitches, VehicleState
from sim_envs.wind import Wind
from sim_envs.world import World

ENDINGS = ("success", "collision", "out_of_bounds", "flipped", "lost", "timeout", "physics_error")
STATE_FIELDS = ("vx", "vy", "vz", "roll", "pitch", "yaw_rate", "height")
SPEED_LIMIT = 50.0  # m/s; beyond this the integration has blown up
# Bounds of the state that no live episode exceeds (speeds and rates below the blow-up limit, heights well above
# the ceiling); a blown-up step returns a blank observation instead.
STATE_BOUND = np.array([SPEED_LIMIT] * 3 + [math.pi, math.pi, SPEED_LIMIT, 100.0], np.float32)


@dataclass
class EpisodePlan:
    """What a task decides at reset: where the vehicle starts and where its targets are."""

    start: tuple[float, float, float]
    yaw: float
    targets: list[tuple[float, float, float]]
    bounds: Bounds
    keep_clear: list[tuple[float, float, float]] = field(default_factory=list)


class NavigationEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 30}
    task_name = "base"
    max_seconds = 30.0

    def __init__(self, preset: str = "summer", airframe: str = "x500", camera: CameraConfig | dict | None = None,
                 physics_hz: int = 240, physics: PhysicsSwitches | None = None, max_seconds: float | None = None,
                 render_mode: str | None = None, task_fov_deg: float | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: {', '.join(self.metadata['render_modes'])}")
        self.preset = canonical_preset(preset)  # "Winter + Wind" is stored as "winter+wind"
        self.scenery: Scenery = resolve_preset(self.preset)
        self.airframe = load_airframe(airframe)
        if isinstance(camera, dict):
            camera = CameraConfig(**camera)
        self.camera = camera or CameraConfig()
        # The horizontal view a task keeps its first target within at the start (fly-to-target's bearing): the
        # camera's own by default. A camera wider than the policy's (the SITL's stream, which the companion computer
        # crops back to the trained view) sets the policy's, so that the same seed gives the same world and plan.
        self.task_fov_deg = float(task_fov_deg) if task_fov_deg is not None else self.camera.fov_deg
        if not 10.0 <= self.task_fov_deg <= self.camera.fov_deg:
            raise ValueError(f"task_fov_deg {self.task_fov_deg} must be in [10, the camera's fov_deg "
                             f"{self.camera.fov_deg}]: a task cannot start its target outside what the camera sees")
        self.render_mode = render_mode
        if max_seconds is not None:
            self.max_seconds = float(max_seconds)
        self.metadata = {**self.metadata, "render_fps": self.camera.rate_hz}
        self.world = World(self.airframe, self.camera, physics_hz, physics or PhysicsSwitches(),
                           gui=render_mode == "human")
        self.dt = 1.0 / self.camera.rate_hz
        self._limits = self.airframe.limits.as_array().astype(np.float64)
        self._wind = Wind(self.scenery.wind)
        h, w = self.camera.height, self.camera.width
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
            "state": gym.spaces.Box(-STATE_BOUND, STATE_BOUND, (len(STATE_FIELDS),), np.float32),
        })
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.layout: Layout | None = None
        self.plan: EpisodePlan | None = None

    def description(self) -> EnvDescription:
        """The environment's contract as plain data (sim_envs.description): what pipelines, SITL and bundles read
        instead of this object's attributes."""
        camera = self.camera
        return EnvDescription(
            task=self.task_name, preset=self.preset, airframe=self.airframe.name, action_limits=self.airframe.limits,
            camera=CameraDescription(camera.width, camera.height, float(camera.fov_deg), float(camera.tilt_deg),
                                     camera.rate_hz),
            dt=self.dt, physics_hz=self.world.physics_hz, max_seconds=float(self.max_seconds),
            state_fields=STATE_FIELDS)

    def use_scenery(self, scenery: Scenery | None) -> None:
        """Fly the next episodes (from the next `reset`) in `scenery` instead of the preset's; None: the preset's
        again. How a stress sweep turns one knob (noise, exposure, occluders, wind) level by level on top of a
        preset; `preset` keeps naming the preset the levels start from."""
        self.scenery = resolve_preset(self.preset) if scenery is None else scenery
        self._wind = Wind(self.scenery.wind)

    # --- task hooks -------------------------------------------------------------------------------------------
    def _plan(self, rng: np.random.Generator) -> EpisodePlan:
        raise NotImplementedError

    def _advance_targets(self) -> None:
        """Move or switch targets after a step (default: static targets)."""

    def _judge(self, state: VehicleState) -> str | None:
        """'success', 'lost' or None (still going); checked after the world's own endings."""
        raise NotImplementedError

    def _task_info(self) -> dict[str, Any]:
        return {}

    # --- gymnasium API ----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.world.require_open()
        super().reset(seed=seed)
        rng = self.np_random
        self.plan = self._plan(rng)
        self.layout = generate_layout(self.scenery, rng, self.plan.bounds, self.plan.keep_clear,
                                      avoid_targets=self.plan.targets)
        self.world.build(self.layout, self.scenery, self.plan.start, self.plan.yaw, len(self.plan.targets))
        self._wind.reset(rng)
        self._air = (0.0, 0.0, 0.0)
        self._effects_rng = np.random.default_rng(int(rng.integers(2**63)))
        # The black patches (x0, y0, x1, y1) over the current camera image (occlusion presets); public because
        # they hide what lies under them (sim_envs.projection.target_mask).
        self.occluders: list[tuple[int, int, int, int]] = []
        self.time = 0.0
        self.steps = 0
        self.path_length = 0.0
        self.active_target = 0
        self._reset_task(rng)
        self._show_targets()
        self.vehicle_state = self.world.vehicle.observe()
        self._last_position = self.vehicle_state.position
        self._last_distance = self.distance_to_target()
        if self.render_mode == "human":
            self.world.show_vehicle(self.vehicle_state)
        return self._observation(), self._info(None, collided=False)

    def step(self, action):
        self.world.require_open()
        action = self._validate_action(action)
        setpoint = tuple((np.clip(action, -1.0, 1.0) * self._limits).tolist())
        if self.scenery.wind.steady_speed > 0 or self.scenery.wind.gust_std > 0:
            self._air = tuple(self._wind.step(self.dt).tolist())
        collided = self.world.advance(setpoint, self._air)
        self.time += self.dt
        self.steps += 1
        state = self.world.vehicle.observe()
        self.vehicle_state = state
        self.path_length += math.dist(state.position, self._last_position) if _finite(state) else 0.0
        self._last_position = state.position
        self._advance_targets()
        ending = self._world_ending(state, collided) or self._judge(state)
        if ending is None and self.time >= self.max_seconds - 1e-9:
            ending = "timeout"
        distance = self.distance_to_target()
        reward = self._last_distance - distance if math.isfinite(distance) else 0.0
        self._last_distance = distance
        if ending == "success":
            reward += 10.0
        elif ending in ("collision", "flipped", "out_of_bounds", "physics_error", "lost"):
            reward -= 10.0
        terminated = ending not in (None, "timeout")
        truncated = ending == "timeout"
        observation = self._observation() if ending != "physics_error" else self._blank_observation()
        if self.render_mode == "human":
            self.world.show_vehicle(state)
        return observation, float(reward), terminated, truncated, self._info(ending, collided)

    def render(self):
        self.world.require_open()
        if self.render_mode == "rgb_array":
            return self.side_by_side_frame()
        return None

    def close(self) -> None:
        self.world.close()

    # --- helpers ----------------------------------------------------------------------------------------------
    def _reset_task(self, rng: np.random.Generator) -> None:
        """Per-episode task state beyond the plan (counters, moving-target paths)."""

    def _show_targets(self) -> None:
        for index, target in enumerate(self.plan.targets):
            self.world.place_target(index, target if index == self.active_target else None)

    def target_position(self) -> tuple[float, float, float]:
        return self.plan.targets[self.active_target]

    def distance_to_target(self) -> float:
        return math.dist(self.vehicle_state.position, self.target_position())

    def _validate_action(self, action) -> np.ndarray:
        array = np.asarray(action, dtype=np.float64)
        if array.shape != (4,):
            raise ValueError(f"action must have shape (4,) = [vx, vy, vz, yaw_rate] normalised to [-1, 1], "
                             f"got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"action must be finite, got {array.tolist()}")
        return array

    def _world_ending(self, state: VehicleState, collided: bool) -> str | None:
        if not _finite(state) or math.hypot(*state.velocity) > SPEED_LIMIT:
            return "physics_error"
        if collided:
            return "collision"
        if abs(state.roll) > math.pi / 2 or abs(state.pitch) > math.pi / 2:
            return "flipped"
        if not self.plan.bounds.contains(*state.position):
            return "out_of_bounds"
        return None

    def _camera_image(self) -> np.ndarray:
        image = self.world.onboard_image(self.vehicle_state)
        s = self.scenery
        if s.occlusion_patches and self.steps % self.camera.rate_hz == 0:
            self.occluders = random_occluders(self._effects_rng, s.occlusion_patches, self.camera.width,
                                              self.camera.height)
        return apply_effects(image, self._effects_rng, s.exposure, s.noise_std, s.blur_sigma, self.occluders)

    def _observation(self) -> dict[str, np.ndarray]:
        self.last_image = self._camera_image()
        return {"image": self.last_image, "state": self.world.vehicle.state_vector()}

    def _blank_observation(self) -> dict[str, np.ndarray]:
        return {"image": np.zeros(self.observation_space["image"].shape, np.uint8),
                "state": np.zeros(len(STATE_FIELDS), np.float32)}

    def _info(self, ending: str | None, collided: bool) -> dict[str, Any]:
        state = self.vehicle_state
        return {
            "ending": ending,
            "success": ending == "success",
            "collision": collided,
            "time": self.time,
            "dt": self.dt,
            "position": np.asarray(state.position, np.float64),
            "velocity": np.asarray(state.velocity, np.float64),
            "yaw": state.yaw,
            "target_position": np.asarray(self.target_position(), np.float64),
            "distance": self.distance_to_target(),
            "path_length": self.path_length,
            **self._task_info(),
        }

    def side_by_side_frame(self, chase_size: tuple[int, int] = (320, 240)) -> np.ndarray:
        """The onboard camera (upscaled) beside a chase view: what `navigator fly --video` records."""
        width, height = chase_size
        onboard = cv2.resize(self.last_image, (height * self.camera.width // self.camera.height, height),
                             interpolation=cv2.INTER_NEAREST)
        chase = self.world.chase_image(self.vehicle_state, width, height)
        return np.concatenate([onboard, chase], axis=1)


def _finite(state: VehicleState) -> bool:
    return all(math.isfinite(v) for v in (*state.position, *state.velocity))


def bearing_in_view(fov_deg: float, margin_deg: float = 12.0) -> float:
    """Half-angle (rad) within which a target starts so that it is inside a horizontal view of `fov_deg`."""
    return math.radians(max(5.0, fov_deg / 2 - margin_deg))
