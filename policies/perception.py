"""The perception front end: uint8 camera frames (already cropped and resized by `preprocessing.crop_and_resize`)
to a small feature vector.

Sized for 48x64 frames and for training on a 2-core CPU: about 0.6 M multiply-accumulates per frame. The first
convolution (5x5, stride 3) shrinks the image 9-fold at once: the activations of a stride-2 first layer alone
(24x32x12 per frame) make training several times slower, since at this size convolutions are bound by memory
traffic, not arithmetic. Its 5x5 kernels overlap (stride 3), so no pixel falls between receptive fields.
Activations stay channels-last (NHWC), the layout the frames arrive in, which the CPU convolution kernels prefer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from policies.preprocessing import PER_FRAME_EPSILON, ImageSpec

# (out_channels, kernel, stride, padding) per convolution.
CONV_LAYERS = ((12, 5, 3, 2), (16, 3, 2, 1), (24, 3, 2, 1))


class ImageNormalisation(nn.Module):
    """uint8 (or float 0..255) NHWC frames -> normalised float32 NCHW (channels-last memory), as
    `preprocessing.normalise`: "fixed" is pixel * scale - offset with the spec's float32 constants (bit for bit),
    "per_frame" standardises each frame by its own statistics (equal up to float rounding of the sums)."""

    def __init__(self, spec: ImageSpec) -> None:
        super().__init__()
        self.frame_shape = (spec.output_height, spec.output_width, 3)
        self.per_frame = spec.normalisation == "per_frame"
        scale, offset = spec.scale_offset()
        self.register_buffer("scale", torch.from_numpy(scale))
        self.register_buffer("offset", torch.from_numpy(offset))
        # The same constants repeated over a whole frame (see forward), made once; not saved with the weights.
        pixels = spec.output_height * spec.output_width
        self.register_buffer("frame_scale", self.scale.repeat(pixels), persistent=False)
        self.register_buffer("frame_offset", self.offset.repeat(pixels), persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        if not torch.jit.is_tracing() and tuple(frames.shape[1:]) != self.frame_shape:
            raise ValueError(f"expected frames (N, *{self.frame_shape}), got {tuple(frames.shape)}")
        pixels = frames.to(torch.float32)
        count, height, width, channels = pixels.shape
        # Per-channel numbers are applied to whole rows of W x 3 values (the channel's number repeated every third),
        # and fixed ones to whole frames: broadcast over the last axis alone, the elementwise loops would run 3
        # values at a time, several times slower. Results are written in place where no gradient needs the input
        # (a fresh 6 MB tensor per batch costs more in page faults than its arithmetic).
        if self.per_frame:
            rows = pixels.reshape(count, height, width * channels)
            # Summed over rows first: a reduction along contiguous memory, then over the W pixels of a row.
            mean = rows.sum(dim=1).view(count, width, channels).sum(dim=1) / (height * width)
            centred = rows - mean.repeat(1, width).unsqueeze(1)
            # The root mean square of the centred values, as a norm: one pass (square().mean() takes two).
            spread = torch.linalg.vector_norm(centred, dim=(1, 2), keepdim=True) / (height * width * channels) ** 0.5
            divisor = spread + PER_FRAME_EPSILON
            normalised = centred / divisor if centred.requires_grad else centred.div_(divisor)
        else:
            frame = pixels.reshape(count, height * width * channels)
            normalised = (frame * self.frame_scale).sub_(self.frame_offset)
        # NCHW view of NHWC memory: channels-last, no copy.
        return normalised.reshape(count, height, width, channels).permute(0, 3, 1, 2)


class ConvEncoder(nn.Module):
    """Normalised frames -> `feature_size` features in [-1, 1] (tanh: the same scale as the normalised state
    they are concatenated with, so neither swamps the other at initialisation)."""

    def __init__(self, spec: ImageSpec, feature_size: int = 32) -> None:
        super().__init__()
        self.normalisation = ImageNormalisation(spec)
        layers: list[nn.Module] = []
        channels, height, width = 3, spec.output_height, spec.output_width
        for out_channels, kernel, stride, padding in CONV_LAYERS:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride, padding), nn.ReLU()]
            channels = out_channels
            height = (height + 2 * padding - kernel) // stride + 1
            width = (width + 2 * padding - kernel) // stride + 1
        self.convs = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.dense = nn.Linear(channels * height * width, feature_size)
        self.feature_size = feature_size

    def forward(self, frames: Tensor) -> Tensor:
        """frames (N, H, W, 3) uint8 -> features (N, feature_size)."""
        maps = self.convs(self.normalisation(frames))
        return torch.tanh(self.dense(maps.flatten(1)))
