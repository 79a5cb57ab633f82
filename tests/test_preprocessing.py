"""Test vectors for the image preprocessing shared by training, export and the onboard runtime.

The expected values below are the specification: a change in any of them changes what every trained policy sees,
so it must be deliberate (and come with retrained policies), never a side effect.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from policies.preprocessing import ImageSpec, crop_and_resize, normalise, preprocess, preprocess_batch

# A wide camera (100 deg, 12x16) cropped to the trained 80 deg and resized to 3x4.
WIDE = ImageSpec(
    input_height=12, input_width=16, input_hfov_deg=100.0, output_height=3, output_width=4, output_hfov_deg=80.0
)


def synthetic_image(height: int, width: int) -> np.ndarray:
    """Deterministic RGB pattern: pixel (y, x, c) = (7y + 13x + 101c) mod 256."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((7 * y + 13 * x + 101 * c) % 256).astype(np.uint8)


EXPECTED_WIDE_PIXELS = np.array(  # channel-major (3, 3, 4) uint8 after crop and area resize
    [
        [[58, 93, 129, 164], [76, 112, 147, 183], [95, 130, 166, 201]],
        [[159, 194, 224, 62], [177, 213, 178, 28], [196, 231, 80, 46]],
        [[109, 39, 75, 110], [22, 58, 93, 129], [41, 76, 112, 147]],
    ],
    dtype=np.uint8,
)

EXPECTED_WIDE_INPUT = np.array(  # (3, 3, 4) float32: the policy input for the same image
    [
        [
            [-1.090196, -0.54117644, 0.02352953, 0.5725491],
            [-0.8078431, -0.24313712, 0.30588245, 0.8705883],
            [-0.5098039, 0.039215803, 0.60392165, 1.1529415],
        ],
        [
            [0.49411774, 1.0431376, 1.5137258, -1.0274509],
            [0.77647066, 1.3411767, 0.79215693, -1.5607843],
            [1.0745101, 1.6235297, -0.745098, -1.2784314],
        ],
        [
            [-0.29019594, -1.3882353, -0.82352936, -0.27450967],
            [-1.654902, -1.090196, -0.54117644, 0.02352953],
            [-1.3568628, -0.8078431, -0.24313712, 0.30588245],
        ],
    ],
    dtype=np.float32,
)


def test_default_spec_is_the_onboard_camera() -> None:
    spec = ImageSpec()
    assert (spec.input_height, spec.input_width, spec.input_hfov_deg) == (48, 64, 80.0)
    assert (spec.output_height, spec.output_width, spec.output_hfov_deg) == (48, 64, 80.0)
    assert spec.crop_box() == (0, 0, 48, 64)


def test_default_spec_normalisation_vector() -> None:
    image = np.zeros((48, 64, 3), np.uint8) + np.array([0, 51, 255], np.uint8)
    out = preprocess(image, ImageSpec())
    assert out.dtype == np.float32 and out.shape == (3, 48, 64)
    # mean 0.5, std 0.25: 0 -> -2, 51 -> -1.2 (float32 rounding of 51 * scale - offset), 255 -> 2.
    np.testing.assert_array_equal(out[:, 17, 23], np.array([-2.0, -1.1999999, 2.0], np.float32))
    np.testing.assert_array_equal(preprocess(synthetic_image(48, 64), ImageSpec())[:, 5, 7],
                                  np.array([-0.023529291, 1.5607846, -0.8705882], np.float32))


def test_wide_camera_crop_box() -> None:
    # tan(40) / tan(50) = 0.704 of 16 px -> 11 px wide, 8 px high at 3:4, centred.
    assert WIDE.crop_box() == (2, 2, 8, 11)


def test_wide_camera_test_vector() -> None:
    image = synthetic_image(12, 16)
    np.testing.assert_array_equal(crop_and_resize(image, WIDE).transpose(2, 0, 1), EXPECTED_WIDE_PIXELS)
    np.testing.assert_array_equal(preprocess(image, WIDE), EXPECTED_WIDE_INPUT)


def test_downscale_is_block_average() -> None:
    # Each 2x2 block holds base, base + 2, base + 4, base + 6: its average base + 3 is exact in uint8.
    spec = ImageSpec(input_height=8, input_width=12, output_height=4, output_width=6)
    y, x, c = np.meshgrid(np.arange(8), np.arange(12), np.arange(3), indexing="ij")
    base = 10 * (y // 2) + 40 * (x // 2) + 3 * c
    image = (base + 2 * (y % 2) + 4 * (x % 2)).astype(np.uint8)
    expected = image[::2, ::2] + 3
    np.testing.assert_array_equal(crop_and_resize(image, spec), expected)


def test_batch_equals_single() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 12, 16, 3), dtype=np.uint8)
    batch = preprocess_batch(images, WIDE)
    assert batch.shape == (3, 3, 3, 4)
    for image, out in zip(images, batch):
        np.testing.assert_array_equal(out, preprocess(image, WIDE))
    resized = np.stack([crop_and_resize(image, WIDE) for image in images])
    np.testing.assert_array_equal(normalise(resized, WIDE), batch)


