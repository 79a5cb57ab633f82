"""Airframes as data: each is a URDF (geometry, mass, inertia) plus a small YAML of constants next to it.

`load_airframe("x500")` reads `sim_envs/airframes/x500.yaml` and `x500.urdf`. Mass and inertia come from the URDF's
`<inertial>` only, so that what PyBullet simulates and what the flight controller assumes cannot disagree. Everything
else (rotor constants, drag, limits, controller gains) comes from the YAML, which must hold exactly the expected keys:
a typo is an error naming the file and the key, never a silently ignored setting.

Units: SI, rotor speeds in rpm, angles in the YAML in degrees (converted here to radians).
"""

from __future__ import annotations

import math
import pathlib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from sim_envs import normal_name
from sim_envs.errors import InvalidNameError, UnknownNameError

AIRFRAME_NAMES: tuple[str, ...] = ("x500", "cf2x")  # x500 is the default airframe
AIRFRAME_DIR = pathlib.Path(__file__).resolve().parent / "airframes"
GRAVITY = 9.81  # m/s², the same value the world gives PyBullet


@dataclass(frozen=True)
class ActionLimits:
    """The largest commanded magnitudes; gym actions in [-1, 1] are scaled by these (heading frame FLU)."""

    vx: float  # m/s forward
    vy: float  # m/s left
    vz: float  # m/s up
    yaw_rate: float  # rad/s counter-clockwise

    def as_array(self) -> np.ndarray:
        return np.array([self.vx, self.vy, self.vz, self.yaw_rate], dtype=np.float32)


@dataclass(frozen=True)
class DragCoefficients:
    """Aerodynamic drag on the velocity relative to the air, in the body frame.

    Rotor drag (induced drag and blade flapping) is linear in the relative velocity and proportional to the summed
    rotor speed: F = -rotor_xy · Σω · v for the in-plane components, with Σω in rad/s (the unit of the published
    identifications). Body drag is quadratic: F = -½ ρ (Cd·A) |v| v per axis.
    """

    rotor_xy: float  # N per (rad/s of summed rotor speed) per (m/s)
    rotor_z: float  # N per (rad/s of summed rotor speed) per (m/s)
    body_area_xy: float  # Cd·A, m²
    body_area_z: float  # Cd·A, m²


@dataclass(frozen=True)
class ControllerGains:
    """The emulated flight controller's cascade. Attitude and rate gains are in angular-acceleration units, so that
    torques scale with the airframe's inertia and similar gains suit airframes of very different sizes."""

    velocity_xy_p: float  # (m/s²) per (m/s)
    velocity_xy_i: float  # (m/s²) per m
    velocity_z_p: float  # (m/s²) per (m/s)
    velocity_z_i: float  # (m/s²) per m
    velocity_i_limit: float  # m/s², the most acceleration the integrators may add (wind, ground effect)
    attitude_p: float  # (rad/s) per rad, roll and pitch
    yaw_p: float  # (rad/s) per rad, heading hold around the integrated yaw-rate setpoint
    yaw_reference_time_constant: float  # s, smoothing of the yaw-rate command before the heading hold follows it
    rate_p: float  # (rad/s²) per (rad/s), roll and pitch rates
    rate_i: float  # (rad/s²) per rad
    rate_d: float  # (rad/s²) per (rad/s²)
    yaw_rate_p: float  # (rad/s²) per (rad/s)
    yaw_rate_i: float  # (rad/s²) per rad


@dataclass(frozen=True)
class Airframe:
    name: str
    urdf_path: pathlib.Path
    mass: float  # kg
    inertia: tuple[float, float, float]  # kg·m², principal, about the body FLU axes
    arm_length: float  # m, centre to rotor axis; rotors sit on the diagonals (X configuration)
    kf: float  # N/rpm², thrust = kf·rpm²
    km: float  # N·m/rpm², reaction torque = km·rpm²
    motor_time_constant: float  # s, first-order lag of rotor speed
    min_rpm: float
    max_rpm: float
    rotor_radius: float  # m
    limits: ActionLimits
    max_tilt: float  # rad, the flight controller's tilt limit
    camera_offset: tuple[float, float, float]  # m, FLU body frame
    collision_radius: float  # m, a sphere bounding the frame, for planners' clearance checks
    drag: DragCoefficients
    gains: ControllerGains

    @property
    def hover_rpm(self) -> float:
        return math.sqrt(self.mass * GRAVITY / (4.0 * self.kf))

    @property
    def thrust_to_weight(self) -> float:
        return 4.0 * self.kf * self.max_rpm**2 / (self.mass * GRAVITY)


def load_airframe(name: str) -> Airframe:
    """The named shipped airframe; unknown names raise a ValueError that lists the valid ones."""
    return read_airframe(AIRFRAME_DIR / f"{canonical_airframe(name)}.yaml")


def canonical_airframe(name: str) -> str:
    """A shipped airframe's name in any case (" CF2X ") -> its name ("cf2x"); unknown names raise an
    UnknownNameError (a ValueError) that lists the valid ones."""
    if not isinstance(name, str):
        raise InvalidNameError(f"airframe must be a string such as 'x500', got {name!r}")
    if normal_name(name) not in AIRFRAME_NAMES:
        raise UnknownNameError("airframe", name, AIRFRAME_NAMES)
    return normal_name(name)


