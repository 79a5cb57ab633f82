"""Image augmentation for training windows, in torch on uint8-derived floats (0..255).

Photometric jitter is drawn once per window (a whole sequence shares one brightness, contrast and saturation, as
a camera's exposure changes slowly), noise per frame, and a small translation per window. Everything draws from the
generator passed in, so a training run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    brightness: float = 0.3  # multiplicative, factor in [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.3
    noise_std: float = 4.0  # per-pixel Gaussian noise, 0..255 units
    shift_px: int = 2  # translation of up to this many pixels in each direction

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.noise_std < 0 or self.shift_px < 0:
            raise ValueError("augment.noise_std and augment.shift_px must be >= 0")


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
