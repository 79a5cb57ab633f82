"""An environment's contract as one typed piece of plain data: what pipelines (eval, export), the SITL vehicle and
exported bundles need to know about a world, without reaching into `env.unwrapped`.

`NavigationEnv.description()` builds it; `to_dict`/`from_dict` give its JSON form (a bundle's policy.json and a
SITL console record it). It says what a flight computer would see of the world (the camera, the rates, the scale of
the normalised action, the state vector's fields), never privileged state (targets, obstacles).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sim_envs.airframe import ActionLimits


@dataclass(frozen=True)
class CameraDescription:
    """The onboard camera: size in pixels, horizontal field of view and upward tilt in degrees, frame rate in Hz
    (also the policy's step rate)."""

    width: int
    height: int
    fov_deg: float
    tilt_deg: float
    rate_hz: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EnvDescription:
    """task: CLI name ("fly-to-target"); preset: canonical preset spec ("winter+wind"); airframe: its name;
    action_limits: the scale of the normalised action, vx, vy, vz in m/s and yaw_rate in rad/s (heading frame FLU:
    an action of 1 is that much); camera; dt: seconds per policy step (1 / camera.rate_hz); physics_hz: the
    physics and emulated flight-controller rate; max_seconds: an episode's time limit; state_fields: the names of
    the observation's state vector, in order."""

    task: str
    preset: str
    airframe: str
    action_limits: ActionLimits
    camera: CameraDescription
    dt: float
    physics_hz: int
    max_seconds: float
    state_fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; `from_dict` inverts it exactly."""
        data = {field.name: getattr(self, field.name) for field in fields(self)}
        return {**data, "action_limits": asdict(self.action_limits), "camera": self.camera.to_dict(),
                "state_fields": list(self.state_fields)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvDescription:
        """The inverse of `to_dict`; a missing or unknown key is a ValueError naming it."""
        expected = {field.name for field in fields(cls)}
        if set(data) != expected:
            raise ValueError(f"an environment description needs exactly the keys {sorted(expected)}; missing "
                             f"{sorted(expected - set(data))}, unknown {sorted(set(data) - expected)}")
        return cls(**{**data, "action_limits": ActionLimits(**data["action_limits"]),
                      "camera": CameraDescription(**data["camera"]), "state_fields": tuple(data["state_fields"])})
