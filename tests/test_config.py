import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from navigator.commands.fly import FlyConfig
from navigator.config import (MAX_SEED, ConfigError, ConfigFlags, DefaultsHelpFormatter, RecordedSettings,
                              SettingError, check_seed_span, check_settings, field_default, load_config,
                              read_yaml_mapping, setting, to_dict)

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
    with pytest.raises(ConfigError, match=rf"inner\.width in {path} must be a whole number, got \"wide\""):
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


def test_a_folder_given_as_the_config_file_is_named_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"^config file {tmp_path} is a folder, not a YAML file"):
        load_config(Outer, tmp_path)


def test_shipped_fly_launch_file_equals_the_built_in_defaults():
    assert to_dict(load_config(FlyConfig, ROOT / "launch" / "fly.yaml")) == to_dict(FlyConfig())


def test_shipped_training_recipe_is_valid():
    from navigator.training.config import TrainConfig

    config = load_config(TrainConfig, ROOT / "launch" / "train" / "fly_to_target.yaml")
    assert config.model == "cfc-ncp" and config.collect is not None
    assert {part.preset for part in config.collect.parts} == {"summer"}  # no held-out scenery in its data


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


@pytest.mark.parametrize("text, flags, message", [
    ("rate: 2\ncount: 3\n", {"rate": 0.5}, "rate in {path} must be in (0, 1), got 2.0 (correct the file: "
                                                        "--rate overrides it for this run only)"),
    ("count: lots\n", {"count": 3}, "count in {path} must be a whole number, got \"lots\" (correct the file: --count "
                                     "overrides it for this run only)"),
    # Equal to the flag's value in Python (True == 1, 1.0 == 1), yet not a whole number as a setting.
    ("count: true\n", {"count": 1}, "count in {path} must be a whole number, got true (correct the file: --count "
                                     "overrides it for this run only)"),
    ("count: 1.0\n", {"count": 1}, "count in {path} must be a whole number, got 1.0 (a decimal point or an exponent "
                                    "makes it a fraction to YAML; write it as 1) (correct the file: --count "
                                    "overrides it for this run only)"),
    ("count: 1E5\n", {"count": 1}, "count in {path} must be a whole number, got 100000.0 (a decimal point or an "
                                    "exponent makes it a fraction to YAML; write it as 100000) (correct the file: "
                                    "--count overrides it for this run only)"),
])
def test_a_bad_value_in_the_file_is_refused_even_where_a_flag_overrides_it(tmp_path, text, flags, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(Ranged, path, flags, {name: f"--{name}" for name in flags})
    assert str(raised.value) == message.format(path=path)
    path.write_text(text.replace("lots", "2").replace("true", "2").replace("1.0", "2").replace("1E5", "2")
                    .replace("rate: 2", "rate: 0.25"))
    assert load_config(Ranged, path, flags, {name: f"--{name}" for name in flags})


@pytest.mark.parametrize("text, line, key", [
    ("a: 1\nb: 2\na: 3\n", 3, "a"),
    ("outer:\n  x: 1\n  deeper:\n    y: 1\n    y: 2\n", 5, "y"),
    ("parts:\n  - {task: hike, task: follow}\n", 2, "task"),
    ("base: &b {x: 1}\nover:\n  <<: *b\n  y: 1\n  y: 2\n", 5, "y"),  # among a mapping's own keys, merged or not
])
def test_duplicate_keys_are_refused_at_any_depth(tmp_path, text, line, key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}: line {line}: duplicate key '{key}'"):
        read_yaml_mapping(path)


def test_merge_keys_work_as_yaml_defines_them(tmp_path):
    """`<<: *anchor` merges a mapping in; the mapping's own keys override the merged ones (no duplicate)."""
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {epochs: 1, lr: 0.01}\nrun:\n  <<: *b\n  epochs: 3\n")
    assert read_yaml_mapping(path) == {"base": {"epochs": 1, "lr": 0.01}, "run": {"epochs": 3, "lr": 0.01}}
    # Of a list of merged mappings the first wins a key both give (PyYAML alone keeps the last).
    path.write_text("scenario:\n  <<: [{preset: night, task: hike}, {preset: winter, seed: 2}]\n  seed: 3\n")
    assert read_yaml_mapping(path) == {"scenario": {"preset": "night", "task": "hike", "seed": 3}}
    path.write_text("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n")  # a merge key given twice is a duplicate key
    with pytest.raises(ConfigError, match=r"line 4: duplicate key '<<' \(first given on line 3\)"):
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


@dataclass(frozen=True)
class Seeded:
    seed: int = setting(0, ge=0, le=MAX_SEED)
    episodes: int = setting(5, ge=1)

    def __post_init__(self) -> None:
        check_settings(self)
        check_seed_span(self.seed, self.episodes, "seed", "episodes")


def test_the_last_seed_is_held_to_the_seed_range_naming_both_settings_as_given(tmp_path):
    assert Seeded(seed=MAX_SEED, episodes=1).seed == MAX_SEED
    with pytest.raises(SettingError, match=f"^seed: with episodes 2 the last episode's seed would be {MAX_SEED + 1}, "
                                           f"past the largest seed {MAX_SEED}; give seed at most {MAX_SEED - 1}, or "
                                           f"episodes at most 1$"):
        Seeded(seed=MAX_SEED, episodes=2)
    flags = ConfigFlags(Seeded)
    parser = argparse.ArgumentParser()
    flags.add(parser, "--seed", "seed", "first seed", type=int)
    flags.add(parser, "--episodes", "episodes", "how many", type=int)
    path = tmp_path / "c.yaml"
    path.write_text(f"seed: {MAX_SEED}\n")
    # Both settings as the user gave them: the file's seed by its key, --episodes as typed.
    with pytest.raises(ConfigError, match=f"^seed in {path}: with --episodes 3 .* give seed at most {MAX_SEED - 2}, "
                                          f"or --episodes at most 1$"):
        flags.load(parser.parse_args(["--episodes", "3"]), path)
    # Both in the file: named by their keys there (no flag was typed).
    path.write_text(f"seed: {MAX_SEED}\nepisodes: 3\n")
    with pytest.raises(ConfigError, match=f"^seed in {path}: with episodes 3 .* give seed at most {MAX_SEED - 2}, "
                                          f"or episodes at most 1$"):
        flags.load(parser.parse_args([]), path)
    with pytest.raises(ConfigError, match="^--seed: with --episodes 5 "):
        flags.load(parser.parse_args(["--seed", str(MAX_SEED)]), None)


def test_recorded_settings_stand_in_for_a_file_and_are_named_in_errors():
    recorded = RecordedSettings({"name": "b", "inner": {"width": 96}}, "runs/x/run.json's 'config'")
    assert load_config(Outer, recorded, {"inner.scale": 2.0}) == Outer(name="b", inner=Inner(width=96, scale=2.0))
    assert recorded.data == {"name": "b", "inner": {"width": 96}}  # overrides never change the record
    with pytest.raises(ConfigError, match="^count in runs/x/run.json's 'config' must be at least 1, got 0: runs/x/"
                                          "run.json's 'config' holds what navigator never writes"):
        load_config(Ranged, RecordedSettings({"count": 0}, "runs/x/run.json's 'config'"))


@pytest.mark.parametrize("overrides, message", [
    ({"dart_noise": 1.5}, "dart_noise must be in [0, 1], got 1.5"),
    ({"seed": MAX_SEED - 1, "parts": [{"episodes": 1}, {"task": "hike", "episodes": 3}]},
     f"seed: with parts[1].episodes 3 the last episode's seed would be {MAX_SEED + 1}"),
])
def test_collect_config_bounds(overrides, message):
    from navigator.collect import CollectConfig

    with pytest.raises(ConfigError) as raised:
        load_config(CollectConfig, None, overrides)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("overrides, message", [
    ({"head_size": 100_000}, "head_size must be in [7, 1024] for cfc-ncp, got 100000"),
    ({"head_size": 6}, "head_size must be in [7, 1024] for cfc-ncp, got 6 (cfc-ncp's NCP wiring needs more neurons "
                       "than its 4 motor neurons plus two)"),
    ({"head_size": 2000, "model": "lstm"}, "head_size must be in [1, 1024] for lstm, got 2000"),
    ({"head_size": 0}, "head_size must be in [7, 1024] for cfc-ncp, got 0"),
    ({"head_size": 300, "model": "ltc-ncp"}, "head_size must be in [7, 256] for ltc-ncp, got 300"),
    ({"device": "cuda:01"}, "device must be cpu, cuda or cuda:N (the GPU's index), got 'cuda:01'"),
    ({"feature_size": 5000}, "feature_size must be in [1, 1024], got 5000"),
    ({"lr": 2.0}, "lr must be in (0, 1], got 2.0"),
    ({"augment.noise_std": 300}, "augment.noise_std must be in [0, 255], got 300.0"),
    ({"window": 8, "stride": 9}, "stride must be at most window (8), got 9"),
    ({"dagger.episodes": 1_000_001}, "dagger.episodes must be in [1, 1000000], got 1000001"),
    ({"dagger.rounds": 2148}, "dagger.rounds must be at most 2147, got 2148: round 2148 would fly seeds up to "
                              "2148000015, past the largest seed 2147483647"),
    ({"model": "transformer"}, "model: unknown model 'transformer'"),
])
def test_training_config_bounds(overrides, message):
    from navigator.training.config import TrainConfig

    with pytest.raises(ConfigError) as raised:
        load_config(TrainConfig, None, {"data": ["d"], **overrides})
    assert str(raised.value).startswith(message)


def test_every_name_is_normalised_the_same_way_and_paths_stay_as_given(tmp_path):
    from navigator.evaluation.settings import EvalSettings
    from navigator.training.config import TrainConfig

    fly = load_config(FlyConfig, None, {"scenario.task": " HIKE ", "scenario.airframe": "CF2X",
                                        "scenario.preset": "Winter+WIND", "pilot": " Expert "})
    assert (fly.scenario.task, fly.scenario.airframe, fly.scenario.preset, fly.pilot) == (
        "hike", "cf2x", "winter+wind", "expert")
    assert load_config(FlyConfig, None, {"pilot": "PRETRAINED"}).pilot == "pretrained"
    assert load_config(TrainConfig, None, {"data": ["d"], "model": " LSTM "}).model == "lstm"
    # Spaces, underscores and hyphens between words are one separator, in every kind of name.
    for spelling in ("CfC NCP", "cfc_ncp", "CFC - NCP"):
        assert load_config(TrainConfig, None, {"data": ["d"], "model": spelling}).model == "cfc-ncp"
    spaced = load_config(FlyConfig, None, {"scenario.task": "Fly to target", "scenario.preset": "Night + Wind"})
    assert (spaced.scenario.task, spaced.scenario.preset) == ("fly-to-target", "night+wind")
    assert load_config(FlyConfig, None, {"scenario.task": "FLY_TO_TARGET"}).scenario.task == "fly-to-target"
    checkpoint = tmp_path / "Run" / "Best.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    settings = load_config(EvalSettings, None, {"pilots": ["EXPERT", str(checkpoint)], "task": "Follow"})
    assert settings.pilots == ("expert", str(checkpoint)) and settings.task == "follow"


def test_a_bad_value_in_recorded_settings_is_called_damage_not_a_yaml_slip():
    """Settings a run recorded (run.json, a manifest's recipe) are JSON navigator wrote: a bad value there was put
    there by hand or by damage, so no YAML advice ("quoted") and no "correct the file: the flag overrides it"."""
    from navigator.training.config import TrainConfig

    record = RecordedSettings({"data": ["d"], "epochs": "6"}, "run/run.json's 'config'")
    for overrides in ({}, {"epochs": 7}):  # as the CLI passes them: `flags` names the flags given
        with pytest.raises(ConfigError) as refused:
            load_config(TrainConfig, record, overrides, flags={key: "--epochs" for key in overrides})
        message = str(refused.value)
        assert message.startswith("epochs in run/run.json's 'config' must be a whole number, got \"6\": run/run.json's "
                                  "'config' holds what navigator never writes (edited or damaged)")
        assert "YAML" not in message and "correct the file" not in message
    # A bad flag on top of a sound record is the flag's problem, said as such.
    with pytest.raises(ConfigError) as refused:
        load_config(TrainConfig, RecordedSettings({"data": ["d"]}, "r"), {"lr": -1.0}, flags={"lr": "--lr"})
    assert str(refused.value).startswith("--lr must be") and "never writes" not in str(refused.value)


def _launch_config_class(path: Path) -> type:
    """The config class a launch file is read by: its folder's for those in a folder, its name's for the others."""
    from navigator.adapt.curve_config import CurveConfig
    from navigator.collect import CollectConfig
    from navigator.comparison.config import CompareConfig
    from navigator.explain.settings import ExplainConfig
    from navigator.training.config import TrainConfig

    by_folder = {"adapt": CurveConfig, "collect": CollectConfig, "compare": CompareConfig, "train": TrainConfig}
    by_name = {"fly.yaml": FlyConfig, "explain.yaml": ExplainConfig}
    return by_folder[path.parent.name] if path.parent != ROOT / "launch" else by_name[path.name]


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "launch").rglob("*.yaml") if p.name != "onboard.yaml"),
                         ids=lambda p: p.relative_to(ROOT / "launch").as_posix())
