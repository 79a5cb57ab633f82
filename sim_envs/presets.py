"""Scenery presets: the training distribution (`summer`) and the held-out ones, composable with `+`.

A preset is a `Scenery` dataclass: every knob of the generated world (colours, tree density, light, camera effects,
wind, start distance). Each named preset is a set of overrides applied on top of `summer`; composing
`winter+wind` applies winter's overrides, then wind's. Colours are RGB in [0, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sim_envs.errors import UnknownNameError
from sim_envs.wind import WindConfig

Color = tuple[float, float, float]


@dataclass(frozen=True)
class Scenery:
    # Ground: a procedural texture mixing two colours in low-frequency blobs plus fine grain.
    ground_base: Color = (0.30, 0.52, 0.20)
    ground_patch: Color = (0.45, 0.40, 0.22)
    ground_grain: float = 0.08
    # Obstacles: "trees" (trunk plus crown) or "pillars" (square columns).
    obstacle_style: str = "trees"
    obstacle_density: float = 0.055  # per square metre of the flight area
    trunk_color: Color = (0.36, 0.24, 0.14)
    crown_colors: tuple[Color, ...] = ((0.13, 0.42, 0.12), (0.20, 0.50, 0.15), (0.10, 0.34, 0.14))
    bare_tree_fraction: float = 0.0  # winter: trees without crowns
    # Sky, composited where nothing was drawn (depth at the far plane).
    sky_top: Color = (0.35, 0.55, 0.85)
    sky_horizon: Color = (0.75, 0.85, 0.95)
    # Light: the sun's elevation range (degrees; azimuth is random) and its strength.
    sun_elevation: tuple[float, float] = (35.0, 70.0)
    ambient: float = 0.6
    diffuse: float = 0.5
    # Camera effects applied to the rendered image.
    exposure: float = 1.0  # gain on linear intensity
    noise_std: float = 0.0  # Gaussian noise, in 0..255 units
    blur_sigma: float = 0.0  # Gaussian blur, pixels
    occlusion_patches: int = 0  # black rectangles moved every second, as in the image-space stress test
    # Decoys coloured like the target, placed off the target.
    distractors: int = 0
    # Wind acting through the airframe's drag.
    wind: WindConfig = field(default_factory=WindConfig)
    # Distance from the start to the (first) target, metres.
    target_distance: tuple[float, float] = (3.0, 12.0)


TARGET_COLOR: Color = (0.95, 0.15, 0.08)

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
    "distractors": {"distractors": 4},
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
TRAINING_PRESET = "summer"
HELD_OUT_PRESETS: tuple[str, ...] = tuple(name for name in PRESET_NAMES if name != TRAINING_PRESET)


def resolve_preset(spec: str) -> Scenery:
    """`"winter+wind"` -> the composed Scenery. Raises UnknownNameError for a name that is not a preset."""
    names = [part.strip() for part in spec.split("+")]
    scenery = Scenery()
    for name in names:
        if name not in _OVERRIDES:
            raise UnknownNameError("preset", name, PRESET_NAMES)
        scenery = dataclasses.replace(scenery, **_OVERRIDES[name])
    return scenery
