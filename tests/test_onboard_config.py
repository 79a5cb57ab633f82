"""launch/onboard.yaml loads, and every kind of bad setting is refused with a message naming it."""

import dataclasses
from pathlib import Path

import pytest

from navigator.config import ConfigError
from navigator.onboard.config import OnboardConfig, load_onboard_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_launch_file_is_the_defaults() -> None:
    assert load_onboard_config(REPO / "launch" / "onboard.yaml") == OnboardConfig()


@pytest.mark.parametrize(("text", "message"), [
    ("camera:\n  stale_frame_s: 0\n", "camera.stale_frame_s in .* must be in \\(0, 1\\], got 0"),
    ("camera:\n  hfov_deg: 200\n", "camera.hfov_deg in .* must be in \\(0, 180\\)"),
    ("camera:\n  reopen_backoff_s: 2\n  reopen_backoff_max_s: 1\n", "reopen_backoff_max_s .* must be at least"),
    ("link:\n  telemetry_timeout_s: 1.5\n  heartbeat_timeout_s: 1.0\n",
     "telemetry_timeout_s .* must be below heartbeat_timeout_s"),
    ("limits:\n  vx: -1\n", "limits.vx in .* must be in \\(0, 20\\]"),
    ("limits:\n  accel_xy: .nan\n", "limits.accel_xy .* finite"),
    ("geofence:\n  radius: 5\n", "unknown setting radius"),
    ("engage:\n  request_attempts: 0\n", "request_attempts .* must be in \\[1, 10\\]"),
    ("log:\n  max_parts: 1.5\n", "log.max_parts .* whole number"),
    ("rate_hz: fast\n", "rate_hz .* must be a number"),
    ("threads: 1\nthreads: 2\n", "duplicate key 'threads'"),
    # Values large enough to switch a safety check off, or to overflow a wait: each setting has a maximum.
    ("camera:\n  stale_frame_s: 3600\n", "camera.stale_frame_s in .* must be in \\(0, 1\\], got 3600"),
    ("link:\n  heartbeat_timeout_s: 1.0e+9\n", "link.heartbeat_timeout_s in .* must be in \\(0, 10\\]"),
    ("link:\n  connect_timeout_s: 1.0e+300\n", "link.connect_timeout_s in .* must be in \\(0, 600\\]"),
    ("geofence:\n  radius_m: 1.0e+9\n", "geofence.radius_m in .* must be in \\(0, 500\\]"),
    ("geofence:\n  max_height_m: 1.0e+9\n", "geofence.max_height_m in .* must be in \\(0, 120\\]"),
    ("limits:\n  accel_xy: 1.0e+9\n", "limits.accel_xy in .* must be in \\(0, 20\\]"),
    ("engage:\n  request_attempts: 1000000\n", "engage.request_attempts in .* must be in \\[1, 10\\]"),
    # An exponent without a sign or a point is read as the number it is (YAML 1.2's reading), then checked as any.
    ("link:\n  connect_timeout_s: 1.0e300\n", "connect_timeout_s in .* must be in \\(0, 600\\], got 1e\\+300"),
    ("engage:\n  request_attempts: 1e3\n", "request_attempts .* whole number, got 1000.0"),
    ("rate_hz: '30'\n", "rate_hz .* got \"30\" \\(YAML read it as text because it is quoted; write 30 without"),
])
def test_bad_settings_are_refused_with_their_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "onboard.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_onboard_config(path)


def test_flag_override_is_named_as_the_flag() -> None:
    with pytest.raises(ConfigError, match="--camera-fov must be in"):
        load_onboard_config(None, {"camera.hfov_deg": 0.0}, {"camera.hfov_deg": "--camera-fov"})


def test_limits_combine_with_the_bundles() -> None:
    config = load_onboard_config(None, {"limits.vx": 1.0, "limits.yaw_rate_deg": 300.0})
    assert config.limits.max_command((2.0, 2.0, 1.0, 1.5)) == (1.0, 2.0, 1.0, 1.5)


def test_the_ceiling_holds_whatever_a_bundle_says() -> None:
    # Limits left to the bundle (null) still never exceed the settings' own maxima: 20, 20, 10 m/s and 360 deg/s.
    import math

    assert load_onboard_config(None).limits.max_command((1e9, 3.0, 50.0, 100.0)) == (20.0, 3.0, 10.0, 2 * math.pi)


def test_every_number_has_a_maximum() -> None:
    # A setting without one can be set so large that it silently disables what it guards.
    def numbers(cls: type, prefix: str = ""):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
                yield from numbers(f.default_factory, f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f.metadata.get("navigator.bounds")

    unbounded = [name for name, bounds in numbers(OnboardConfig) if bounds is None or (bounds.le, bounds.lt) == (None,
                                                                                                             None)]
    assert unbounded == []


def test_shipped_launch_file_states_each_maximum() -> None:
    # launch/onboard.yaml is what users copy: its comments give the maximum of every number.
    text = (REPO / "launch" / "onboard.yaml").read_text()
    for section, name in [("camera", "stale_frame_s"), ("link", "heartbeat_timeout_s"), ("geofence", "radius_m"),
                          ("engage", "request_attempts"), ("log", "max_parts")]:
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{name}:"))
        bounds = next(f for f in dataclasses.fields(getattr(OnboardConfig(), section))
                      if f.name == name).metadata["navigator.bounds"]
        assert f"at most {bounds.le:g}" in line, line
