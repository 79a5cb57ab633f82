"""Saliency maps: which pixels of the onboard camera a policy's action depends on, as a distribution over the image.

Two methods (`METHODS`):

* "visualbackprop": VisualBackProp (Bojarski et al. 2018, "VisualBackProp: efficient visualization of CNNs for
  autonomous driving", ICRA), the method of the liquid-network drone papers. Each convolution block's activations
  (after its ReLU) are averaged over channels; starting from the deepest, the averaged map is scaled up to the next
  shallower block's size by a transposed convolution with an all-ones kernel of that block's kernel size, stride and
  padding, and multiplied pointwise with that block's averaged map, down to the input's resolution. Per frame: it
  reads the CNN only, so the recurrent state plays no part.
* "integrated-gradients": Captum's integrated gradients (Sundararajan et al. 2017, "Axiomatic attribution for deep
  networks") of the L2 norm of the action at step t with respect to frame t, with the recurrent state from steps
  before t held fixed (detached), summed in absolute value over colour channels.

Both run on the frame the policy sees (cropped and resized by `policies.preprocessing.crop_and_resize`); the map is
then put back into the camera image (zero where the crop leaves pixels out) and scaled to sum to 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from navigator.explain.methods import METHODS, check_method
from policies.config import STATE_SIZE
from policies.heads import Hidden
from policies.policy import Policy
from policies.preprocessing import ImageSpec, crop_and_resize

__all__ = ["METHODS", "as_distributions", "saliency_maps", "visual_backprop"]

# Points of Captum's Gauss-Legendre rule along the path from the baseline to the frame. On frames of the shipped
# fly-to-target policy the completeness gap (the attributions' sum against the change in the output) is 0-17% of
# the change at 32 points, 4-9% at 64 (at twice the cost), up to 30% and more at 16: 32 keeps a measurement at about
# 30 ms on one core, and its maps match those of 64 points (correlation > 0.998, attention on target within 0.002).
IG_STEPS = 32


def saliency_maps(policy: Policy, images: np.ndarray, states: np.ndarray, dts: np.ndarray, method: str, *,
                  hidden: Hidden | None = None) -> np.ndarray:
    """Saliency of each frame of a flight.

    images (T, H, W, 3) uint8 exactly as the policy's camera gives them (H, W: the policy's camera size,
    `policy.config.image.input_height/width`); states (T, 7) float32; dts (T,) float32 seconds since the previous
    step; hidden: the recurrent state before the first frame (batch 1, as `policy.initial_hidden(1)`; None: an
    episode's start). Returns (T, H, W) float32 maps, each >= 0 and summing to 1 (a distribution of saliency mass
    over the image); a frame of all-zero relevance gets the uniform map. The recurrent state is carried step by step
    through the sequence, as in flight. `method` is read as `canonical_method` reads it ("Integrated Gradients");
    UserError for an unknown one; ValueError for inputs of other shapes."""
    method = check_method(method)
    spec = policy.config.image
    count = len(images)
    expected = (count, spec.input_height, spec.input_width, 3)
    if images.dtype != np.uint8 or images.shape != expected:
        raise ValueError(f"expected uint8 camera images of shape (T, {spec.input_height}, {spec.input_width}, 3), "
                         f"got {images.dtype} {images.shape}")
    if states.shape != (count, STATE_SIZE) or dts.shape != (count,):
        raise ValueError(f"expected states ({count}, {STATE_SIZE}) and dts ({count},), got {states.shape} and "
                         f"{dts.shape}")
    if count == 0:
        return np.zeros((0, spec.input_height, spec.input_width), np.float32)
    # Out of any inference mode the caller runs in: integrated gradients needs autograd on the tensors made here.
    with torch.inference_mode(False):
        frames = torch.from_numpy(np.stack([crop_and_resize(image, spec) for image in images]))
        if method == "visualbackprop":
            with torch.no_grad():
                relevance = visual_backprop(policy.encoder.convs, policy.encoder.normalisation(frames))
        else:
            relevance = _integrated_gradients(policy, frames, torch.from_numpy(np.asarray(states, np.float32)),
                                              torch.from_numpy(np.asarray(dts, np.float32)), hidden)
    return _on_camera(relevance.numpy(), spec)


def visual_backprop(convs: nn.Sequential, inputs: Tensor) -> Tensor:
    """VisualBackProp of a stack of convolution blocks (each an nn.Conv2d followed by the layers up to the next
    convolution, typically its activation). inputs (N, C, H, W) as the first convolution takes them -> relevance
    (N, H, W) >= 0. Run it under torch.no_grad() unless gradients through it are wanted."""
    blocks: list[tuple[nn.Conv2d, nn.Module]] = []
    for module in convs:
        if isinstance(module, nn.Conv2d):
            blocks.append((module, module))
        elif blocks:
            blocks[-1] = (blocks[-1][0], module)  # the block's output is that of its last layer
    if not blocks:
        raise ValueError("VisualBackProp needs at least one nn.Conv2d in the stack")
    averaged: list[Tensor] = []
    handles = [last.register_forward_hook(lambda _m, _i, output: averaged.append(output.mean(dim=1, keepdim=True)))
               for _, last in blocks]
    try:
        convs(inputs)
    finally:
        for handle in handles:
            handle.remove()
    mask = averaged[-1]
    for index in reversed(range(len(blocks))):
        size = averaged[index - 1].shape[-2:] if index else inputs.shape[-2:]
        mask = _scale_up(mask, blocks[index][0], size)
        if index:
            mask = mask * averaged[index - 1]
    return mask[:, 0].clamp_min(0.0)


def _scale_up(mask: Tensor, conv: nn.Conv2d, size: torch.Size) -> Tensor:
    """mask (N, 1, h, w) at `conv`'s output resolution -> (N, 1, *size) at its input's: the transposed convolution
    of an all-ones kernel with `conv`'s geometry, so that each output cell spreads over its receptive field."""
    kernel = mask.new_ones(1, 1, *conv.kernel_size)
    grown = [(mask.shape[2 + axis] - 1) * conv.stride[axis] - 2 * conv.padding[axis] + conv.kernel_size[axis]
             for axis in (0, 1)]
    # The rows and columns a strided convolution's floor division dropped at the far edge: output padding.
    extra = tuple(int(size[axis]) - grown[axis] for axis in (0, 1))
    if all(0 <= e < conv.stride[axis] for axis, e in enumerate(extra)):
        return functional.conv_transpose2d(mask, kernel, stride=conv.stride, padding=conv.padding,
                                           output_padding=extra)
    # A geometry a transposed convolution cannot reproduce (dilation, asymmetric padding): interpolate instead.
    return functional.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False)


