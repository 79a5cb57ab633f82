"""The fast CfC equals ncps 1.0.1's CfC (mode "default") for the same weights, steps and exports like it."""

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from ncps.torch import CfC
from ncps.wirings import AutoNCP
from torch import Tensor, nn

from policies.cfc_bptt import run_chain
from policies.fast_cfc import FastCfC, FastWiredCfC, state_dict_from_ncps

INPUTS = 39  # 32 CNN features + 7 state, the policy's head input


def pair(kind: str) -> tuple[CfC, nn.Module]:
    """An ncps CfC at the policy's default head size and a fast one holding the same weights."""
    torch.manual_seed(0)
    if kind == "wired":
        reference, fast = CfC(INPUTS, AutoNCP(70, 4)), FastWiredCfC(INPUTS, AutoNCP(70, 4))
    else:
        reference, fast = CfC(INPUTS, 53, backbone_units=64), FastCfC(INPUTS, 53, backbone_units=64)
    fast.load_state_dict(state_dict_from_ncps(reference.state_dict()))
    return reference, fast


def reference_run(reference: CfC, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """ncps's own cell, stepped with dt as (B, 1): the way ncps handles per-sample time spans correctly."""
    outputs = []
    for t in range(x.shape[1]):
        y, h = reference.rnn_cell(x[:, t], h, dt[:, t : t + 1])
        outputs.append(y)
    return torch.stack(outputs, dim=1), h


def inputs(batch: int, steps: int, state: int) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, steps, INPUTS, generator=generator)
    h = 0.5 * torch.randn(batch, state, generator=generator)
    dt = 0.01 + 0.1 * torch.rand(batch, steps, generator=generator)  # every sample and step its own dt
    return x, h, dt


@pytest.mark.parametrize("kind", ["wired", "fully_connected"])
def test_sequence_and_step_match_ncps_with_variable_dt(kind: str) -> None:
    reference, fast = pair(kind)
    x, h, dt = inputs(5, 7, reference.state_size)
    expected, expected_h = reference_run(reference, x, h, dt)
    outputs, final = fast(x, h, dt)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(final, expected_h, atol=1e-5, rtol=0)
    state = h
    for t in range(x.shape[1]):
        y, state = fast.step(x[:, t], state, dt[:, t])
        torch.testing.assert_close(y, expected[:, t], atol=1e-5, rtol=0)
    torch.testing.assert_close(state, expected_h, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["wired", "fully_connected"])
def test_matches_the_ncps_sequence_module(kind: str) -> None:
    # Batch 1 is where ncps's own `timespans` path works; it must agree with ours there too.
    reference, fast = pair(kind)
    x, h, dt = inputs(1, 6, reference.state_size)
    expected, expected_h = reference(x, h, timespans=dt)
    outputs, final = fast(x, h, dt)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(final, expected_h, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["wired", "fully_connected"])
