"""Image augmentation for training windows, on uint8-derived floats (0..255), one window at a time with OpenCV.

The demonstrations come from the training scenery only (summer daylight); augmentation is how a policy learns that
what it must ignore can change: light, colour, focus, sensor noise, framing and things in front of the lens. The
steps run in the order a camera would produce them: the scene's colour and light (saturation, contrast,
brightness, colour gains), the exposure (down to a night's), blur, the sensor's noise, then occluding patches, and
finally rounding to whole grey levels, as the uint8 frames the policy flies on.

Each window draws its own amounts (a camera's exposure and white balance change slowly, so a whole sequence shares
them); noise is drawn per pixel and frame. Every amount draws from the generator passed in, in one call per window,
and the noise from OpenCV's generator seeded by it, so a training run is reproducible. A window's uniform draws, in
order, each only where its setting is on: saturation, contrast, brightness, exposure, three colour gains, blur,
two shifts, the noise level and the noise seed, the cut-outs' count, then four per possible cut-out (height, width,
top, left).

Why OpenCV: the colour steps are one affine map of each pixel (`cv2.transform`, one pass), and OpenCV's separable
filter and Gaussian generator are several times faster than torch's at these sizes. With torch ops the loop's
background thread made batches at half the training step's rate on the shipped recipe (bench/bench_train.py
--config launch/train/fly_to_target.yaml, "batches alone": 5.7k frames/s against 11.2k), so the loop waited for it;
this module makes them at 1.3x the step's rate (15.7k).

`AUGMENT_VERSION` names these numbers: a training run records it, and resuming a run started with other numbers is
refused (navigator/training/pipeline.py), since it would continue on differently augmented images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch import Tensor

from navigator.training.config import AugmentConfig

# 1: torch ops over the batch (before 2026-12); 2: this module. Runs record it (run.json's `augment_version`).
AUGMENT_VERSION = 2

# OpenCV runs every call in the thread that makes it: at these sizes its own thread pool gains nothing (measured), and
# the training step's threads already fill the cores.
cv2.setNumThreads(0)
_SEEDS = 2**31  # cv2.setRNGSeed takes a C int


def _draws(config: AugmentConfig) -> int:
    """How many uniform numbers a window draws: fixed by the settings, so no draw depends on another's value."""
    colour = bool(config.saturation) + bool(config.contrast) + bool(config.brightness) + (config.exposure_min < 1.0)
    return (colour + 3 * bool(config.color) + bool(config.blur_sigma) + 2 * (config.shift_px > 0)
            + 2 * bool(config.noise_std) + (1 + 4 * config.cutouts if config.cutouts else 0))


def _colour_map(x: np.ndarray, config: AugmentConfig, draw) -> np.ndarray | None:
    """The window's colour and light steps as one affine map of each pixel's (r, g, b): a 3x4 matrix, or None when
    none is set. Saturation scales the distance from the pixel's grey, contrast the distance from the window's mean
    (a saturation change keeps every pixel's grey, so the mean is the unaugmented one), then the gains multiply."""
    if not (config.saturation or config.contrast or config.brightness or config.exposure_min < 1.0 or config.color):
        return None
    saturation = 1.0 + config.saturation * (2 * draw() - 1) if config.saturation else 1.0
    contrast = 1.0 + config.contrast * (2 * draw() - 1) if config.contrast else 1.0
    gain = 1.0 + config.brightness * (2 * draw() - 1) if config.brightness else 1.0
    if config.exposure_min < 1.0:
        gain *= math.exp(math.log(config.exposure_min) * draw())  # log-uniform in [exposure_min, 1]
    gains = gain * (np.array([1.0 + config.color * (2 * draw() - 1) for _ in range(3)]) if config.color
                    else np.ones(3))
    towards_grey = saturation * np.eye(3) + (1.0 - saturation) / 3.0
    mean = float(x.mean(dtype=np.float64)) if config.contrast else 0.0
    linear = gains[:, None] * contrast * towards_grey
    offset = gains * (1.0 - contrast) * mean
    return np.hstack([linear, offset[:, None]])


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every frame of (T, H, W, C) with standard deviation `sigma` pixels, borders replicated so
    that they do not darken."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / max(sigma, 1e-3)) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    blurred = np.empty_like(x)
    for frame, out in zip(x, blurred):
        cv2.sepFilter2D(frame, -1, kernel, kernel, dst=out, borderType=cv2.BORDER_REPLICATE)
    return blurred


def _augment_window(x: np.ndarray, config: AugmentConfig, draws: list[float]) -> np.ndarray:
    """One window (T, H, W, 3) float32, augmented in place where it can be, with its uniform `draws`."""
    draw = iter(draws).__next__
    steps, height, width, channels = x.shape
    colour = _colour_map(x, config, draw)
    if colour is not None:
        x = cv2.transform(x.reshape(steps * height, width, channels), colour).reshape(x.shape)
    if config.blur_sigma:
        x = _blur(x, config.blur_sigma * draw())
    if config.shift_px > 0:
        # A camera mount's small misalignment moves the whole view alike (wrapping around).
        span = 2 * config.shift_px + 1
        shift = tuple(int(draw() * span) - config.shift_px for _ in range(2))
        x = np.roll(x, shift, axis=(1, 2))
    if config.noise_std:
        std = config.noise_std * draw()
        noise = np.empty((steps * height, width * channels), np.float32)
        # OpenCV's generator is per thread: seeded right before it fills, whichever thread augments.
        cv2.setRNGSeed(int(draw() * _SEEDS))
        cv2.randn(noise, 0.0, std)
        x += noise.reshape(x.shape)
    np.clip(x, 0.0, 255.0, out=x)
    if config.cutouts:
        shown = int(draw() * (config.cutouts + 1))
        for index in range(config.cutouts):
            # Every box is drawn whether or not it is shown, so the draws do not depend on the count.
            box_h = max(1, int((1 / 8 + (1 / 3 - 1 / 8) * draw()) * height))
            box_w = max(1, int((1 / 8 + (1 / 3 - 1 / 8) * draw()) * width))
            top, left = int(draw() * (height - box_h + 1)), int(draw() * (width - box_w + 1))
            if index < shown:
                x[:, top:top + box_h, left:left + box_w, :] = 0.0
    return np.rint(x, out=x)


def augment(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """images uint8 (B, T, H, W, 3) on the CPU -> float32 (B, T, H, W, 3) of whole grey levels in 0..255, every
    window augmented with its own amounts, drawn from `generator` window after window."""
    count = _draws(config)
    windows = [_augment_window(window.astype(np.float32), config,
                               torch.rand(count, dtype=torch.float64, generator=generator).tolist())
               for window in images.numpy()]
    # The training loop augments one window per call: its result is returned as it is, not copied into a batch.
    return torch.from_numpy(windows[0][None] if len(windows) == 1 else np.stack(windows))