def read_airframe(yaml_path: pathlib.Path) -> Airframe:
    """An airframe from a YAML file and the URDF of the same name beside it (e.g. a custom one under test)."""
    yaml_path = pathlib.Path(yaml_path)
    urdf_path = yaml_path.with_suffix(".urdf")
    data = _read_mapping(yaml_path)
    top = _Section(data, yaml_path, "")
    mass, inertia = read_urdf_inertial(urdf_path)
    limits = top.section("limits")
    drag = top.section("drag")
    gains = top.section("controller")
    camera = top.vector("camera_offset", 3)
    airframe = Airframe(
        name=yaml_path.stem,
        urdf_path=urdf_path,
        mass=mass,
        inertia=inertia,
        arm_length=top.number("arm_length"),
        kf=top.number("kf"),
        km=top.number("km"),
        motor_time_constant=top.number("motor_time_constant"),
        min_rpm=top.number("min_rpm", positive=False),
        max_rpm=top.number("max_rpm"),
        rotor_radius=top.number("rotor_radius"),
        limits=ActionLimits(
            vx=limits.number("vx"),
            vy=limits.number("vy"),
            vz=limits.number("vz"),
            yaw_rate=math.radians(limits.number("yaw_rate_deg")),
        ),
        max_tilt=math.radians(top.number("max_tilt_deg")),
        camera_offset=(camera[0], camera[1], camera[2]),
        collision_radius=top.number("collision_radius"),
        drag=DragCoefficients(**{key: drag.number(key, positive=False) for key in _field_names(DragCoefficients)}),
        gains=ControllerGains(**{key: gains.number(key, positive=False) for key in _field_names(ControllerGains)}),
    )
    for section in (top, limits, drag, gains):
        section.refuse_unknown()
    _check_consistent(airframe, yaml_path)
    return airframe


def read_urdf_inertial(urdf_path: pathlib.Path) -> tuple[float, tuple[float, float, float]]:
    """Mass and principal inertia (ixx, iyy, izz) of the URDF's base link."""
    if not urdf_path.is_file():
        raise ValueError(f"airframe URDF {urdf_path} does not exist")
    try:
        root = ElementTree.parse(urdf_path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{urdf_path} is not valid XML: {error}") from None
    inertial = root.find("link/inertial")
    mass = None if inertial is None else inertial.find("mass")
    inertia = None if inertial is None else inertial.find("inertia")
    if mass is None or inertia is None:
        raise ValueError(f"{urdf_path}: the first link needs <inertial> with <mass> and <inertia>")
    try:
        values = (float(mass.get("value", "")), *(float(inertia.get(axis, "")) for axis in ("ixx", "iyy", "izz")))
    except ValueError:
        raise ValueError(f"{urdf_path}: <mass value> and <inertia ixx iyy izz> must be numbers") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{urdf_path}: mass and inertia must be positive")
    return values[0], (values[1], values[2], values[3])


def _check_consistent(airframe: Airframe, path: pathlib.Path) -> None:
    if airframe.min_rpm >= airframe.max_rpm:
        raise ValueError(f"{path}: min_rpm must be below max_rpm")
    if airframe.thrust_to_weight <= 1.2:
        raise ValueError(f"{path}: max_rpm gives a thrust-to-weight ratio of {airframe.thrust_to_weight:.2f}; "
                         "the flight controller needs at least 1.2 to hover and manoeuvre")
    if not 0 < airframe.max_tilt < math.pi / 2:
        raise ValueError(f"{path}: max_tilt_deg must be between 0 and 90")


def _field_names(cls: type) -> list[str]:
    return list(cls.__dataclass_fields__)


def _is_finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _read_mapping(path: pathlib.Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"airframe file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of airframe constants at the top level")
    return data


class _Section:
    """One mapping of the YAML file; remembers which keys were read so that unknown (misspelt) keys are refused."""

    def __init__(self, data: dict[str, Any], path: pathlib.Path, prefix: str) -> None:
        self.data, self.path, self.prefix = data, path, prefix
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            raise ValueError(f"{self.path}: missing key {self.prefix}{key}")
        return self.data[key]

    def number(self, key: str, positive: bool = True) -> float:
        """A finite number, > 0 (positive) or >= 0."""
        value = self._get(key)
        if not _is_finite_number(value):
            raise ValueError(f"{self.path}: key {self.prefix}{key} must be a finite number, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise ValueError(f"{self.path}: key {self.prefix}{key} must be {'positive' if positive else '>= 0'}, "
                             f"got {value!r}")
        return float(value)

    def vector(self, key: str, count: int) -> list[float]:
        """A list of `count` finite numbers of either sign."""
        value = self._get(key)
        if not isinstance(value, list) or len(value) != count or not all(_is_finite_number(v) for v in value):
            raise ValueError(f"{self.path}: key {self.prefix}{key} must be a list of {count} numbers, got {value!r}")
        return [float(v) for v in value]

    def section(self, key: str) -> _Section:
        value = self._get(key)
        if not isinstance(value, dict):
            raise ValueError(f"{self.path}: key {self.prefix}{key} must be a mapping, got {value!r}")
        return _Section(value, self.path, f"{self.prefix}{key}.")

    def refuse_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ValueError(f"{self.path}: unknown key(s) {', '.join(self.prefix + k for k in unknown)}; "
                             f"valid keys are {', '.join(self.prefix + k for k in sorted(self.used))}")
