"""Camera image preprocessing: the one specification shared by training, ONNX export and the onboard runtime.

numpy and OpenCV only (the companion computer imports this module without torch). Two parts:

* geometry, `crop_and_resize`: a centred crop of the camera image to the field of view the policy was trained on,
  then a resize to the policy's input size. This is the only implementation of the geometric step anywhere.
* normalisation, `normalise`: uint8 RGB HWC -> float32 CHW, in one of two modes (`ImageSpec.normalisation`):
  - "fixed": `x * scale - offset` per channel with scale = 1 / (255 std) and offset = mean / std, the two float32
    constants of `ImageSpec.scale_offset`;
  - "per_frame": each channel minus its own mean over the frame, divided by the frame's standard deviation over
    all pixels and channels (plus `PER_FRAME_EPSILON` grey levels): the grey-world white balance and automatic
    exposure of a camera pipeline, done by the policy, so that a frame ten times darker or tinted by the season
    reaches the network the same. It is what lets a policy trained in summer daylight fly at night.
  The torch policy computes the same inside its graph (so an exported policy takes uint8 images).

`preprocess` composes both. Test vectors in tests/test_preprocessing.py pin the exact values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

Triple = tuple[float, float, float]
NORMALISATIONS = ("fixed", "per_frame")
# Added to a frame's standard deviation (in grey levels, 0..255) in "per_frame" normalisation: a uniform frame (a
# lens cap, a blank wall) gives zeros instead of dividing by zero, while a night frame (std ~7) keeps its contrast.
PER_FRAME_EPSILON = 1.0


@dataclass(frozen=True)
class ImageSpec:
    """Camera image in, policy image out. Fields of view are horizontal, in degrees, for a pinhole camera with
    square pixels; the crop keeps the output's aspect ratio, centred on the optical axis."""

    input_height: int = 48
    input_width: int = 64
    input_hfov_deg: float = 80.0
    output_height: int = 48
    output_width: int = 64
    output_hfov_deg: float = 80.0
    mean: Triple = (0.5, 0.5, 0.5)  # RGB, of pixel values scaled to [0, 1] ("fixed" normalisation)
    std: Triple = (0.25, 0.25, 0.25)
    normalisation: str = "fixed"  # "fixed" (mean and std above) or "per_frame" (each frame by its own statistics)

    def __post_init__(self) -> None:
        # Normalise sequences (a JSON round trip gives lists) to tuples so that specs compare and hash as values.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("input_height", "input_width", "output_height", "output_width"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"ImageSpec.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0.0 < self.input_hfov_deg < 180.0:
            raise ValueError(f"ImageSpec.input_hfov_deg must be in (0, 180), got {self.input_hfov_deg}")
        if not 0.0 < self.output_hfov_deg <= self.input_hfov_deg:
            raise ValueError(
                f"ImageSpec.output_hfov_deg ({self.output_hfov_deg}) must be in (0, input_hfov_deg "
                f"= {self.input_hfov_deg}]: a crop cannot widen the camera's field of view"
            )
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"ImageSpec.normalisation must be one of {', '.join(NORMALISATIONS)}, got "
                             f"{self.normalisation!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0.0:
            raise ValueError(f"ImageSpec mean and std need 3 values each, std > 0; got {self.mean}, {self.std}")
        top, left, height, width = self.crop_box()
        if height > self.input_height or height < 1 or width < 1:
            raise ValueError(
                f"a {self.output_hfov_deg} deg crop at the output's aspect ratio needs {width}x{height} pixels of a "
                f"{self.input_width}x{self.input_height} camera image (width x height): the camera's vertical field of "
                f"view is too small"
            )

    def crop_box(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) in input pixels of the region that holds the output's field of view."""
        fraction = math.tan(math.radians(self.output_hfov_deg) / 2) / math.tan(math.radians(self.input_hfov_deg) / 2)
        width = min(self.input_width, round(self.input_width * fraction))
        height = round(width * self.output_height / self.output_width)
        return (self.input_height - height) // 2, (self.input_width - width) // 2, height, width

    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel float32 (scale, offset) with normalised = pixel * scale - offset."""
        std = np.asarray(self.std, dtype=np.float64)
        scale = 1.0 / (255.0 * std)
        offset = np.asarray(self.mean, dtype=np.float64) / std
        return scale.astype(np.float32), offset.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for checkpoints and the export bundle."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageSpec:
        require_known_keys(cls, data)
        return cls(**data)


def require_known_keys(cls: type, data: dict[str, Any]) -> None:
    """Refuse keys that are not fields of dataclass `cls` (a checkpoint or bundle from another version)."""
    known = {field.name for field in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(known)}")


def crop_and_resize(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Camera image uint8 (input_height, input_width, 3) RGB -> uint8 (output_height, output_width, 3) RGB.

    Area interpolation: it averages every source pixel a target pixel covers, so downscaling does not alias.
    """
    expected = (spec.input_height, spec.input_width, 3)
    if image.dtype != np.uint8 or image.shape != expected:
        raise ValueError(f"expected a uint8 image of shape {expected}, got {image.dtype} {image.shape}")
    top, left, height, width = spec.crop_box()
    cropped = image[top : top + height, left : left + width]
    if (height, width) == (spec.output_height, spec.output_width):
        return np.ascontiguousarray(cropped)
    return cv2.resize(cropped, (spec.output_width, spec.output_height), interpolation=cv2.INTER_AREA)


def normalise(images: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """uint8 (..., output_height, output_width, 3) RGB -> float32 (..., 3, output_height, output_width)."""
    expected = (spec.output_height, spec.output_width, 3)
    if images.dtype != np.uint8 or images.shape[-3:] != expected:
        raise ValueError(f"expected uint8 images of shape (..., *{expected}), got {images.dtype} {images.shape}")
    pixels = images.astype(np.float32)
    if spec.normalisation == "per_frame":
        centred = pixels - pixels.mean(axis=(-3, -2), keepdims=True, dtype=np.float32)
        spread = np.sqrt(np.square(centred).mean(axis=(-3, -2, -1), keepdims=True, dtype=np.float32))
        normalised = centred / (spread + np.float32(PER_FRAME_EPSILON))
    else:
        scale, offset = spec.scale_offset()
        normalised = pixels * scale - offset
    return np.ascontiguousarray(np.moveaxis(normalised, -1, -3))


def preprocess(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """One camera image uint8 HWC RGB -> the policy's float32 CHW input."""
    return normalise(crop_and_resize(image, spec), spec)


def preprocess_batch(images: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Camera images uint8 (N, H, W, 3) RGB -> float32 (N, 3, output_height, output_width)."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N, H, W, 3), got shape {images.shape}")
    geometric = np.stack([crop_and_resize(image, spec) for image in images]) if len(images) else images
    return normalise(geometric.reshape(len(images), spec.output_height, spec.output_width, 3), spec)
