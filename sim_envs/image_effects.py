"""Image-space effects of the stress presets: exposure, sensor noise, blur and occluding patches.

All randomness comes from the generator passed in, so a seeded episode gives the same images bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np


def apply_effects(image: np.ndarray, rng: np.random.Generator, exposure: float, noise_std: float,
                  blur_sigma: float, occluders: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Returns a new uint8 image; the input is left untouched. Occluders are (x0, y0, x1, y1) pixel boxes."""
    if exposure == 1.0 and noise_std == 0.0 and blur_sigma == 0.0 and not occluders:
        return image
    out = image.astype(np.float32)
    if exposure != 1.0:
        out *= exposure
    if blur_sigma > 0.0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    if noise_std > 0.0:
        out += rng.normal(0.0, noise_std, out.shape).astype(np.float32)
    result = np.clip(out, 0, 255).astype(np.uint8)
    for x0, y0, x1, y1 in occluders:
        result[y0:y1, x0:x1] = 0
    return result


def random_occluders(rng: np.random.Generator, count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """`count` black boxes, each covering 3-8% of the image, at random places."""
    boxes = []
    for _ in range(count):
        w = int(rng.integers(width // 6, width // 3))
        h = int(rng.integers(height // 6, height // 3))
        x0 = int(rng.integers(0, width - w))
        y0 = int(rng.integers(0, height - h))
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes
