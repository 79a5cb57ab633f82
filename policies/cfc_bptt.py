"""A chain of CfC layers run over a whole sequence as one autograd node, with hand-written backpropagation through
time.

Why: at the sizes of a policy head (tens of neurons, batches of tens), every tensor op costs far more in launch and
autograd bookkeeping than in arithmetic. Recorded op by op, a 3-layer wired CfC puts ~30 autograd nodes on the tape
per time step. Here the forward loop runs without the tape (five kernels per layer and step, writing straight into
preallocated history buffers), and the backward loop needs three kernels per layer and step: all elementwise
derivative factors are computed for all time steps at once before it, and all weight gradients in one matmul each
after it.

The chain: layer l has state s_l (H_l units) and, at every step,
    pre_l   = u_l @ w_in_l + s_l @ w_state_l + bias_l    (u_0 @ w_in_0 + bias_0 comes precomputed as `projected`;
                                                           u_l = layer l-1's new state for l > 0)
    gates_l = lecun_tanh(pre_l) @ w_gates_l + b_gates_l  (with a backbone; else gates_l = pre_l)
    s_l'    = lerp(tanh(ff1), tanh(ff2), sigmoid(time_a * dt + time_b)),  gates_l = [ff1 | ff2 | time_a | time_b]
A fully connected CfC is one layer with a backbone; an NCP-wired CfC is three layers without.
`dt` is data (time stamps), not differentiated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

LECUN_SCALE = 1.7159
LECUN_SLOPE = 0.666


class ChainLayer(NamedTuple):
    """One layer's weights, transposed for `x @ w`. P is the pre-activation width (4H without a backbone)."""

    w_in: Tensor | None  # (F, P); None for the first layer, whose input share arrives precomputed
    bias: Tensor | None  # (P,); None for the first layer (folded into the precomputed share)
    w_state: Tensor  # (H, P)
    w_gates: Tensor | None  # (P, 4H) backbone to gates; None without a backbone
    b_gates: Tensor | None  # (4H,)


def run_chain(projected: Tensor, dts: Tensor, states: list[Tensor], layers: list[ChainLayer]) -> tuple[Tensor, Tensor]:
    """projected (T, B, P_0), dts (T, B, 1), states: each layer's initial state (B, H_l).
    Returns (last layer's states over time (B, T, H_last), final states of all layers concatenated (B, sum H))."""
    flat = [tensor for layer in layers for tensor in layer]
    units = tuple(state.shape[1] for state in states)
    return _CfCChain.apply(units, projected, dts, torch.cat(states, dim=1), *flat)


