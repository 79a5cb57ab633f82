"""The training augmentation: reproducible, whole grey levels, and each knob doing what its setting says."""

import numpy as np
import pytest
import torch

from navigator.config import SettingError
from navigator.training.augment import augment
from navigator.training.config import AugmentConfig

OFF = AugmentConfig(saturation=0.0, contrast=0.0, brightness=0.0, noise_std=0.0, shift_px=0)


def frames(batch: int = 8, steps: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(60, 200, (batch, steps, 12, 16, 3), dtype=torch.uint8, generator=generator)


def run(config: AugmentConfig, images: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    return augment(frames() if images is None else images, config, torch.Generator().manual_seed(seed))


def test_all_off_is_the_identity() -> None:
    assert torch.equal(run(OFF), frames().float())


def test_same_generator_same_result_and_whole_grey_levels() -> None:
    config = AugmentConfig(color=0.2, exposure_min=0.1, blur_sigma=1.0, noise_std=8.0, cutouts=3)
    a, b, c = run(config), run(config), run(config, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and a.shape == frames().shape
    assert torch.equal(a, a.round()) and a.min() >= 0 and a.max() <= 255


def test_exposure_darkens_down_to_its_minimum_and_a_window_shares_it() -> None:
    bright = torch.full((64, 4, 4, 4, 3), 200, dtype=torch.uint8)
    out = run(AugmentConfig(**{**OFF.__dict__, "exposure_min": 0.1}), bright)
    per_window = out.mean(dim=(1, 2, 3, 4))
    assert per_window.min() < 60 and per_window.max() <= 200 and per_window.min() >= 19
    assert (out == out[:, :1, :1, :1, :1]).all()  # one exposure per window, every frame and pixel alike


def test_cutouts_black_out_rectangles_fixed_over_a_window() -> None:
    out = run(AugmentConfig(**{**OFF.__dict__, "cutouts": 3}), torch.full((32, 3, 12, 16, 3), 100, dtype=torch.uint8))
    black = out[..., 0] == 0
    assert black.any() and not black.all()
    assert (black == black[:, :1]).all()  # the same boxes in every frame of the window
    assert black.float().mean(dim=(1, 2, 3)).max() < 0.35 * 3  # at most three boxes of at most 1/3 x 1/3


def test_blur_keeps_a_uniform_image_and_smooths_an_edge() -> None:
    images = torch.zeros(4, 1, 8, 8, 3, dtype=torch.uint8)
    images[:, :, :, 4:] = 200
    out = run(AugmentConfig(**{**OFF.__dict__, "blur_sigma": 2.0}), images)
    assert torch.equal(run(AugmentConfig(**{**OFF.__dict__, "blur_sigma": 2.0}),
                           torch.full((4, 1, 8, 8, 3), 90, dtype=torch.uint8)), torch.full((4, 1, 8, 8, 3), 90.0))
    edge = out[:, 0, 0, 3:5, 0]
    assert ((edge > 0) & (edge < 200)).any()  # some window drew a visible blur


def test_noise_is_per_pixel_and_bounded_by_its_setting() -> None:
    flat = torch.full((16, 2, 12, 16, 3), 128, dtype=torch.uint8)
    out = run(AugmentConfig(**{**OFF.__dict__, "noise_std": 10.0}), flat)
    stds = (out - 128).std(dim=(1, 2, 3, 4))
    assert stds.max() < 11 and stds.max() > 2


@pytest.mark.parametrize("name, value, message", [
    ("exposure_min", 0.0, r"exposure_min must be in \(0, 1\], got 0.0"),
    ("exposure_min", 1.5, "exposure_min must be in"),
    ("cutouts", -1, r"cutouts must be in \[0, 16\], got -1"),
    ("color", 1.0, "color must be in"),
    ("blur_sigma", float("nan"), "blur_sigma must be a finite number"),
])
def test_out_of_range_settings_are_refused(name, value, message) -> None:
    with pytest.raises(SettingError, match=message):
        AugmentConfig(**{name: value})


def test_per_window_frames_stay_consistent_for_training() -> None:
    """Shifts move a whole window alike (a camera mount), so a frame's content stays where the previous had it."""
    images = frames(batch=6, steps=2)
    images[:, 1] = images[:, 0]
    out = run(AugmentConfig(**{**OFF.__dict__, "shift_px": 3}), images)
    assert torch.equal(out[:, 0], out[:, 1])
    np.testing.assert_array_equal(np.sort(out[0, 0].flatten().numpy()), np.sort(images[0, 0].float().flatten().numpy()))


def _reference_window(window: torch.Tensor, config: AugmentConfig, draws: list[float]) -> torch.Tensor:
    """One window augmented as the module docstring describes it, step after step in plain torch (noise aside), from
    the window's uniform draws in their documented order."""
    draw = iter(draws).__next__
    x = window.to(torch.float64)

    def factor(amount: float) -> float:
        return 1.0 + amount * (2 * draw() - 1)

    grey = x.mean(dim=-1, keepdim=True)
    x = grey + factor(config.saturation) * (x - grey)
    mean = x.mean()
    x = mean + factor(config.contrast) * (x - mean)
    gain = factor(config.brightness) * float(np.exp(np.log(config.exposure_min) * draw()))
    x = x * gain * torch.tensor([factor(config.color) for _ in range(3)], dtype=torch.float64)
    sigma = config.blur_sigma * draw()
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
    kernel = kernel / kernel.sum()
    planes = torch.nn.functional.pad(x.permute(0, 3, 1, 2), (radius,) * 4, mode="replicate")
    planes = torch.nn.functional.conv2d(planes.reshape(-1, 1, *planes.shape[2:]), kernel.view(1, 1, 1, -1))
    planes = torch.nn.functional.conv2d(planes, kernel.view(1, 1, -1, 1))
    x = planes.view(x.shape[0], 3, x.shape[1], x.shape[2]).permute(0, 2, 3, 1)
    span = 2 * config.shift_px + 1
    x = torch.roll(x, shifts=tuple(int(draw() * span) - config.shift_px for _ in range(2)), dims=(1, 2))
    x = x.clamp(0.0, 255.0)
    _, height, width, _ = x.shape
    count = int(draw() * (config.cutouts + 1))
    boxes = [[draw() for _ in range(4)] for _ in range(config.cutouts)]  # (height, width, top, left) fractions
    rows, cols = torch.arange(height).view(-1, 1), torch.arange(width).view(1, -1)
    keep = torch.ones(height, width, dtype=torch.bool)
    for box in boxes[:count]:
        size = [max(1, int((1 / 8 + 5 / 24 * fraction) * side)) for fraction, side in zip(box, (height, width))]
        corner = [int(fraction * (side - extent + 1)) for fraction, side, extent in zip(box[2:], (height, width), size)]
        inside_rows = (rows >= corner[0]) & (rows < corner[0] + size[0])
        keep &= ~(inside_rows & (cols >= corner[1]) & (cols < corner[1] + size[1]))
    return (x * keep[None, :, :, None]).round().float()


@pytest.mark.parametrize("batch", [1, 5])
def test_augment_gives_the_numbers_of_its_plain_reference(batch):
    """The fused colour map and OpenCV's filter give the step-by-step numbers, up to float rounding (a value on a
    half grey level may round the other way)."""
    config = AugmentConfig(saturation=0.3, contrast=0.3, brightness=0.3, color=0.15, exposure_min=0.08,
                           blur_sigma=1.0, noise_std=0.0, shift_px=2, cutouts=3)
    images = torch.randint(0, 256, (batch, 4, 12, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    draws_per_window = 7 + 1 + 2 + 1 + 4 * 3
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        expected = torch.stack([
            _reference_window(window, config, torch.rand(draws_per_window, dtype=torch.float64,
                                                         generator=generator).tolist()) for window in images])
        got = augment(images, config, torch.Generator().manual_seed(seed))
        assert (got - expected).abs().max() <= 1
        assert (got == expected).float().mean() > 0.999


def test_noise_is_the_same_from_the_same_generator_in_any_thread() -> None:
    """OpenCV's generator is per thread: the noise must come from the window's draws alone, wherever it runs."""
    from concurrent.futures import ThreadPoolExecutor

    config = AugmentConfig(**{**OFF.__dict__, "noise_std": 8.0})
    here = run(config)
    with ThreadPoolExecutor(2) as pool:
        there = list(pool.map(lambda _: run(config), range(4)))
    assert all(torch.equal(here, other) for other in there)
    assert not torch.equal(here, run(config, seed=1))


def test_normalisation_names_are_normalised_and_checked() -> None:
    from navigator.training.config import TrainConfig

    assert TrainConfig(data=("d",), normalisation=" Per-Frame ").normalisation == "per_frame"
    with pytest.raises(SettingError, match="normalisation must be one of fixed, per_frame, got 'auto'"):
        TrainConfig(data=("d",), normalisation="auto")
    with pytest.raises(SettingError, match=r"shift_px must be in \[0, 16\], got 1000000"):
        AugmentConfig(shift_px=1_000_000)
