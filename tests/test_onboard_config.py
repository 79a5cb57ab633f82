"""launch/onboard.yaml loads, and every kind of bad setting is refused with a message naming it."""

from pathlib import Path

import pytest

from navigator.config import ConfigError
from navigator.onboard.config import OnboardConfig, load_onboard_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_launch_file_is_the_defaults() -> None:
    assert load_onboard_config(REPO / "launch" / "onboard.yaml") == OnboardConfig()


@pytest.mark.parametrize(("text", "message"), [
    ("camera:\n  stale_frame_s: 0\n", "camera.stale_frame_s in .* must be > 0"),
    ("camera:\n  hfov_deg: 200\n", "camera.hfov_deg in .* must be in \\(0, 180\\)"),
    ("camera:\n  reopen_backoff_s: 2\n  reopen_backoff_max_s: 1\n", "reopen_backoff_max_s .* must be at least"),
    ("link:\n  telemetry_timeout_s: 5\n", "telemetry_timeout_s .* must be below heartbeat_timeout_s"),
    ("limits:\n  vx: -1\n", "limits.vx in .* must be > 0"),
    ("limits:\n  accel_xy: .nan\n", "limits.accel_xy .* finite"),
    ("geofence:\n  radius: 5\n", "unknown setting\\(s\\) radius"),
    ("engage:\n  request_attempts: 0\n", "request_attempts .* at least 1"),
    ("log:\n  max_parts: 1.5\n", "log.max_parts .* whole number"),
    ("rate_hz: fast\n", "rate_hz .* must be a number"),
    ("threads: 1\nthreads: 2\n", "duplicate key 'threads'"),
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
    config = load_onboard_config(None, {"limits.vx": 1.0, "limits.yaw_rate_deg": 1000.0})
    assert config.limits.max_command((2.0, 2.0, 1.0, 1.5)) == (1.0, 2.0, 1.0, 1.5)
