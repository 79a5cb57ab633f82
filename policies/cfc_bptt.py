"""A chain of CfC layers run over a whole sequence as one autograd node, with hand-written backpropagation through
time, the layers pipelined so that every step is one matmul for all of them.

Why: at the sizes of a policy head (tens of neurons, batches of tens), every tensor op costs far more in launch and
autograd bookkeeping than in arithmetic. Recorded op by op, a 3-layer wired CfC puts ~30 autograd nodes on the tape
per time step; run layer after layer without the tape it still needs 15 kernels per step, because layer l reads
layer l-1's new state of the same step.

The chain: layer l has state s_l (H_l units) and, at every step t,
    pre_l   = s_{l-1}(t) @ w_in_l + s_l(t-1) @ w_state_l + bias_l   (layer 0's input share comes precomputed)
    gates_l = lecun_tanh(pre_l) @ w_gates + b_gates                  (with a backbone; else gates_l = pre_l)
    s_l(t)  = lerp(tanh(ff1), tanh(ff2), sigmoid(time_a * dt + time_b)),  gates_l = [ff1 | ff2 | time_a | time_b]
A fully connected CfC is one layer with a backbone; an NCP-wired CfC is three layers (inter, command, motor)
without.

The loop runs in sigmoid form: with tanh(z) = 2 sigmoid(2z) - 1 and the state kept as p = (s + 1) / 2, the update is
    p(t) = lerp(sigmoid(2 ff1), sigmoid(2 ff2), sigmoid(time_a * dt + time_b)),
and 2 ff and the gates' share of s = 2p - 1 fold into the weights once per call (`run_chain`), so that each
iteration is one sigmoid over three gate blocks: on the CPU tanh costs about three times sigmoid per value, and a
tanh of a column slice is not vectorised at all. The two forms differ by float rounding only.

The pipeline (a wavefront): at iteration k, layer l computes its step k - l. Every layer then reads only states
of iteration k - 1, so one matmul of the concatenated state [s_0 | s_1 | ...] (N = sum H_l) with a block weight
`w_state` (N, 4N) gives every layer's gates, and the update is three more kernels per iteration for all layers.
A sequence of T steps takes T + L - 1 iterations; in the first and last L - 1 of them the layers that have not
started or have already finished hold their state. The backward runs the same wavefront in reverse: two kernels
per iteration, all elementwise derivative factors computed for all iterations at once before it, and the weight
gradient in one matmul after it. The arithmetic is the layer-by-layer recurrence's; only the order of float sums
differs.

Column layout of the gates (and of `w_state`'s columns and `w_input`'s rows): gate-major,
[ff1 | ff2 | time_a | time_b], each block N wide and ordered by layer, so that one lerp updates every layer. With a
backbone (one layer only) the pre-activation is P = backbone units wide and `w_gates` (P, 4N) maps it to the gates.
`dt` is data (time stamps), not differentiated.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

LECUN_SCALE = 1.7159
LECUN_SLOPE = 0.666


def pipeline_iterations(steps: int, layers: int) -> int:
    """Iterations of the wavefront for `steps` time steps through `layers` layers."""
    return steps + layers - 1


def run_chain(
    x: Tensor, w_input: Tensor, bias: Tensor, dts: Tensor, h0: Tensor, units: tuple[int, ...], w_state: Tensor,
    w_gates: Tensor | None = None, b_gates: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The chain over a sequence, pipelined.

    x (T, B, F): the inputs, time-major; w_input (P, F), bias (P,): the affine map of the input onto the
        pre-activation (P = 4N without a backbone, in the gate-major layout: zero rows where a layer does not read
        the input, which is every layer but the first; P = backbone units with one);
    dts (T, B, 1): elapsed time of every step; h0 (B, N): the layers' initial states, concatenated;
    units: (H_0, ..., H_{L-1}); w_state (N, P): the block weight from the concatenated state to the pre-activation
    (layer l's rows feed layer l's and layer l + 1's columns); w_gates (P, 4N), b_gates (4N,): the backbone's
    output layer (one layer only), or None.
    Returns (last layer's states over time (B, T, H_last), final states of all layers concatenated (B, N)).
    """
    if w_gates is not None and len(units) != 1:
        raise ValueError("a backbone is supported for a single-layer chain only")
    n = sum(units)
    # The sigmoid form (module docstring): ff1 and ff2 doubled, and s = 2p - 1, so s @ w = p @ 2w - (column sums).
    # Folded into the weights and the bias, which are small, never into the (T, B, P) pre-activations.
    doubled = torch.ones(4, n, dtype=x.dtype, device=x.device)
    doubled[:2] = 2.0
    doubled = doubled.view(-1)
    bias = bias - w_state.sum(dim=0)
    if w_gates is None:
        w_input, bias, w_state = w_input * doubled.unsqueeze(1), bias * doubled, w_state * (2.0 * doubled)
    else:
        w_state, w_gates, b_gates = 2.0 * w_state, w_gates * doubled, b_gates * doubled
    # The input's share of every step in one matmul; the loop then adds only the state's.
    drive = F.linear(x, w_input, bias)
    outputs, final = _PipelinedChain.apply(units, drive, bias, dts, (h0 + 1.0) * 0.5, w_state, w_gates, b_gates)
    return outputs * 2.0 - 1.0, final * 2.0 - 1.0