def test_every_launch_file_loads_as_its_command_reads_it(path: Path) -> None:
    """Each YAML in launch/ (the one-command recipes the README and their headers run) holds only settings its
    command knows, with accepted values: a renamed setting or a copied recipe with a slip fails here, not after a
    user's hour of collecting. (onboard.yaml is read by the onboard runtime's loader: tests/test_onboard_config.py.)"""
    config = load_config(_launch_config_class(path), path)
    assert to_dict(config)


def test_a_default_at_fault_beside_a_setting_the_file_gives_is_named_as_the_default(tmp_path):
    """`window: 8` makes the default stride (16) too large: the message must not say the file holds a stride."""
    from navigator.training.config import TrainConfig

    path = tmp_path / "recipe.yaml"
    path.write_text("data: [demos]\nwindow: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_config(TrainConfig, path)
    assert str(caught.value).startswith(f"stride (not set in {path}: its default) must be at most window (8), got 16")
    path.write_text("data: [demos]\nwindow: 8\nstride: 12\n")
    with pytest.raises(ConfigError) as caught:
        load_config(TrainConfig, path)
    assert str(caught.value).startswith(f"stride in {path} must be at most window (8), got 12")


def test_a_number_with_an_exponent_is_read_as_written(tmp_path):
    """PyYAML (YAML 1.1) reads `3e-3` as text; a recipe means the learning rate. Quoted, it stays text."""
    path = tmp_path / "c.yaml"
    path.write_text("lr: 3e-3\nepochs: 2\nbatch_size: 1E1\n")
    assert read_yaml_mapping(path) == {"lr": 0.003, "epochs": 2, "batch_size": 10.0}
    path.write_text("lr: '3e-3'\n")
    assert read_yaml_mapping(path) == {"lr": "3e-3"}


def test_numbers_are_read_as_yaml_1_2_writes_them(tmp_path):
    """YAML 1.1 read `seed: 010` as 8 (octal), `1:30` as 90 and `1:30.5` as 90.5 (base 60), `1_000` as 1000, and
    took `0o10` for text. YAML 1.2 has no base 60 and no underscores in numbers."""
    path = tmp_path / "c.yaml"
    path.write_text("seed: 010\na: 0o10\nb: 0x1F\nc: -7\nd: 1_000\ne: 1:30\nf: '010'\ng: 1:30.5\nh: 1_0.5\n"
                    "i: .5\nj: -2.\nk: 1e3\nl: -.inf\nm: +1.5E-2\n")
    assert read_yaml_mapping(path) == {"seed": 10, "a": 8, "b": 31, "c": -7, "d": "1_000", "e": "1:30", "f": "010",
                                       "g": "1:30.5", "h": "1_0.5", "i": 0.5, "j": -2.0, "k": 1000.0,
                                       "l": float("-inf"), "m": 0.015}
    import yaml

    assert yaml.safe_load("d: 1_000") == {"d": 1000}  # PyYAML's own loader is left as it was, for everyone else
    path.write_text("episodes: 1_0\n")
    with pytest.raises(ConfigError, match=re.escape('got "1_0" (YAML reads a number with underscores as text; '
                                                    'write it as 10)')):
        load_config(FlyConfig, path)
    from navigator.training.config import TrainConfig

    path.write_text("data: [demos]\nepochs: 1:30\n")
    with pytest.raises(ConfigError, match=f"epochs in {path} must be a whole number, got \"1:30\""):
        load_config(TrainConfig, path)


TAGGED = "a value with an explicit type tag (!!int, !!float, !!bool, ...) cannot be read as that type"


@pytest.mark.parametrize("value, said", [
    ("0x_", 'must be a whole number, got "0x_"'), ("2_", 'must be a whole number, got "2_"'),
    ("2024-02-30", 'must be a whole number, got "2024-02-30"'),
    ("!!int abc", TAGGED), ("!!bool maybe", TAGGED), ("!!timestamp 2020-13-45", TAGGED),
])
def test_values_yaml_cannot_read_as_numbers_or_tags_are_refused_in_one_line(tmp_path, value, said):
    """Each ended in a traceback (a ValueError or KeyError from PyYAML's constructors), whatever the key."""
    path = tmp_path / "c.yaml"
    path.write_text(f"seed: {value}\n")
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(FlyConfig, path)


def test_a_date_is_text(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("out: 2024-01-15\n")
    assert read_yaml_mapping(path) == {"out": "2024-01-15"}


@pytest.mark.parametrize("command_config, text, said", [
    ("fly", "max_seconds: 2\n", "(max_seconds is set as scenario.max_seconds)"),
    ("fly", "width: 96\n", "(width is set as scenario.camera.width)"),
    ("train", "data: [d]\nepisodes: 5\n", "(episodes is set as collect.parts[].episodes or dagger.episodes)"),
    # Given too deep: the hint looks up from where it was given, and across.
    ("collect", "parts: [{task: hike, max_seconds: 5}]\n", "(max_seconds is set as max_seconds at the top level)"),
    ("fly", "scenario: {episodes: 3}\n", "(episodes is set as episodes at the top level)"),
    ("fly", "scenario: {camera: {preset: night}}\n", "(preset is set as scenario.preset)"),
    ("train", "data: [d]\ndagger: {preset: night}\n", "(preset is set as collect.parts[].preset)"),
    # A recipe's settings given beside it, not in its mapping (`train:`), which the loader passes on as written.
    ("compare", "epochs: 3\n", "(epochs is set as train.epochs or train.dagger.epochs)"),
    ("compare", "rounds: 3\n", "(rounds is set as train.dagger.rounds)"),
    ("curve", "anchor: 3\n", "(anchor is set as train.anchor)"),
    # A recipe's section pasted whole into the file of the command it configures.
    ("collect", "collect: {parts: [{task: hike}], seed: 3}\n", "(collect's settings are set here: remove the "
                                                              "collect: level; "),
    # A collection's folder in a recipe is its first dataset folder, not the run's (the top-level out).
    ("train", "data: [d]\ncollect: {out: d2}\n", "(out is data's first folder, where the collection is written: name "
                                                "the folder there (data: [FOLDER]))"),
    # A mapping kept at the top for merge keys to reuse.
    ("fly", "shared: &s {preset: night}\nscenario: {<<: *s}\n", "goes under a key that starts with x-, such as "
                                                               "x-shared"),
    ("fly", "X-shared: {preset: night}\n", "such as x-shared: such keys"),  # x- in lower case, as docker-compose
])
def test_a_key_given_at_the_wrong_level_says_where_it_goes(tmp_path, command_config, text, said):
    from navigator.adapt.curve_config import CurveConfig
    from navigator.collect import CollectConfig
    from navigator.comparison.config import CompareConfig
    from navigator.training.config import TrainConfig

    path = tmp_path / "c.yaml"
    path.write_text(text)
    configs = {"fly": FlyConfig, "train": TrainConfig, "collect": CollectConfig, "compare": CompareConfig,
               "curve": CurveConfig}
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(configs[command_config], path)


def test_only_the_settings_a_curve_passes_on_are_hinted():
    """A curve's `train:` takes some of an adaptation's settings: one it sets per run (start) gets no hint there."""
    from navigator.adapt.curve_config import CurveConfig

    with pytest.raises(ConfigError) as raised:
        load_config(CurveConfig, None, {"start": "x.pt"})
    assert "is set as" not in str(raised.value)


def test_a_flag_for_a_setting_at_another_level_says_where_it_goes():
    with pytest.raises(ConfigError, match=re.escape("(max_seconds is set as scenario.max_seconds)")):
        load_config(FlyConfig, None, {"max_seconds": 3.0})


def test_a_path_from_home_in_a_file_is_read_from_home_as_a_flags_is(tmp_path, monkeypatch):
    """`out: ~/runs/x` made a folder named `~` in the current one, and the command printed to fly its result then
    read the home folder's: a file's path from home is expanded as the command line expands a flag's."""
    from navigator.training.config import TrainConfig

    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "c.yaml"
    path.write_text("data: [~/demos]\nout: ~/runs/x\n")
    config = load_config(TrainConfig, path)
    assert config.out == str(tmp_path / "runs" / "x") and list(config.data) == [str(tmp_path / "demos")]


def test_top_level_keys_that_start_with_x_are_the_files_own(tmp_path):
    """As docker-compose's extension fields: where a file keeps what merge keys reuse, never read as a setting."""
    path = tmp_path / "fly.yaml"
    path.write_text("x-night: &night {preset: night, max_seconds: 5}\nscenario: {<<: *night, task: hike}\n")
    config = load_config(FlyConfig, path)
    assert (config.scenario.preset, config.scenario.max_seconds, config.scenario.task) == ("night", 5.0, "hike")
    path.write_text("scenario: {x-note: 1}\n")  # only at the top: below it, x- keys are settings like any other
    with pytest.raises(ConfigError, match="unknown setting x-note"):
        load_config(FlyConfig, path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "x-shared: {preset: night}\n"])
def test_a_config_file_without_settings_is_refused(tmp_path, text):
    """An empty file is most often the wrong one or one not saved yet: running on the defaults would hide that."""
    path = tmp_path / "fly.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"config file {path} holds no settings .* give no config file to run on "
                                          rf"the defaults"):
        load_config(FlyConfig, path)


