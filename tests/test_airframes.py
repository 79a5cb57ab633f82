"""Airframes as data: the shipped figures, their URDFs as PyBullet loads them, and the loader's errors."""

from __future__ import annotations

import math
import pathlib
import shutil

import numpy as np
import pybullet as p
import pytest

from sim_envs.airframe import AIRFRAME_DIR, AIRFRAME_NAMES, GRAVITY, load_airframe, read_airframe
from sim_envs.vehicle import URDF_FLAGS


def test_x500_is_the_default_and_both_airframes_load():
    assert AIRFRAME_NAMES[0] == "x500"
    for name in AIRFRAME_NAMES:
        airframe = load_airframe(name)
        assert airframe.name == name and airframe.urdf_path.is_file()


def test_cf2x_has_the_public_crazyflie_figures():
    cf2x = load_airframe("cf2x")
    assert cf2x.mass == 0.027 and cf2x.arm_length == 0.0397
    assert cf2x.kf == 3.16e-10 and cf2x.km == 7.94e-12
    assert cf2x.inertia == (1.4e-5, 1.4e-5, 2.17e-5)
    assert cf2x.thrust_to_weight == pytest.approx(2.25, abs=0.01)
    assert cf2x.max_rpm == pytest.approx(21703, rel=1e-3)
    assert cf2x.hover_rpm == pytest.approx(14468, rel=2e-3)  # the published figure used g = 9.8


def test_x500_is_a_two_kilogram_500_mm_quad_with_thrust_to_weight_two():
    x500 = load_airframe("x500")
    assert x500.mass == pytest.approx(2.0)
    assert 2 * x500.arm_length == pytest.approx(0.5, abs=0.01)  # motor-to-motor diagonal
    assert x500.rotor_radius == pytest.approx(0.127)  # 10" propellers
    assert x500.thrust_to_weight == pytest.approx(2.0, abs=0.05)
    assert 6000 < x500.hover_rpm < 8500


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
def test_hover_rpm_balances_the_weight(name):
    airframe = load_airframe(name)
    assert 4 * airframe.kf * airframe.hover_rpm**2 == pytest.approx(airframe.mass * GRAVITY)
    assert airframe.min_rpm < airframe.hover_rpm < airframe.max_rpm


@pytest.mark.parametrize("name, vx, vz", [("x500", 3.0, 1.5), ("cf2x", 1.5, 1.0)])
def test_action_limits(name, vx, vz):
    limits = load_airframe(name).limits
    array = limits.as_array()
    assert array.dtype == np.float32 and array.shape == (4,)
    assert np.allclose(array, (vx, vx, vz, math.radians(90.0)))


@pytest.mark.parametrize("name", AIRFRAME_NAMES)
def test_urdf_loads_with_the_airframe_inertia_and_a_bounded_collision_shape(name):
    airframe = load_airframe(name)
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(airframe.urdf_path), flags=URDF_FLAGS, physicsClientId=client)
        info = p.getDynamicsInfo(body, -1, physicsClientId=client)
        assert info[0] == pytest.approx(airframe.mass)
        assert info[2] == pytest.approx(airframe.inertia)
        (shape,) = p.getCollisionShapeData(body, -1, physicsClientId=client)
        assert shape[2] == p.GEOM_CYLINDER
        length, radius = shape[3][0], shape[3][1]
    finally:
        p.disconnect(client)
    assert radius >= airframe.arm_length + airframe.rotor_radius - 1e-9  # the rotor discs are inside
    assert math.hypot(radius, length / 2) <= airframe.collision_radius  # the sphere bounds the shape
    assert 0 < airframe.camera_offset[0] < airframe.collision_radius  # a forward camera on the frame
    assert 0 < airframe.max_tilt < math.radians(45)


def test_unknown_airframe_lists_the_valid_names():
    with pytest.raises(ValueError, match="x500.*cf2x"):
        load_airframe("x5000")


@pytest.fixture
def custom(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the x500 files under another name, for the loader to refuse once edited."""
    shutil.copy(AIRFRAME_DIR / "x500.urdf", tmp_path / "custom.urdf")
    shutil.copy(AIRFRAME_DIR / "x500.yaml", tmp_path / "custom.yaml")
    return tmp_path / "custom.yaml"


def test_a_copied_airframe_reads_like_the_original(custom):
    copy, original = read_airframe(custom), load_airframe("x500")
    assert copy.name == "custom" and copy.urdf_path == custom.with_suffix(".urdf")
    assert copy.gains == original.gains and copy.drag == original.drag and copy.kf == original.kf


@pytest.mark.parametrize("old, new, message", [
    ("max_rpm: 10230.0", "max_rpm: [10230.0", "not valid YAML"),
    ("kf: 9.37457e-8", "", "missing key kf"),
    ("  rate_p: 25.0", "", "missing key controller.rate_p"),
    ("  rate_p: 25.0", "  rate_p: fast", "controller.rate_p must be a finite number"),
    ("  rate_p: 25.0", "  rate_p: 25.0\n  rate_pp: 1.0", "unknown key.*controller.rate_pp"),
    ("km: 1.49993e-9", "km: -1.0", "km must be positive"),
    ("min_rpm: 1500.0", "min_rpm: 20000.0", "min_rpm must be below max_rpm"),
    ("camera_offset: [0.12, 0.0, 0.03]", "camera_offset: [0.12, 0.0]", "camera_offset must be a list of 3"),
    ("limits:", "limits: 3\nlimits_old:", "limits must be a mapping"),
])
def test_malformed_yaml_names_the_file_and_the_key(custom, old, new, message):
    text = custom.read_text()
    assert old in text
    custom.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=message) as error:
        read_airframe(custom)
    assert str(custom) in str(error.value)


def test_urdf_without_inertial_is_refused(custom):
    urdf = custom.with_suffix(".urdf")
    text = urdf.read_text()
    start, end = text.index("<inertial>"), text.index("</inertial>") + len("</inertial>")
    urdf.write_text(text[:start] + text[end:])
    with pytest.raises(ValueError, match="inertial") as error:
        read_airframe(custom)
    assert str(urdf) in str(error.value)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_airframe(tmp_path / "nothing.yaml")
