import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from navigator.commands.fly import FlyConfig
from navigator.config import (ConfigError, ConfigFlags, DefaultsHelpFormatter, SettingError, check_settings,
                              field_default, load_config, read_yaml_mapping, setting, to_dict)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Inner:
    width: int = 64
    scale: float = 1.0


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)


def test_yaml_then_flags_override_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: b\ninner:\n  width: 96\n")
    config = load_config(Outer, path, {"inner.scale": 2, "name": None})
    assert config == Outer(name="b", inner=Inner(width=96, scale=2.0))


def test_unknown_key_names_the_valid_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  widht: 96\n")
    with pytest.raises(ConfigError, match="widht.*valid settings are scale, width"):
        load_config(Outer, path)


def test_wrong_type_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  width: wide\n")
    with pytest.raises(ConfigError, match=rf"inner\.width in {path} must be a whole number, got 'wide'"):
        load_config(Outer, path)


@pytest.mark.parametrize("text, problem", [("a: [1,\n", "not valid YAML"), ("- 1\n- 2\n", "mapping")])
def test_malformed_yaml_is_a_clear_error(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_config(Outer, path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")


def test_shipped_fly_launch_file_equals_the_built_in_defaults():
    assert to_dict(load_config(FlyConfig, ROOT / "launch" / "fly.yaml")) == to_dict(FlyConfig())


def test_shipped_training_recipe_is_valid():
    from navigator.training.config import TrainConfig

    config = load_config(TrainConfig, ROOT / "launch" / "train" / "fly_to_target.yaml")
    assert config.model == "cfc-ncp" and config.collect is not None and config.dagger.rounds >= 1


@dataclass(frozen=True)
class Ranged:
    count: int = setting(5, ge=1)
    rate: float = setting(0.5, gt=0.0, lt=1.0)
    limit: float | None = setting(None, gt=0.0)
    distance: float = setting(math.inf, nonfinite=True)
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        check_settings(self)


@pytest.mark.parametrize("overrides, message", [
    ({"count": 0}, "count must be at least 1, got 0"),
    ({"rate": 1.0}, "rate must be in (0, 1), got 1.0"),
    ({"rate": math.nan}, "rate must be a finite number, got nan"),
    ({"limit": -math.inf}, "limit must be a finite number, got -inf"),
    ({"limit": 0}, "limit must be > 0, got 0.0"),
    ({"inner.scale": math.nan}, "inner.scale must be a finite number, got nan"),  # a field without a declared range
])
def test_ranges_and_non_finite_numbers_are_refused(overrides, message):
    with pytest.raises(ConfigError) as raised:
        load_config(Ranged, None, overrides)
    assert str(raised.value) == message


def test_non_finite_allowed_where_declared_and_code_is_held_to_the_ranges_too():
    assert load_config(Ranged, None, {"distance": math.nan}).distance != 0  # NaN accepted where declared
    with pytest.raises(SettingError, match="count must be at least 1"):
        Ranged(count=0)


def test_errors_name_the_flag_or_the_key_in_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rate: 2\ninner:\n  width: 0.5\n")
    with pytest.raises(ConfigError, match=rf"^rate in {path} must be in \(0, 1\), got 2.0$"):
        load_config(Ranged, path, {"inner.width": 3})
    with pytest.raises(ConfigError, match=r"^--rate must be in \(0, 1\), got 7.0$"):
        load_config(Ranged, path, {"rate": 7.0, "inner.width": 3}, {"rate": "--rate"})


@pytest.mark.parametrize("text, line, key", [
    ("a: 1\nb: 2\na: 3\n", 3, "a"),
    ("outer:\n  x: 1\n  deeper:\n    y: 1\n    y: 2\n", 5, "y"),
    ("parts:\n  - {task: hike, task: follow}\n", 2, "task"),
])
def test_duplicate_keys_are_refused_at_any_depth(tmp_path, text, line, key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: line {line}: duplicate key '{key}'"):
        read_yaml_mapping(path)


def test_flags_show_the_dataclass_defaults_in_help_and_name_themselves_in_errors():
    flags = ConfigFlags(Ranged)
    parser = argparse.ArgumentParser(prog="x", formatter_class=DefaultsHelpFormatter)
    flags.add(parser, "--count", "count", "how many", type=int)
    flags.add(parser, "--width", "inner.width", "pixels", type=int)
    flags.add(parser, "--limit", "limit", "seconds", type=float, default_text="none (100%)")
    text = parser.format_help()
    assert "how many (default: 5)" in text and "pixels (default: 64)" in text and "(default: none (100%))" in text
    assert flags.load(parser.parse_args(["--width", "9"]), None) == Ranged(inner=Inner(width=9))
    with pytest.raises(ConfigError, match="^--count must be at least 1, got -2$"):
        flags.load(parser.parse_args(["--count", "-2"]), None)


def test_field_default_reads_nested_and_list_defaults():
    from navigator.collect import CollectConfig
    from navigator.training.config import TrainConfig

    assert field_default(FlyConfig, "scenario.max_seconds") is None
    assert field_default(CollectConfig, "parts[0].episodes") == 10
    assert field_default(TrainConfig, "dagger.rounds") == 0


def test_names_are_normalised_where_they_are_configured():
    from navigator.collect import CollectConfig

    config = load_config(CollectConfig, None, {"parts": [{"preset": " Winter + wind "}]})
    assert config.parts[0].preset == "winter+wind"
    assert load_config(FlyConfig, None, {"scenario.preset": "wind + night"}).scenario.preset == "wind+night"


def test_every_shipped_launch_file_loads():
    from navigator.collect import CollectConfig

    assert len(load_config(CollectConfig, ROOT / "launch" / "collect" / "mixed.yaml").parts) == 3