@pytest.mark.parametrize("text, overrides, said", [
    # DAgger settings without DAgger rounds: not given (named by the command's flag), given 0, or made 0 by the flag.
    ("dagger: {episodes: 3}\n", {}, "dagger.episodes in {path} is read only by DAgger rounds, and --dagger is 0"),
    ("dagger: {rounds: 0, epochs: 2}\n", {}, "dagger.epochs in {path} is read only by DAgger rounds, and "
                                              "dagger.rounds is 0: give dagger.rounds above 0, or drop it"),
    # DART settings without DART noise, in a recipe's collection.
    ("collect: {dart_noise: 0, dart_near_target: 0.5}\n", {},
     "collect.dart_near_target in {path} is read only with DART noise, and collect.dart_noise is 0"),
])
def test_a_setting_nothing_reads_is_refused_naming_what_would_read_it(tmp_path, text, overrides, said):
    from navigator.training.config import TrainConfig

    path = tmp_path / "recipe.yaml"
    path.write_text("data: [d]\n" + text)
    (tmp_path / "d").mkdir()
    flag = {"dagger.rounds": "--dagger"}
    with pytest.raises(ConfigError) as raised:
        load_config(TrainConfig, path, overrides, flag if overrides else {}, flag)
    assert said.format(path=path) in str(raised.value)