def _integrated_gradients(policy: Policy, frames: Tensor, states: Tensor, dts: Tensor,
                          hidden: Hidden | None) -> Tensor:
    """frames (T, h, w, 3) uint8 as the policy takes them -> |attribution| summed over channels (T, h, w)."""
    # The path runs in the normalised image the CNN reads (the output of the policy's normalisation layer), from
    # its zero: the image of any uniform frame under "per_frame" normalisation (each frame minus its own mean), and
    # of mid-grey under "fixed" normalisation. A black frame is no neutral input here: under "per_frame" it
    # normalises to the same zeros as any other uniform frame, while the straight pixel path from black to the
    # frame passes through per-frame standardisation, whose frame-wide mean and spread spread every pixel's
    # gradient over the whole image. Interpolating after normalisation keeps the path straight in what the CNN
    # sees and the attribution per pixel. The baseline frame below (uniform mid-grey) normalises to zero in both
    # modes; Captum takes it in input space and interpolates the layer's outputs.
    baseline = torch.full((1, *frames.shape[1:]), 127.5)
    # A clone made outside inference mode: a pilot's state (made under torch.inference_mode) cannot enter autograd.
    h_prev = tuple(h.detach().clone() for h in (policy.initial_hidden(1) if hidden is None else hidden))
    maps = []
    for t in range(frames.shape[0]):
        frame, state, dt = frames[t : t + 1].to(torch.float32), states[t : t + 1], dts[t : t + 1]
        attribution = _attribute(policy, frame, baseline, state, dt, h_prev)
        maps.append(attribution.abs().sum(dim=1)[0])
        with torch.no_grad():
            _, h_prev = policy.step(frame, state, h_prev, dt)
    return torch.stack(maps)


def _attribute(policy: Policy, frame: Tensor, baseline: Tensor, state: Tensor, dt: Tensor, hidden: Hidden) -> Tensor:
    """Integrated gradients of the action's L2 norm for one frame (1, h, w, 3) with respect to the normalised image
    (1, 3, h, w), from the recurrent state `hidden` before this step (held fixed)."""
    from captum.attr import LayerIntegratedGradients

    def action_norm(batch: Tensor) -> Tensor:
        """frames (N, h, w, 3) -> the L2 norm of the action (N,)."""
        n = batch.shape[0]
        action, _ = policy.step(batch, state.expand(n, -1), tuple(h.expand(n, -1) for h in hidden), dt.expand(n))
        return action.norm(dim=1)

    with torch.enable_grad():
        attribution = LayerIntegratedGradients(action_norm, policy.encoder.normalisation).attribute(
            frame, baselines=baseline, n_steps=IG_STEPS)
    return attribution.detach()


def _on_camera(relevance: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """relevance (T, h, w) >= 0 on the policy's input -> (T, H, W) distributions on the camera image: the crop box
    gets the relevance resized to it, the pixels outside it (never seen by the policy) zero."""
    import cv2

    top, left, height, width = spec.crop_box()
    maps = np.zeros((len(relevance), spec.input_height, spec.input_width), np.float32)
    for index, frame in enumerate(relevance.astype(np.float32)):
        if frame.shape != (height, width):
            frame = np.maximum(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR), 0.0)
        maps[index, top : top + height, left : left + width] = frame
    return as_distributions(maps)


def as_distributions(maps: np.ndarray) -> np.ndarray:
    """(T, H, W) non-negative relevance -> float32 maps each summing to 1; an all-zero (or non-finite) map becomes
    uniform."""
    maps = np.where(np.isfinite(maps), np.maximum(maps, 0.0), 0.0).astype(np.float64)
    totals = maps.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(maps, 1.0 / (maps.shape[1] * maps.shape[2]))
    out = np.where(totals > 0, maps / np.where(totals > 0, totals, 1.0), uniform)
    return out.astype(np.float32)