def test_gradients_match_ncps(kind: str) -> None:
    reference, fast = pair(kind)
    x, h, dt = inputs(4, 6, reference.state_size)
    expected, expected_h = reference_run(reference, x, h, dt)
    (expected.square().mean() + expected_h.sum()).backward()
    outputs, final = fast(x, h, dt)
    (outputs.square().mean() + final.sum()).backward()
    reference_grads = {k: p.grad for k, p in reference.named_parameters() if p.requires_grad}
    masks = {k: v for k, v in reference.state_dict().items() if k.endswith("sparsity_mask")}
    mapped = state_dict_from_ncps({**reference_grads, **masks})
    for name, parameter in fast.named_parameters():
        torch.testing.assert_close(parameter.grad, mapped[name], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_pipelined_backward_of_three_layers_passes_gradcheck(steps: int) -> None:
    # Three layers of 3, 2 and 2 units in float64 against finite differences; 1 and 2 steps are shorter than the
    # pipeline is deep, so layers hold at both ends of one iteration. A dense input weight (every layer reading the
    # input) and dense block weights exercise every path, the bias's after the last step included.
    generator = torch.Generator().manual_seed(2)
    units, batch, features = (3, 2, 2), 2, 3
    total = sum(units)

    def rand(*shape: int) -> Tensor:
        return (0.5 * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()

    tensors = (rand(steps, batch, features), rand(4 * total, features), rand(4 * total), rand(batch, total),
               rand(total, 4 * total))
    dts = 0.05 + torch.rand(steps, batch, 1, generator=generator, dtype=torch.float64)

    def run(x: Tensor, w_input: Tensor, bias: Tensor, h0: Tensor, w_state: Tensor) -> tuple[Tensor, Tensor]:
        return run_chain(x, w_input, bias, dts, h0, units, w_state)

    assert torch.autograd.gradcheck(run, tensors)


def test_backbone_backward_passes_gradcheck() -> None:
    generator = torch.Generator().manual_seed(3)

    def rand(*shape: int) -> Tensor:
        return (0.5 * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()

    steps, batch, units, width, features = 4, 2, 3, 6, 3
    tensors = (rand(steps, batch, features), rand(width, features), rand(width), rand(batch, units),
               rand(units, width), rand(width, 4 * units), rand(4 * units))
    dts = 0.05 + torch.rand(steps, batch, 1, generator=generator, dtype=torch.float64)

    def run(x: Tensor, w_input: Tensor, bias: Tensor, h0: Tensor, w_state: Tensor, w_gates: Tensor,
            b_gates: Tensor) -> tuple[Tensor, Tensor]:
        return run_chain(x, w_input, bias, dts, h0, (units,), w_state, w_gates, b_gates)

    assert torch.autograd.gradcheck(run, tensors)


def test_a_backbone_needs_a_single_layer() -> None:
    with pytest.raises(ValueError, match="single-layer"):
        run_chain(torch.zeros(2, 1, 3), torch.zeros(8, 3), torch.zeros(8), torch.ones(2, 1, 1), torch.zeros(1, 2),
                  (1, 1), torch.zeros(2, 8), torch.zeros(8, 8), torch.zeros(8))


def test_no_backbone_matches_ncps() -> None:
    torch.manual_seed(0)
    reference = CfC(INPUTS, 20, backbone_layers=0)
    fast = FastCfC(INPUTS, 20, backbone_units=0)
    fast.load_state_dict(state_dict_from_ncps(reference.state_dict()))
    x, h, dt = inputs(3, 5, 20)
    expected, _ = reference_run(reference, x, h, dt)
    torch.testing.assert_close(fast(x, h, dt)[0], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["wired", "fully_connected"])
def test_single_step_exports_to_onnx(kind: str) -> None:
    _, fast = pair(kind)

    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfc = fast

        def forward(self, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
            return self.cfc.step(x, h, dt)

    step = Step().eval()
    x, h, dt = inputs(3, 1, fast.state_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(
            step, (x[:1, 0], h[:1], dt[:1, 0]), buffer, dynamo=False,
            input_names=["x", "h_in", "dt"], output_names=["y", "h_out"],
            dynamic_axes={name: {0: "batch"} for name in ("x", "h_in", "dt", "y", "h_out")},
        )
    session = ort.InferenceSession(buffer.getvalue())
    feeds = {"x": x[:, 0].numpy(), "h_in": h.numpy(), "dt": dt[:, 0].numpy()}
    for _ in range(3):  # feed the hidden state back, as the onboard loop does
        y, h_out = session.run(["y", "h_out"], feeds)
        expected_y, expected_h = step(torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["h_in"]),
                                      torch.from_numpy(feeds["dt"]))
        np.testing.assert_allclose(y, expected_y.detach().numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(h_out, expected_h.detach().numpy(), atol=1e-5, rtol=0)
        feeds["h_in"] = h_out


def test_dt_shapes_are_checked() -> None:
    _, fast = pair("wired")
    x, h, dt = inputs(4, 3, fast.state_size)
    with pytest.raises(ValueError, match="sequence dt"):
        fast(x, h, dt[:, 0])
    with pytest.raises(ValueError, match="step dt"):
        fast.step(x[:, 0], h, dt)
    y_flat, _ = fast.step(x[:, 0], h, dt[:, 0])
    y_column, _ = fast.step(x[:, 0], h, dt[:, :1])
    torch.testing.assert_close(y_flat, y_column)


def test_a_wiring_serves_one_model() -> None:
    wiring = AutoNCP(20, 4)
    FastWiredCfC(INPUTS, wiring)
    with pytest.raises(ValueError, match="fresh"):
        FastWiredCfC(INPUTS, wiring)


def test_masks_are_buffers_not_parameters() -> None:
    _, fast = pair("wired")
    assert not any("mask" in name for name, _ in fast.named_parameters())
    assert {name for name, _ in fast.named_buffers()} == {f"layers.{i}.mask" for i in range(3)} | {"pipeline_index"}
    parameters = {name for name, _ in fast.named_parameters()}
    # The pipeline's gather index follows from the layer sizes: not saved, so checkpoints are unchanged by it.
    assert set(fast.state_dict()) == parameters | {f"layers.{i}.mask" for i in range(3)}


def test_the_pipelined_weights_are_the_masked_layers_assembled() -> None:
    _, fast = pair("wired")
    with torch.no_grad():
        for layer in fast.layers:  # every weight distinct, so that a misplaced one shows
            layer.weight.copy_(torch.randn(layer.weight.shape))
    for gathered, assembled in zip(fast._pipeline_weights(), fast._assemble(fast._masked())):
        assert gathered.stride() == assembled.stride()
        torch.testing.assert_close(gathered, assembled, atol=0, rtol=0)