def _held_columns(iteration: int, steps: int, offsets: list[int]) -> list[tuple[int, int]]:
    """State column ranges of the layers that hold their state at `iteration` (not started, or finished)."""
    layers = len(offsets) - 1
    first_active, last_active = max(0, iteration - steps + 1), min(layers - 1, iteration)
    ranges = [(0, offsets[first_active]), (offsets[last_active + 1], offsets[-1])]
    return [(start, end) for start, end in ranges if end > start]


def _skewed_dt(dts: Tensor, units: tuple[int, ...], iterations: int) -> Tensor:
    """(K, B, N): the dt each layer's columns use at each iteration (layer l runs step k - l; 0 where it holds)."""
    steps, batch = dts.shape[:2]
    skewed = dts.new_zeros(iterations, batch, sum(units))
    offset = 0
    for layer, width in enumerate(units):
        skewed[layer : layer + steps, :, offset : offset + width] = dts
        offset += width
    return skewed


class _PipelinedChain(torch.autograd.Function):
    """The wavefront in sigmoid form: states p, gates [2 ff1 | 2 ff2 | time_a | time_b] (weights already folded)."""

    @staticmethod
    def forward(
        ctx: Any, units: tuple[int, ...], drive: Tensor, bias: Tensor, dts: Tensor, p0: Tensor, w_state: Tensor,
        w_gates: Tensor | None, b_gates: Tensor | None,
    ) -> Any:
        steps, batch = drive.shape[:2]
        iterations, n = pipeline_iterations(steps, len(units)), sum(units)
        offsets = [sum(units[:index]) for index in range(len(units) + 1)]
        skewed_dt = _skewed_dt(dts, units, iterations)
        held = [_held_columns(k, steps, offsets) for k in range(iterations)]
        new = drive.new_empty
        # states[k] is the concatenated state entering iteration k; states[k + 1] the one it leaves.
        states = new(iterations + 1, batch, n)
        states[0] = p0
        # The gates, whose first three blocks then take in place [q1 | q2 | mix]: sigmoid(2 ff1), sigmoid(2 ff2),
        # sigmoid(time_a * dt + time_b), all the backward needs of them.
        gates = new(iterations, batch, 4 * n)
        backbone = None if w_gates is None else new(iterations, batch, w_state.shape[1])  # tanh(slope * pre)
        # The pre-activations start as the drive (after the last step only the deeper layers run, on their bias
        # alone), so that each iteration adds the state's share in place: one copy here, not one per iteration.
        pre_activations = gates if backbone is None else backbone
        pre_activations[:steps] = drive
        pre_activations[steps:] = bias
        # Per-iteration views made once: indexing and slicing inside the loop would cost more than the arithmetic.
        state_steps, gate_steps, pre_steps, dt_steps = states.unbind(0), gates.unbind(0), \
            pre_activations.unbind(0), skewed_dt.unbind(0)
        # time_a's columns take time_a * dt + time_b in place; one sigmoid then covers whole rows (time_b's block,
        # needed no more, included): over contiguous memory it takes half the time of the first three blocks alone.
        q1, q2, mix, time_b = gates[..., :n].unbind(0), gates[..., n : 2 * n].unbind(0), \
            gates[..., 2 * n : 3 * n].unbind(0), gates[..., 3 * n :].unbind(0)
        for k in range(iterations):
            pre = pre_steps[k].addmm_(state_steps[k], w_state)
            if backbone is not None:
                torch.tanh(pre.mul_(LECUN_SLOPE), out=pre)  # the backbone output is scale times this
                torch.addmm(b_gates, pre, w_gates, alpha=LECUN_SCALE, out=gate_steps[k])
            torch.addcmul(time_b[k], mix[k], dt_steps[k], out=mix[k])
            torch.sigmoid(gate_steps[k], out=gate_steps[k])
            torch.lerp(q1[k], q2[k], mix[k], out=state_steps[k + 1])
            for start, end in held[k]:
                state_steps[k + 1][:, start:end] = state_steps[k][:, start:end]
        ctx.units, ctx.held, ctx.steps = units, held, steps
        ctx.save_for_backward(skewed_dt, w_state, w_gates, states, gates, backbone)
        # The last layer's step t is computed at iteration t + L - 1, so it is in states[t + L].
        outputs = states[len(units) : len(units) + steps, :, offsets[-2] :].transpose(0, 1).contiguous()
        return outputs, states[iterations].clone()

    @staticmethod
    @once_differentiable  # the saved buffers carry no graph: refuse double backward rather than be wrong
    def backward(ctx: Any, grad_outputs: Tensor, grad_final: Tensor) -> Any:
        units, held, steps = ctx.units, ctx.held, ctx.steps
        skewed_dt, w_state, w_gates, states, gates, backbone = ctx.saved_tensors
        iterations, batch, n = skewed_dt.shape
        offsets = [sum(units[:index]) for index in range(len(units) + 1)]

        # d state' / d gates for every iteration at once: (K, B, 4, N) factors that the incoming gradient multiplies;
        # zero where a layer holds, so no gradient reaches gates that were computed and discarded.
        q1, q2, mix = gates[..., :n], gates[..., n : 2 * n], gates[..., 2 * n : 3 * n]
        factors = mix.new_empty(iterations, batch, 4, n)
        ff1_factor, ff2_factor, time_a_factor, d_mix = factors.unbind(2)
        torch.mul(q2 - q1, mix * (1 - mix), out=d_mix)  # time_b's factor: d p' / d (time_a * dt + time_b)
        torch.mul(d_mix, skewed_dt, out=time_a_factor)
        torch.mul(1 - mix, q1 * (1 - q1), out=ff1_factor)
        torch.mul(mix, q2 * (1 - q2), out=ff2_factor)
        for k, ranges in enumerate(held):
            for start, end in ranges:
                factors[k, :, :, start:end] = 0
        grad_gates = factors.new_empty(iterations, batch, 4, n)
        grad_pre = grad_gates.view(iterations, batch, 4 * n) if backbone is None else torch.empty_like(backbone)
        # d backbone / d pre, from the stored tanh(slope * pre).
        backbone_slope = None if backbone is None else (1 - backbone * backbone).mul_(LECUN_SCALE * LECUN_SLOPE)

        # carry: d loss / d (state leaving iteration k), gathered from iteration k + 1 and from the outputs.
        carry = grad_final.clone(memory_format=torch.contiguous_format)
        carry_row, last = carry.unsqueeze(1), carry[:, offsets[-2] :]
        w_state_t, w_gates_t = w_state.t(), None if w_gates is None else w_gates.t()
        # Per-iteration views made once, as in forward.
        factor_steps, gate_grad_steps = factors.unbind(0), grad_gates.unbind(0)
        gate_grad_rows, pre_grad_steps = grad_gates.view(iterations, batch, 4 * n).unbind(0), grad_pre.unbind(0)
        slope_steps = None if backbone_slope is None else backbone_slope.unbind(0)
        output_steps = grad_outputs.transpose(0, 1).unbind(0)
        lag = len(units) - 1
        for k in range(iterations - 1, -1, -1):
            if k >= lag:
                last.add_(output_steps[k - lag])
            torch.mul(carry_row, factor_steps[k], out=gate_grad_steps[k])
            d_pre = pre_grad_steps[k]
            if w_gates_t is not None:
                torch.mm(gate_grad_rows[k], w_gates_t, out=d_pre).mul_(slope_steps[k])
            passed = [(start, end, carry[:, start:end].clone()) for start, end in held[k]]
            torch.mm(d_pre, w_state_t, out=carry)
            for start, end, gradient in passed:  # a held state passes its gradient through unchanged
                carry[:, start:end].add_(gradient)

        flat_pre = grad_pre.reshape(iterations * batch, -1)
        grad_w_state = states[:-1].reshape(iterations * batch, n).t() @ flat_pre
        grad_w_gates = grad_b_gates = None
        if backbone is not None:
            flat_gates = grad_gates.view(iterations * batch, 4 * n)
            grad_w_gates = (backbone.reshape(iterations * batch, -1).t() @ flat_gates).mul_(LECUN_SCALE)
            grad_b_gates = flat_gates.sum(0)
        # The bias drove the iterations after the last step on its own; its share of the other iterations reaches
        # it through the drive's gradient.
        grad_bias = grad_pre[steps:].sum(dim=(0, 1)) if iterations > steps else None
        return None, grad_pre[:steps], grad_bias, None, carry, grad_w_state, grad_w_gates, grad_b_gates
