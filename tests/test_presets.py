import pytest

from sim_envs.errors import UnknownNameError
from sim_envs.presets import HELD_OUT_PRESETS, PRESET_NAMES, Scenery, resolve_preset


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
