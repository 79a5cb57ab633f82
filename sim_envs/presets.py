"""Scenery presets: the training distribution (`summer`) and the held-out ones, composable with `+`.

Each named preset is a set of overrides of `Scenery` applied on top of `summer`; composing `winter+wind` applies
winter's overrides, then wind's (later parts win where two set the same knob, so order matters and is kept).

A preset spec is written in one canonical form, `canonical_preset`: parts lower-cased, without spaces, joined by `+`
in the order given. "Winter + Wind" and "winter+wind" are one preset, and datasets, bundles and `env.preset` store
the canonical form.

The seasons (`SEASONS`) each repaint the whole landscape (ground, trees, sky, sun), so two of them in one spec would
not compose but one would silently overwrite the other: a spec holds at most one season, composed with any of the
other presets.
"""

from __future__ import annotations

import dataclasses

from sim_envs import normal_name
from sim_envs.errors import InvalidNameError, UnknownNameError
from sim_envs.scenery import DISTRACTOR_COLORS, Scenery
from sim_envs.wind import WindConfig

# Held-out presets as overrides of `summer`. Kept as data so that a new season is a few lines.
_OVERRIDES: dict[str, dict[str, object]] = {
    "summer": {},
    "autumn": {
        "ground_base": (0.50, 0.40, 0.20),
        "ground_patch": (0.62, 0.38, 0.12),
        "crown_colors": ((0.85, 0.55, 0.10), (0.75, 0.40, 0.08), (0.90, 0.75, 0.20), (0.55, 0.30, 0.12)),
        "bare_tree_fraction": 0.15,
        "sky_top": (0.50, 0.60, 0.75),
        "sky_horizon": (0.85, 0.82, 0.78),
        "sun_elevation": (20.0, 45.0),
    },
    "winter": {
        "ground_base": (0.90, 0.92, 0.95),
        "ground_patch": (0.78, 0.80, 0.86),
        "ground_grain": 0.04,
        "trunk_color": (0.30, 0.26, 0.24),
        "crown_colors": ((0.80, 0.84, 0.86), (0.70, 0.76, 0.74), (0.88, 0.90, 0.92)),
        "bare_tree_fraction": 0.5,
        "sky_top": (0.70, 0.74, 0.80),
        "sky_horizon": (0.88, 0.89, 0.92),
        "sun_elevation": (10.0, 30.0),
    },
    "night": {
        "sky_top": (0.02, 0.03, 0.08),
        "sky_horizon": (0.08, 0.09, 0.15),
        "ambient": 0.15,
        "diffuse": 0.25,
        "exposure": 0.45,
        "noise_std": 4.0,
    },
    # Four spheres of the target's size in other colours: salient objects a policy must ignore.
    "distractors": {"distractors": 4, "decoy_colors": DISTRACTOR_COLORS},
    # The same four spheres in the target's own colour, in the same places: where one is in view and nearer than
    # the target, no image tells them apart, so this measures what a policy does when its view is ambiguous.
    "twins": {"distractors": 4},
    "occlusion": {"occlusion_patches": 3},
    "noise": {"noise_std": 12.0, "blur_sigma": 1.0},
    "wind": {"wind": WindConfig(steady_speed=2.0, gust_std=1.5, gust_time_constant=1.5)},
    "range": {"target_distance": (12.0, 25.0)},
    "pillars": {
        "obstacle_style": "pillars",
        "trunk_color": (0.55, 0.55, 0.58),
        "ground_base": (0.42, 0.42, 0.44),
        "ground_patch": (0.50, 0.48, 0.45),
    },
}

PRESET_NAMES: tuple[str, ...] = tuple(_OVERRIDES)
SEASONS: tuple[str, ...] = ("summer", "autumn", "winter")  # at most one per spec: each sets the same landscape knobs
TRAINING_PRESET = "summer"
HELD_OUT_PRESETS: tuple[str, ...] = tuple(name for name in PRESET_NAMES if name != TRAINING_PRESET)


def canonical_preset(spec: str) -> str:
    """`" Winter + Wind "` -> `"winter+wind"`: the one spelling of a preset spec that everything stores.

    Raises InvalidNameError (a ValueError) that echoes the whole spec for an empty spec or part ("winter+"),
    a part given twice ("wind+wind"), two seasons ("winter+autumn"), or a part that is not a preset
    (UnknownNameError, listing the valid ones).
    """
    if not isinstance(spec, str):
        raise InvalidNameError(f"preset must be a string such as 'winter+wind', got {spec!r}")
    parts = [normal_name(part) for part in spec.split("+")]
    valid = f"valid presets are: {', '.join(PRESET_NAMES)}, composed with '+' (e.g. 'winter+wind')"
    if not any(parts):
        raise InvalidNameError(f"preset {spec!r} is empty; {valid}")
    if not all(parts):
        raise InvalidNameError(f"preset {spec!r} has an empty part; {valid}")
    for part in parts:
        if part not in _OVERRIDES:
            raise UnknownNameError("preset", part, PRESET_NAMES, spec=spec)
    repeated = sorted({part for part in parts if parts.count(part) > 1})
    if repeated:
        raise InvalidNameError(f"preset {spec!r} names {', '.join(map(repr, repeated))} more than once; "
                               f"give each preset once")
    seasons = [part for part in parts if part in SEASONS]
    if len(seasons) > 1:
        raise InvalidNameError(f"preset {spec!r} names {len(seasons)} seasons ({', '.join(seasons)}), which repaint "
                               f"the same landscape; give at most one season ({', '.join(SEASONS)}), composed with "
                               f"any of the other presets (e.g. 'winter+night+wind')")
    return "+".join(parts)


def resolve_preset(spec: str) -> Scenery:
    """`"winter+wind"` -> the composed Scenery; the spec is checked and normalised by `canonical_preset` first."""
    scenery = Scenery()
    for name in canonical_preset(spec).split("+"):
        scenery = dataclasses.replace(scenery, **_OVERRIDES[name])
    return scenery
