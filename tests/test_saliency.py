"""Saliency maps: a policy that only sees a known image region gets its saliency there (both methods), the maps are
distributions on the camera image, the recurrent state is carried through a flight, and bad input is refused."""

import numpy as np
import pytest
import torch
from torch import nn

from navigator.errors import UserError
from navigator.explain.methods import check_method
from navigator.explain.saliency import METHODS, as_distributions, saliency_maps
from policies.config import PolicyConfig
from policies.policy import build_policy
from policies.preprocessing import ImageSpec, crop_and_resize

# The camera is 48x64 with an 80 degree view; the policy sees its central 60 degrees at 48x64 (a crop, then a
# resize), so that the maps must be put back into the camera image at the right place and scale.
SPEC = ImageSpec(output_hfov_deg=60.0, normalisation="per_frame")
BOX = (slice(12, 32), slice(20, 44))  # rows, columns of the policy's input that it sees; the rest is blanked


class BoxOnly(nn.Module):
    """The policy's image normalisation, then every pixel outside BOX set to zero: what lies there cannot matter."""

    def __init__(self, normalisation: nn.Module) -> None:
        super().__init__()
        self.normalisation = normalisation
        mask = torch.zeros(1, 1, SPEC.output_height, SPEC.output_width)
        mask[..., BOX[0], BOX[1]] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, frames):
        return self.normalisation(frames) * self.mask


@pytest.fixture(scope="module")
def boxed_policy():
    """A CfC-NCP policy that only sees BOX. Its convolutions have no bias, so that blanked pixels give no activation
    at all (VisualBackProp reads activations, not gradients: a bias alone would light up every pixel alike)."""
    policy = build_policy(PolicyConfig(image=SPEC, feature_size=8, head_size=12, seed=3))
    policy.encoder.normalisation = BoxOnly(policy.encoder.normalisation)
    with torch.no_grad():
        for module in policy.encoder.convs:
            if isinstance(module, nn.Conv2d):
                module.bias.zero_()
    return policy.eval()


def _flight(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (steps, SPEC.input_height, SPEC.input_width, 3), dtype=np.uint8)
    states = rng.normal(0.0, 1.0, (steps, 7)).astype(np.float32)
    return images, states, np.full(steps, 1 / 30, np.float32)


def _camera_box() -> np.ndarray:
    """BOX in camera pixels: the crop's offset plus BOX scaled by the crop's size over the policy's input size."""
    top, left, height, width = SPEC.crop_box()
    rows = top + np.array([BOX[0].start, BOX[0].stop]) * height / SPEC.output_height
    cols = left + np.array([BOX[1].start, BOX[1].stop]) * width / SPEC.output_width
    mask = np.zeros((SPEC.input_height, SPEC.input_width), bool)
    mask[int(np.floor(rows[0])):int(np.ceil(rows[1])), int(np.floor(cols[0])):int(np.ceil(cols[1]))] = True
    return mask


@pytest.mark.parametrize("method", METHODS)
def test_saliency_lands_where_the_policy_looks(boxed_policy, method):
    images, states, dts = _flight(4)
    maps = saliency_maps(boxed_policy, images, states, dts, method)
    assert maps.shape == (4, 48, 64) and maps.dtype == np.float32
    assert (maps >= 0).all() and np.allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    box = _camera_box()
    assert box.mean() < 0.1  # the box is under a tenth of the image: an even spread would put <10% there
    inside = maps[:, box].sum(axis=1)
    assert (inside > 0.8).all(), inside
    top, left, height, width = SPEC.crop_box()
    outside_crop = np.ones((48, 64), bool)
    outside_crop[top:top + height, left:left + width] = False
    assert maps[:, outside_crop].sum() == 0.0  # pixels the policy never sees get nothing


def test_saliency_of_the_same_input_is_the_same(boxed_policy):
    images, states, dts = _flight(2, seed=1)
    for method in METHODS:
        assert np.array_equal(saliency_maps(boxed_policy, images, states, dts, method),
                              saliency_maps(boxed_policy, images, states, dts, method))


def test_integrated_gradients_carries_the_recurrent_state_through_the_flight():
    policy = build_policy(PolicyConfig(image=SPEC, feature_size=8, head_size=12, seed=4)).eval()
    images, states, dts = _flight(3, seed=2)
    maps = saliency_maps(policy, images, states, dts, "integrated-gradients")
    with torch.inference_mode():  # as a pilot steps (its state then cannot enter autograd as it is)
        hidden = policy.initial_hidden(1)
        for t in range(2):
            _, hidden = policy.step(torch.from_numpy(crop_and_resize(images[t], SPEC))[None],
                                    torch.from_numpy(states[t])[None], hidden, float(dts[t]))
        last = saliency_maps(policy, images[2:], states[2:], dts[2:], "integrated-gradients", hidden=hidden)
    np.testing.assert_allclose(last[0], maps[2], rtol=1e-4, atol=1e-7)
    fresh = saliency_maps(policy, images[2:], states[2:], dts[2:], "integrated-gradients")
    assert not np.allclose(fresh[0], maps[2], rtol=1e-3, atol=1e-6)  # the state before the step matters


def test_no_relevance_is_an_even_spread():
    maps = as_distributions(np.stack([np.zeros((4, 5)), np.arange(20.0).reshape(4, 5)]))
    assert np.allclose(maps[0], 1 / 20) and maps[1, 0, 0] == 0.0 and maps[1].sum() == pytest.approx(1.0)


def test_bad_input_is_refused(boxed_policy):
    images, states, dts = _flight(2)
    with pytest.raises(UserError, match="unknown saliency method 'gradcam'; valid methods are: visualbackprop, "
                                        "integrated-gradients"):
        saliency_maps(boxed_policy, images, states, dts, "gradcam")
    with pytest.raises(ValueError, match="camera images of shape"):
        saliency_maps(boxed_policy, images[:, :24, :32], states, dts, "visualbackprop")
    with pytest.raises(ValueError, match="states"):
        saliency_maps(boxed_policy, images, states[:1], dts, "visualbackprop")
    assert saliency_maps(boxed_policy, images[:0], states[:0], dts[:0], "visualbackprop").shape == (0, 48, 64)


def test_method_names_are_read_as_tasks_and_presets_are(boxed_policy):
    images, states, dts = _flight(2)
    expected = saliency_maps(boxed_policy, images, states, dts, "visualbackprop")
    for spelling in ("VisualBackProp", " visualbackprop "):
        assert np.array_equal(saliency_maps(boxed_policy, images, states, dts, spelling), expected)
    assert check_method("Integrated Gradients") == check_method("INTEGRATED_GRADIENTS") == "integrated-gradients"
    with pytest.raises(UserError, match="unknown saliency method 'integrated gradient'"):
        check_method("integrated gradient")
