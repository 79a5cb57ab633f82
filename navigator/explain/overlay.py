"""Saliency video frames: the onboard camera with its saliency map blended on as a heat map (the target's region
outlined where it is known), upscaled beside the chase view (flown episodes) or alone (recorded ones)."""

from __future__ import annotations

import cv2
import numpy as np

HEAT_OPACITY = 0.7  # opacity of the heat map where saliency peaks; it fades to the bare frame where there is none
TARGET_OUTLINE = (255, 255, 255)  # RGB


def heat_overlay(frame: np.ndarray, saliency: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """frame (H, W, 3) uint8 RGB, saliency (H, W) >= 0 (scaled to its own peak: a frame's map shows where within it
    the policy looks, not how much), target (H, W) bool or None -> (H, W, 3) uint8 RGB: the frame under a JET heat map
    whose opacity follows the saliency, with the target's region outlined."""
    if saliency.shape != frame.shape[:2]:
        raise ValueError(f"saliency {saliency.shape} and frame {frame.shape[:2]} must have one size")
    peak = float(saliency.max())
    level = saliency / peak if peak > 0 else np.zeros_like(saliency)
    heat = cv2.cvtColor(cv2.applyColorMap(np.round(level * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    opacity = (HEAT_OPACITY * level)[..., None]
    blended = np.round(frame * (1.0 - opacity) + heat * opacity).astype(np.uint8)
    if target is not None and target.any():
        contours, _ = cv2.findContours(target.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(blended, contours, -1, TARGET_OUTLINE, 1)
    return blended


def compose(overlay: np.ndarray, chase: np.ndarray | None, height: int = 240) -> np.ndarray:
    """The overlay upscaled (nearest neighbour: pixels stay pixels) to `height` rows, with `chase` (RGB, resized to
    `height` rows if it has other) on its right; the overlay alone without one."""
    scale = height / overlay.shape[0]
    left = cv2.resize(overlay, (round(overlay.shape[1] * scale), height), interpolation=cv2.INTER_NEAREST)
    if chase is None:
        return left
    if chase.shape[0] != height:
        chase = cv2.resize(chase, (round(chase.shape[1] * height / chase.shape[0]), height),
                           interpolation=cv2.INTER_AREA)
    return np.concatenate([left, chase], axis=1)
