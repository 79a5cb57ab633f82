import pytest

from sim_envs.errors import InvalidNameError, UnknownNameError
from sim_envs.presets import HELD_OUT_PRESETS, PRESET_NAMES, canonical_preset, resolve_preset
from sim_envs.scenery import Scenery


def test_summer_is_the_default_scenery():
    assert resolve_preset("summer") == Scenery()


def test_every_held_out_preset_differs_from_summer():
    for name in HELD_OUT_PRESETS:
        assert resolve_preset(name) != Scenery(), name


def test_presets_compose_in_order():
    composed = resolve_preset("winter+wind")
    assert composed.ground_base == resolve_preset("winter").ground_base
    assert composed.wind == resolve_preset("wind").wind
    assert composed.wind.steady_speed > 0


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as error:
        resolve_preset("winter+spring")
    message = str(error.value)
    assert "'spring'" in message
    for name in PRESET_NAMES:
        assert name in message


@pytest.mark.parametrize("spec, canonical", [
    ("summer", "summer"),
    ("winter + wind", "winter+wind"),
    (" Winter+WIND ", "winter+wind"),
    ("wind+winter", "wind+winter"),  # order is kept: later parts win where two set the same knob
])
def test_canonical_preset_is_one_spelling_per_preset(spec, canonical):
    assert canonical_preset(spec) == canonical
    assert resolve_preset(spec) == resolve_preset(canonical)


@pytest.mark.parametrize("spec, problem", [
    ("", "is empty"),
    ("  ", "is empty"),
    ("winter+", "has an empty part"),
    ("+winter", "has an empty part"),
    ("winter++wind", "has an empty part"),
    ("wind+wind", "names 'wind' more than once"),
    ("winter+spring", "unknown preset 'spring' in 'winter\\+spring'"),
])
def test_bad_preset_specs_are_refused_echoing_the_whole_spec(spec, problem):
    with pytest.raises(InvalidNameError, match=problem) as error:
        canonical_preset(spec)
    message = str(error.value)
    assert repr(spec) in message
    if "empty" in problem:
        assert "valid presets are: summer, autumn" in message
    with pytest.raises(InvalidNameError):
        resolve_preset(spec)


def test_unknown_preset_error_is_an_invalid_name_error():
    with pytest.raises(UnknownNameError):
        canonical_preset("spring")
