import pytest

from sim_envs import canonical_task, task_id
from sim_envs.airframe import canonical_airframe, load_airframe
from sim_envs.errors import InvalidNameError, UnknownNameError
from sim_envs.presets import HELD_OUT_PRESETS, PRESET_NAMES, SEASONS, canonical_preset, resolve_preset
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


@pytest.mark.parametrize("spec", ["winter+autumn", "winter+autumn+night", "Summer + WINTER", "autumn+wind+summer"])
def test_at_most_one_season_composes_with_the_other_presets(spec):
    with pytest.raises(InvalidNameError, match="seasons .*give at most one season \\(summer, autumn, winter\\), "
                                               "composed with any of the other presets") as error:
        canonical_preset(spec)
    assert repr(spec) in str(error.value)


def test_every_season_is_a_preset_and_composes_with_every_other_preset():
    assert set(SEASONS) <= set(PRESET_NAMES)
    for season in SEASONS:
        for other in set(PRESET_NAMES) - set(SEASONS):
            assert canonical_preset(f"{season}+{other}") == f"{season}+{other}"


@pytest.mark.parametrize("name, canonical", [
    ("HIKE", "hike"), (" follow ", "follow"), ("Fly-To-Target", "fly-to-target"), ("navigator/Hike-v0", "hike"),
])
def test_task_names_are_normalised_like_presets(name, canonical):
    assert canonical_task(name) == canonical
    assert task_id(name) == task_id(canonical)


@pytest.mark.parametrize("name, canonical", [("CF2X", "cf2x"), (" x500 ", "x500")])
def test_airframe_names_are_normalised_like_presets(name, canonical):
    assert canonical_airframe(name) == canonical
    assert load_airframe(name).name == canonical


@pytest.mark.parametrize("check, name", [(canonical_task, "race"), (canonical_airframe, "f450")])
def test_unknown_names_are_still_refused_echoing_the_input(check, name):
    with pytest.raises(UnknownNameError, match=repr(name)):
        check(name)
