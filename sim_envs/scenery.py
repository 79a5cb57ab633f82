"""What a world looks like and how it behaves, as one plain description: the `Scenery` dataclass.

Every knob of the generated world lives here (colours, tree density, light, camera effects, wind, start distance).
Named sceneries (`summer`, `winter`, ...) are presets of it, in `sim_envs.presets`; the obstacles placed from a
Scenery and a seed are a layout, in `sim_envs.layout`. Colours are RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_envs.wind import WindConfig

Color = tuple[float, float, float]

TARGET_COLOR: Color = (0.95, 0.15, 0.08)
# Distractors: spheres of the target's size in hues far from its red (blue, yellow, cyan, white), so that an image
# can always tell the target from them; the `twins` preset keeps the target's own colour instead.
DISTRACTOR_COLORS: tuple[Color, ...] = ((0.15, 0.35, 0.90), (0.95, 0.85, 0.15), (0.10, 0.80, 0.85), (0.92, 0.92, 0.92))


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
    # Decoys: spheres of the target's size placed off the target, decoy i painted decoy_colors[i % len].
    distractors: int = 0
    decoy_colors: tuple[Color, ...] = (TARGET_COLOR,)
    # Wind acting through the airframe's drag.
    wind: WindConfig = field(default_factory=WindConfig)
    # Distance from the start to the (first) target, metres.
    target_distance: tuple[float, float] = (3.0, 12.0)