def test_a_setting_is_accepted_where_its_settings_read_it_or_a_flag_turns_it_off(tmp_path):
    from navigator.collect import CollectConfig
    from navigator.training.config import TrainConfig

    path = tmp_path / "recipe.yaml"
    (tmp_path / "d").mkdir()
    path.write_text("data: [d]\ndagger: {rounds: 1, episodes: 3, epochs: 2}\n"
                    "collect: {dart_noise: 0.1, dart_near_target: 0.5, dart_time_constant: 1.0}\n")
    config = load_config(TrainConfig, path)
    assert (config.dagger.episodes, config.collect.dart_near_target) == (3, 0.5)
    # `--dagger 0` on a recipe with DAgger rounds: the flag says to train without them, whatever the file sets.
    assert load_config(TrainConfig, path, {"dagger.rounds": 0}, {"dagger.rounds": "--dagger"}).dagger.rounds == 0
    path.write_text("dart_near_target: 0.5\n")
    assert load_config(CollectConfig, path, {"dart_noise": 0.0}, {"dart_noise": "--dart-noise"}).dart_noise == 0
    # A flag the others make unread is refused all the same.
    with pytest.raises(ConfigError, match="--dart-near-target is read only with DART noise, and --dart-noise is 0"):
        load_config(CollectConfig, None, {"dart_noise": 0.0, "dart_near_target": 0.5},
                    {"dart_noise": "--dart-noise", "dart_near_target": "--dart-near-target"})


