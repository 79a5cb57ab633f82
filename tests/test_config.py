from dataclasses import dataclass, field
from pathlib import Path

import pytest

from navigator.commands.fly import FlyConfig
from navigator.config import ConfigError, load_config, to_dict

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
    with pytest.raises(ConfigError, match=r"inner\.width must be a whole number"):
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