class _CfCChain(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, units: tuple[int, ...], projected: Tensor, dts: Tensor, h0: Tensor, *flat: Tensor) -> Any:
        layers = [ChainLayer(*flat[i : i + 5]) for i in range(0, len(flat), 5)]
        steps, batch = projected.shape[:2]
        new = projected.new_empty
        # history[l][t] is layer l's state entering step t; history[l][t + 1] the state it leaves with.
        history = [new(steps + 1, batch, h) for h in units]
        # tanh of all four gates: tanh over a contiguous row is vectorised, over a column slice it is not (5x slower
        # at these sizes), so the time gates' unused tanh is cheaper than slicing out ff1 and ff2.
        candidates = [new(steps, batch, 4 * h) for h in units]
        interpolations = [new(steps, batch, h) for h in units]  # sigmoid(time_a * dt + time_b)
        # tanh(slope * pre) of the layers with a backbone: P wide, where P is w_state's width.
        backbones = [None if layer.w_gates is None else new(steps, batch, layer.w_state.shape[1]) for layer in layers]
        for state, hist in zip(h0.split(units, dim=1), history):
            hist[0] = state
        # Per-step views made once: indexing and slicing inside the loop would cost more than the arithmetic.
        gates = [new(steps, batch, 4 * h) for h in units]
        views = [
            (
                history[i].unbind(0), g.unbind(0), g[..., 2 * h : 3 * h].unbind(0), g[..., 3 * h :].unbind(0),
                c.unbind(0), c[..., :h].unbind(0), c[..., h : 2 * h].unbind(0), s.unbind(0),
                None if b is None else b.unbind(0),
            )
            for i, (h, g, c, s, b) in enumerate(zip(units, gates, candidates, interpolations, backbones))
        ]
        projected_steps, dt_steps = projected.unbind(0), dts.unbind(0)
        for t in range(steps):
            for index, layer in enumerate(layers):
                hist, gate, time_a, time_b, cand, ff1, ff2, mix, backbone = views[index]
                pre = gate[t] if layer.w_gates is None else backbone[t]
                if index == 0:
                    torch.addmm(projected_steps[t], hist[t], layer.w_state, out=pre)
                else:
                    torch.addmm(layer.bias, views[index - 1][0][t + 1], layer.w_in, out=pre)
                    pre.addmm_(hist[t], layer.w_state)
                if layer.w_gates is not None:
                    # Store tanh(slope * pre); the backbone output is scale times it.
                    torch.tanh(pre.mul_(LECUN_SLOPE), out=pre)
                    torch.addmm(layer.b_gates, pre, layer.w_gates, alpha=LECUN_SCALE, out=gate[t])
                torch.tanh(gate[t], out=cand[t])
                torch.sigmoid(torch.addcmul(time_b[t], time_a[t], dt_steps[t]), out=mix[t])
                torch.lerp(ff1[t], ff2[t], mix[t], out=hist[t + 1])
        ctx.units = units
        stored = [*history, *candidates, *interpolations, *[b for b in backbones if b is not None]]
        ctx.save_for_backward(dts, *flat, *stored)
        outputs = history[-1][1:].transpose(0, 1).contiguous()
        final = torch.cat([hist[steps] for hist in history], dim=1)
        return outputs, final

    @staticmethod
    @once_differentiable  # the saved buffers carry no graph: refuse double backward rather than be wrong
    def backward(ctx: Any, grad_outputs: Tensor, grad_final: Tensor) -> Any:
        units = ctx.units
        n = len(units)
        saved = list(ctx.saved_tensors)
        dts, flat, rest = saved[0], saved[1 : 1 + 5 * n], saved[1 + 5 * n :]
        layers = [ChainLayer(*flat[i : i + 5]) for i in range(0, len(flat), 5)]
        history, candidates, interpolations, rest = rest[:n], rest[n : 2 * n], rest[2 * n : 3 * n], rest[3 * n :]
        backbones = [rest.pop(0) if layer.w_gates is not None else None for layer in layers]
        steps, batch = dts.shape[:2]

        # d s' / d gates for every step at once: (T, B, 4, H) factors that a step's incoming gradient multiplies.
        factors = []
        for h, cand, s in zip(units, candidates, interpolations):
            c1, c2 = cand[..., :h], cand[..., h : 2 * h]
            d_mix = (c2 - c1) * s * (1 - s)
            factors.append(torch.stack([(1 - s) * (1 - c1 * c1), s * (1 - c2 * c2), d_mix * dts, d_mix], dim=2))
        # d backbone / d pre, from the stored tanh(slope * pre).
        backbone_slopes = [
            None if b is None else (1 - b * b).mul_(LECUN_SCALE * LECUN_SLOPE) for b in backbones
        ]
        grad_gates = [dts.new_empty(steps, batch, 4, h) for h in units]
        grad_pre = [
            grad_gates[i] if layer.w_gates is None else dts.new_empty(steps, batch, layer.w_state.shape[1])
            for i, layer in enumerate(layers)
        ]
        # carry[l]: d loss / d (layer l's state leaving step t), gathered from step t + 1's recurrence, from the
        # layer above at step t and, for the last layer, from the outputs. Updated in place, step by step.
        carry = [part.clone(memory_format=torch.contiguous_format) for part in grad_final.split(units, dim=1)]
        # Per-step views made once, as in forward.
        carry_rows = [c.unsqueeze(1) for c in carry]
        factor_steps = [f.unbind(0) for f in factors]
        gate_grad_steps = [g.unbind(0) for g in grad_gates]
        gate_grad_rows = [g.view(steps, batch, -1).unbind(0) for g in grad_gates]
        pre_grad_steps = [p.view(steps, batch, -1).unbind(0) for p in grad_pre]
        slope_steps = [None if b is None else b.unbind(0) for b in backbone_slopes]
        output_steps = grad_outputs.transpose(0, 1).unbind(0)
        transposed = [ChainLayer(*(None if w is None else w.t() for w in layer)) for layer in layers]
        for t in range(steps - 1, -1, -1):
            carry[-1].add_(output_steps[t])
            for index in range(n - 1, -1, -1):
                layer = transposed[index]
                torch.mul(carry_rows[index], factor_steps[index][t], out=gate_grad_steps[index][t])
                d_pre = pre_grad_steps[index][t]
                if layer.w_gates is not None:
                    torch.mm(gate_grad_rows[index][t], layer.w_gates, out=d_pre).mul_(slope_steps[index][t])
                if index > 0:
                    carry[index - 1].addmm_(d_pre, layer.w_in)
                torch.mm(d_pre, layer.w_state, out=carry[index])

        grads: list[Tensor | None] = []
        for index, (layer, h) in enumerate(zip(layers, units)):
            d_pre = grad_pre[index].reshape(steps * batch, -1)
            w_in = bias = w_gates = b_gates = None
            if index > 0:
                w_in = history[index - 1][1:].reshape(steps * batch, -1).t() @ d_pre
                bias = d_pre.sum(0)
            w_state = history[index][:-1].reshape(steps * batch, h).t() @ d_pre
            if layer.w_gates is not None:
                d_gates = grad_gates[index].view(steps * batch, 4 * h)
                w_gates = (backbones[index].reshape(steps * batch, -1).t() @ d_gates).mul_(LECUN_SCALE)
                b_gates = d_gates.sum(0)
            grads += [w_in, bias, w_state, w_gates, b_gates]
        return None, grad_pre[0].view(steps, batch, -1), None, torch.cat(carry, dim=1), *grads