def test_rejects_wrong_images() -> None:
    with pytest.raises(ValueError, match="uint8 image of shape"):
        preprocess(np.zeros((48, 64, 3), np.float32), ImageSpec())
    with pytest.raises(ValueError, match="uint8 image of shape"):
        preprocess(np.zeros((64, 48, 3), np.uint8), ImageSpec())
    with pytest.raises(ValueError, match="batch of images"):
        preprocess_batch(np.zeros((48, 64, 3), np.uint8), ImageSpec())


def test_rejects_impossible_specs() -> None:
    with pytest.raises(ValueError, match="cannot widen"):
        ImageSpec(output_hfov_deg=90.0)
    # Sizes read width x height, as every size the project prints does.
    with pytest.raises(ValueError, match=r"needs 64x48 pixels of a 64x10 camera image \(width x height\): the "
                                         r"camera's vertical field of view"):
        ImageSpec(input_height=10, input_width=64, output_height=48, output_width=64)
    with pytest.raises(ValueError, match="std"):
        ImageSpec(std=(0.25, 0.0, 0.25))


def test_spec_round_trips_through_json() -> None:
    text = json.dumps(WIDE.to_dict())
    assert ImageSpec.from_dict(json.loads(text)) == WIDE
    with pytest.raises(ValueError, match="unknown ImageSpec keys"):
        ImageSpec.from_dict({**WIDE.to_dict(), "fov": 90})


def test_imports_without_torch() -> None:
    # The onboard runtime imports this module on a companion computer that has no torch.
    code = "import sys, policies, policies.preprocessing; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


PER_FRAME = ImageSpec(input_height=4, input_width=4, output_height=4, output_width=4, normalisation="per_frame")


def test_per_frame_normalisation_values() -> None:
    """Each channel minus its own frame mean, over the frame's std (all pixels and channels) plus one grey level."""
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :2] = (100, 50, 0)  # left half; right half black
    out = normalise(image, PER_FRAME)
    # Channel means 50, 25, 0; deviations +-50, +-25, 0; std over all = sqrt((2500 + 625 + 0) / 3).
    spread = np.sqrt((2500 + 625) / 3) + 1.0
    np.testing.assert_allclose(out[0, :, 0], 50 / spread, rtol=1e-6)
    np.testing.assert_allclose(out[1, :, 3], -25 / spread, rtol=1e-6)
    np.testing.assert_array_equal(out[2], 0.0)


def test_per_frame_normalisation_ignores_exposure_and_tint() -> None:
    """A frame ten times darker, or tinted, reaches the network nearly the same (the night and season presets)."""
    rng = np.random.default_rng(1)
    bright = rng.integers(0, 256, (4, 4, 3)).astype(np.float64)
    dark = np.round(bright / 10).astype(np.uint8)
    tinted = np.clip(bright + (30, 0, -20), 0, 255).astype(np.uint8)
    reference = normalise(bright.astype(np.uint8), PER_FRAME)
    assert np.abs(normalise(dark, PER_FRAME) - reference).max() < 0.25  # rounding to whole grey levels, epsilon
    assert np.abs(normalise(np.clip(bright + (30, 0, 0), 0, 255).astype(np.uint8), PER_FRAME)
                  - reference).max() < 0.3  # (clipping at 255)
    assert np.abs(normalise(tinted, PER_FRAME) - reference).max() < 0.5
    assert np.abs(normalise(dark, ImageSpec(input_height=4, input_width=4, output_height=4, output_width=4))
                  - normalise(bright.astype(np.uint8), ImageSpec(input_height=4, input_width=4, output_height=4,
                                                                  output_width=4))).max() > 1.0


def test_per_frame_normalisation_of_a_uniform_frame_is_zero() -> None:
    out = normalise(np.full((2, 4, 4, 3), 77, np.uint8), PER_FRAME)
    assert out.shape == (2, 3, 4, 4) and np.isfinite(out).all() and not out.any()


def test_unknown_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="normalisation must be one of fixed, per_frame"):
        ImageSpec(normalisation="auto")
    assert ImageSpec.from_dict({k: v for k, v in ImageSpec().to_dict().items() if k != "normalisation"}) == ImageSpec()
