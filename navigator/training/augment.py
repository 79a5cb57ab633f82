"""Image augmentation for training windows, in torch on uint8-derived floats (0..255).

The demonstrations come from the training scenery only (summer daylight); augmentation is how a policy learns that
what it must ignore can change: light, colour, focus, sensor noise, framing and things in front of the lens. The
steps run in the order a camera would produce them: the scene's colour and light (saturation, contrast,
brightness, colour gains), the exposure (down to a night's), blur, the sensor's noise, then occluding patches, and
finally rounding to whole grey levels, as the uint8 frames the policy flies on.

Each window draws its own amounts (a camera's exposure and white balance change slowly, so a whole sequence shares
them); noise is drawn per pixel and frame. Everything draws from the generator passed in, so a training run is
reproducible.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from navigator.training.config import AugmentConfig


def _uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _factor(amount: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return _uniform(1.0 - amount, 1.0 + amount, shape, generator)


def _blur(x: Tensor, sigmas: Tensor) -> Tensor:
    """Separable Gaussian blur of (B, T, H, W, C) with one sigma per window (0: unchanged), zero-padded borders
    replaced by edge replication so that borders do not darken."""
    batch, steps, height, width, channels = x.shape
    radius = max(1, math.ceil(3.0 * float(sigmas.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (offsets / sigmas.clamp_min(1e-3).unsqueeze(1)) ** 2)  # (B, K)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    # Frames as (1, B*T*C, H, W) planes, each convolved with its window's kernel (a grouped convolution).
    planes = x.permute(0, 1, 4, 2, 3).reshape(1, batch * steps * channels, height, width)
    per_plane = kernels.repeat_interleave(steps * channels, dim=0)  # (B*T*C, K)
    padded = torch.nn.functional.pad(planes, (radius, radius, 0, 0), mode="replicate")
    planes = torch.nn.functional.conv2d(padded, per_plane.view(-1, 1, 1, 2 * radius + 1), groups=planes.shape[1])
    padded = torch.nn.functional.pad(planes, (0, 0, radius, radius), mode="replicate")
    planes = torch.nn.functional.conv2d(padded, per_plane.view(-1, 1, 2 * radius + 1, 1), groups=planes.shape[1])
    return planes.view(batch, steps, channels, height, width).permute(0, 1, 3, 4, 2)


def _shift(x: Tensor, shift_px: int, generator: torch.Generator) -> Tensor:
    """Translate each window by up to `shift_px` pixels each way (wrapping around, as a camera mount's small
    misalignment moves the whole view)."""
    shifts = torch.randint(-shift_px, shift_px + 1, (x.shape[0], 2), generator=generator).tolist()
    # Training augments one window per call: a roll moves its data in two slice copies, five times faster than one
    # gather over the batch.
    return torch.cat([torch.roll(window, shifts=(dy, dx), dims=(1, 2)) for window, (dy, dx) in zip(x, shifts)]
                     ).view(x.shape)


def _cut_out(x: Tensor, cutouts: int, generator: torch.Generator) -> Tensor:
    """Black out up to `cutouts` rectangles (1/8 to 1/3 of each side) per window of (B, T, H, W, C), in place."""
    batch, _, height, width, _ = x.shape
    count = torch.randint(0, cutouts + 1, (batch,), generator=generator).tolist()
    for index in range(cutouts):
        box_h = (_uniform(1 / 8, 1 / 3, (batch,), generator) * height).long().clamp_min(1)
        box_w = (_uniform(1 / 8, 1 / 3, (batch,), generator) * width).long().clamp_min(1)
        top = (torch.rand(batch, generator=generator) * (height - box_h + 1)).long()
        left = (torch.rand(batch, generator=generator) * (width - box_w + 1)).long()
        # Every draw is made whether or not the box is used, so each window's later draws do not depend on its count.
        for window, (shown, h, w, y, x0) in enumerate(zip(count, box_h.tolist(), box_w.tolist(), top.tolist(),
                                                          left.tolist())):
            if index < shown:
                x[window, :, y:y + h, x0:x0 + w, :] = 0.0
    return x


def augment(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """images uint8 (B, T, H, W, 3) -> float32 (B, T, H, W, 3) of whole grey levels in 0..255, augmented."""
    x = images.to(torch.float32)
    window = (x.shape[0], 1, 1, 1, 1)
    if config.saturation:
        # The channels' mean, summed by hand: four times faster than mean(dim=-1) over three values, and the same
        # number (whole grey levels sum exactly in any order).
        grey = (x[..., 0:1] + x[..., 1:2] + x[..., 2:3]) / 3
        x = (x - grey).mul_(_factor(config.saturation, window, generator)).add_(grey)
    if config.contrast:
        mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
        x = (x - mean).mul_(_factor(config.contrast, window, generator)).add_(mean)
    gain = torch.ones(window)
    if config.brightness:
        gain = gain * _factor(config.brightness, window, generator)
    if config.exposure_min < 1.0:
        gain = gain * torch.exp(_uniform(math.log(config.exposure_min), 0.0, window, generator))
    if config.color:
        gain = gain * _factor(config.color, (x.shape[0], 1, 1, 1, 3), generator)
    x = x * gain
    if config.blur_sigma:
        x = _blur(x, _uniform(0.0, config.blur_sigma, (x.shape[0],), generator))
    if config.shift_px > 0:
        x = _shift(x, config.shift_px, generator)
    if config.noise_std:
        std = _uniform(0.0, config.noise_std, window, generator)
        x = x + torch.randn(x.shape, generator=generator).mul_(std)
    x = x.clamp_(0.0, 255.0)
    if config.cutouts:
        x = _cut_out(x, config.cutouts, generator)
    return x.round_()
