"""Decoys: `distractors` paints them in hues far from the target's, `twins` in the target's own, at the same places."""

import numpy as np
import pybullet as p
import pytest

from sim_envs import make_env
from sim_envs.presets import resolve_preset
from sim_envs.scenery import DISTRACTOR_COLORS, TARGET_COLOR

SEEDS = (100000, 100001, 100002)


def decoys_of(preset: str, seed: int):
    env = make_env("fly-to-target", preset=preset)
    try:
        env.reset(seed=seed)
        world = env.unwrapped
        drawn = {tuple(round(c, 3) for c in shape[7][:3])
                 for body in range(p.getNumBodies(physicsClientId=world.world.render_client))
                 for shape in p.getVisualShapeData(p.getBodyUniqueId(body, physicsClientId=world.world.render_client),
                                                   physicsClientId=world.world.render_client)}
        return world.layout.decoys, drawn
    finally:
        env.close()


def test_distractors_are_coloured_far_from_the_target_and_twins_like_it():
    for color in DISTRACTOR_COLORS:
        # At least half the channel range away from the target's red in some channel: never a shade of it.
        assert np.abs(np.subtract(color, TARGET_COLOR)).max() >= 0.5, color
    assert set(resolve_preset("distractors").decoy_colors) == set(DISTRACTOR_COLORS)
    assert resolve_preset("twins").decoy_colors == (TARGET_COLOR,)
    assert resolve_preset("summer").distractors == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_distractors_and_twins_differ_only_in_colour_and_are_drawn_in_it(seed):
    distractors, drawn_distractors = decoys_of("distractors", seed)
    twins, drawn_twins = decoys_of("twins", seed)
    assert len(distractors) == len(twins) == 4
    assert [d.position for d in distractors] == [t.position for t in twins]
    assert {d.color for d in distractors} == set(DISTRACTOR_COLORS)
    assert {t.color for t in twins} == {TARGET_COLOR}
    # The render client holds a sphere of each decoy colour: the layout's colours are what the camera sees.
    for color in DISTRACTOR_COLORS:
        assert tuple(round(c, 3) for c in color) in drawn_distractors
        assert tuple(round(c, 3) for c in color) not in drawn_twins