def test_a_collection_flown_by_a_policy_refuses_dart_settings(tmp_path):
    from navigator.collect import CollectConfig

    path = tmp_path / "collect.yaml"
    (tmp_path / "policy.pt").write_bytes(b"")
    path.write_text(f"pilot: {tmp_path / 'policy.pt'}\ndart_noise: 0.2\n")
    with pytest.raises(ConfigError, match=r"dart_noise in .* is read only when the expert flies \(pilot: expert\): "
                                          r"a policy's roll-outs carry no DART noise"):
        load_config(CollectConfig, path)
    path.write_text("pilot: expert\ndart_noise: 0.2\n")
    assert load_config(CollectConfig, path).dart_noise == 0.2
    # No noise said outright, or a shape spelt out at its defaults, is what a policy's roll-outs are anyway.
    path.write_text(f"pilot: {tmp_path / 'policy.pt'}\ndart_noise: 0\ndart_time_constant: 0.5\ndart_near_target: 0\n")
    assert load_config(CollectConfig, path).dart_noise == 0


def test_a_template_that_spells_out_the_defaults_switches_the_noise_off_by_its_own_switch(tmp_path):
    """launch/collect/mixed.yaml lists every DART setting at its default; its comment says `dart_noise: 0` disables
    the noise: so it does, the others left as they are."""
    from navigator.collect import CollectConfig

    text = (ROOT / "launch" / "collect" / "mixed.yaml").read_text()
    assert "dart_noise: 0.1" in text and "dart_time_constant: 0.5" in text and "0 disables" in text
    path = tmp_path / "mixed.yaml"
    path.write_text(text.replace("dart_noise: 0.1", "dart_noise: 0"))
    assert load_config(CollectConfig, path).dart_noise == 0
    path.write_text(text.replace("dart_noise: 0.1", "dart_noise: 0").replace("dart_time_constant: 0.5",
                                                                              "dart_time_constant: 2"))
    with pytest.raises(ConfigError, match="dart_time_constant in .* is read only with DART noise"):
        load_config(CollectConfig, path)
