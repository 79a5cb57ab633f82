"""Image augmentation for training windows, in torch on uint8-derived floats (0..255).

Photometric jitter is drawn once per window (a whole sequence shares one brightness, contrast and saturation, as
a camera's exposure changes slowly), noise per frame, and a small translation per window. Everything draws from the
generator passed in, so a training run is reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from navigator.training.config import AugmentConfig


def _factor(amount: float, batch: int, generator: torch.Generator) -> Tensor:
    return 1.0 + amount * (2.0 * torch.rand(batch, 1, 1, 1, 1, generator=generator) - 1.0)


def augment(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """images uint8 (B, T, H, W, 3) -> float32 (B, T, H, W, 3) in 0..255, augmented."""
    x = images.to(torch.float32)
    batch = x.shape[0]
    grey = x.mean(dim=-1, keepdim=True)
    x = grey + _factor(config.saturation, batch, generator) * (x - grey)
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    x = mean + _factor(config.contrast, batch, generator) * (x - mean)
    x = x * _factor(config.brightness, batch, generator)
    if config.shift_px > 0:
        shifts = torch.randint(-config.shift_px, config.shift_px + 1, (batch, 2), generator=generator)
        x = torch.stack([torch.roll(x[i], shifts=(int(dy), int(dx)), dims=(1, 2))
                         for i, (dy, dx) in enumerate(shifts.tolist())])
    if config.noise_std > 0:
        x = x + config.noise_std * torch.randn(x.shape, generator=generator)
    return x.clamp_(0.0, 255.0)
