"""Fast closed-form continuous-time (CfC) layers, numerically equal to ncps 1.0.1's `CfC` in mode "default":
`FastCfC` (fully connected) and `FastWiredCfC` (NCP or other layered ncps wiring).

ncps runs one Python-level cell call per time step, and each call rebuilds the masked weights, concatenates input
and state, runs four separate matmuls and records ~15 autograd nodes per layer. Here:

* sequence mode (`forward`, for training) applies the sparsity masks once per call, fuses the four gates
  (ff1, ff2, time_a, time_b) and, for a wiring, all layers into one block weight (gathered from the layers' weights
  in one indexing op), computes the input's share of the first matmul for all time steps in one large matmul, and
  runs the time loop as a single autograd node with hand-written backpropagation, the layers pipelined
  (`policies.cfc_bptt`);
* step mode (`step`, for flight and ONNX export) is the same arithmetic in plain differentiable ops, one step with
  explicit state, which traces to a small static graph.

The update is ncps's: with gates computed from [input, state],
    h' = tanh(ff1) * (1 - s) + s * tanh(ff2),   s = sigmoid(time_a * dt + time_b),
evaluated as `lerp(tanh(ff1), tanh(ff2), s)`; the two forms differ by float rounding only.

`dt` is per sample: (B, T) in sequence mode, (B,) or (B, 1) in step mode, so any batch size works (unlike ncps's
batched `timespans`). Weights load from an ncps model with `state_dict_from_ncps`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from ncps.wirings import Wiring
from torch import Tensor, nn

from policies.cfc_bptt import LECUN_SCALE, LECUN_SLOPE, run_chain

_GATES = ("ff1", "ff2", "time_a", "time_b")  # order of the blocks in a fused gate weight


def lecun_tanh(x: Tensor) -> Tensor:
    """ncps's backbone activation (LeCun's scaled tanh)."""
    return LECUN_SCALE * torch.tanh(LECUN_SLOPE * x)


def cfc_update(gates: Tensor, dt: Tensor) -> Tensor:
    """New state from fused gates (B, 4H) ordered [ff1 | ff2 | time_a | time_b] and elapsed time dt (B, 1)."""
    units = gates.shape[1] // 4
    candidates = torch.tanh(gates[:, : 2 * units])
    interpolation = torch.sigmoid(torch.addcmul(gates[:, 3 * units :], gates[:, 2 * units : 3 * units], dt))
    return torch.lerp(candidates[:, :units], candidates[:, units:], interpolation)


def step_dt(dt: Tensor, batch: int) -> Tensor:
    """Elapsed times of one step, (B,) or (B, 1), as the (B, 1) column the update broadcasts over units."""
    # Checked in eager mode only: while tracing for ONNX export the sizes are symbolic and the check would be
    # frozen into the trace as a constant.
    if not torch.jit.is_tracing() and dt.shape not in ((batch,), (batch, 1)):
        raise ValueError(f"step dt must have shape ({batch},) or ({batch}, 1), got {tuple(dt.shape)}")
    return dt.reshape(-1, 1)


def sequence_dt(dt: Tensor, batch: int, steps: int) -> Tensor:
    """Elapsed times of a sequence, (B, T), as time-major (T, B, 1) so that `dts[t]` is one step's column."""
    if dt.shape != (batch, steps):
        raise ValueError(f"sequence dt must have shape ({batch}, {steps}), got {tuple(dt.shape)}")
    return dt.transpose(0, 1).unsqueeze(-1)


def _xavier_blocks(weight: Tensor, blocks: int) -> None:
    """Xavier-uniform init with the bound of one of `blocks` equal row blocks, as ncps initialises each gate's
    separate Linear (the fused matrix's own fan-out would give smaller weights)."""
    rows, cols = weight.shape[0] // blocks, weight.shape[1]
    bound = math.sqrt(6.0 / (rows + cols))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class FastCfC(nn.Module):
    """Fully connected CfC: `input_size` features in, `units` state and outputs. Like ncps's default, one
    LeCun-tanh backbone layer of `backbone_units` sits between [input, state] and the gates (0: no backbone)."""

    def __init__(self, input_size: int, units: int, backbone_units: int = 128) -> None:
        super().__init__()
        if backbone_units < 0:
            raise ValueError(f"backbone_units must be >= 0, got {backbone_units}")
        self.input_size = input_size
        self.units = units
        self.backbone = nn.Linear(input_size + units, backbone_units) if backbone_units else None
        self.gates = nn.Linear(backbone_units or input_size + units, 4 * units)
        if self.backbone is not None:
            nn.init.xavier_uniform_(self.backbone.weight)
        _xavier_blocks(self.gates.weight, 4)

    @property
    def state_size(self) -> int:
        return self.units

    def _first(self) -> nn.Linear:
        """The affine map on [input, state]: the backbone, or the gates without one."""
        return self.backbone if self.backbone is not None else self.gates

    def step(self, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
        """One step: x (B, F), h (B, H), dt (B,) or (B, 1) -> (output (B, H), new state (B, H))."""
        first = self._first()
        w_input, w_state = first.weight[:, : self.input_size], first.weight[:, self.input_size :]
        z = torch.addmm(F.linear(x, w_input, first.bias), h, w_state.t())
        if self.backbone is not None:
            z = self.gates(lecun_tanh(z))
        h = cfc_update(z, step_dt(dt, x.shape[0]))
        return h, h

    def forward(self, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
        """A sequence: x (B, T, F), h (B, H), dt (B, T) -> (outputs (B, T, H), final state (B, H))."""
        batch, steps, _ = x.shape
        dts = sequence_dt(dt, batch, steps)
        first = self._first()
        w_input, w_state = first.weight[:, : self.input_size], first.weight[:, self.input_size :].t()
        gates = () if self.backbone is None else (self.gates.weight.t(), self.gates.bias)
        return run_chain(x.transpose(0, 1), w_input, first.bias, dts, h, (self.units,), w_state, *gates)


class _WiredLayer(nn.Module):
    """One NCP layer (inter, command or motor neurons): fused gates over [layer input, layer state].

    `mask` (a buffer, not a parameter: it is fixed by the wiring) zeroes the ff1/ff2 synapses the wiring lacks;
    the time gates stay dense, as in ncps.
    """

    def __init__(self, in_features: int, units: int, synapses: np.ndarray) -> None:
        super().__init__()
        self.in_features = in_features
        self.units = units
        self.weight = nn.Parameter(torch.empty(4 * units, in_features + units))
        self.bias = nn.Parameter(torch.empty(4 * units))
        gated = torch.from_numpy(np.abs(synapses.T).astype(np.float32))
        dense = torch.ones_like(gated)
        self.register_buffer("mask", torch.cat([gated, gated, dense, dense]))
        _xavier_blocks(self.weight, 4)
        bound = 1.0 / math.sqrt(in_features + units)
        nn.init.uniform_(self.bias, -bound, bound)


class FastWiredCfC(nn.Module):
    """CfC with an NCP (or any layered ncps) wiring. State order is ncps's: [inter | command | motor];
    outputs are the motor neurons (the last layer)."""

    def __init__(self, input_size: int, wiring: Wiring) -> None:
        super().__init__()
        if wiring.is_built():
            # Wiring.build adds synapses again on a second call: a wiring object serves exactly one model.
            raise ValueError("pass a fresh, unbuilt wiring: ncps wirings cannot be shared between models")
        wiring.build(input_size)
        self.input_size = input_size
        layers = []
        in_features = input_size
        previous: list[int] = []
        for index in range(wiring.num_layers):
            neurons = wiring.get_neurons_of_layer(index)
            if index == 0:
                incoming = wiring.sensory_adjacency_matrix[:, neurons]
            else:
                incoming = wiring.adjacency_matrix[np.ix_(previous, neurons)]
            # Within a layer every neuron sees every other (ncps's wired cell does the same).
            synapses = np.concatenate([incoming, np.ones((len(neurons), len(neurons)))], axis=0)
            layers.append(_WiredLayer(in_features, len(neurons), synapses))
            in_features = len(neurons)
            previous = neurons
        self.layers = nn.ModuleList(layers)
        self.layer_sizes = tuple(layer.units for layer in layers)
        # Fixed by the wiring's layer sizes, not saved with the weights.
        self.register_buffer("pipeline_index", self._gather_index(), persistent=False)

    @property
    def state_size(self) -> int:
        return sum(self.layer_sizes)

    def _masked(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Every layer's (w_in (4H, F_l), w_state (4H, H), bias (4H,)) with the wiring's mask applied: once per call."""
        masked = []
        for layer in self.layers:
            weight = layer.weight * layer.mask
            masked.append((weight[:, : layer.in_features], weight[:, layer.in_features :], layer.bias))
        return masked

    def step(self, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
        """One step: x (B, F), h (B, N), dt (B,) or (B, 1) -> (motor outputs (B, M), new state (B, N))."""
        dt = step_dt(dt, x.shape[0])
        new_states = []
        layer_input = x
        for (w_in, w_state, bias), state in zip(self._masked(), h.split(self.layer_sizes, dim=1)):
            gates = torch.addmm(bias, layer_input, w_in.t()).addmm_(state, w_state.t())
            layer_input = cfc_update(gates, dt)
            new_states.append(layer_input)
        return layer_input, torch.cat(new_states, dim=1)

    def _assemble(self, parts: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """Every layer's (w_in, w_state, bias) -> the weights of the pipelined sequence mode, in its gate-major
        layout (policies.cfc_bptt): (input weight (4N, F), block state weight (N, 4N), bias (4N,)), N the total state
        size. Only the first layer reads the input: the input weight's other rows are zeros. Layer l's gate rows read
        layer l's own state columns and, for l > 0, layer l - 1's just before them."""
        total, offset = self.state_size, 0
        rows, biases = [], []
        for index, (w_in, w_state, bias) in enumerate(parts):
            units = w_state.shape[1]
            fed_from = offset - w_in.shape[1] if index > 0 else offset
            blocks = [w_state.new_zeros(4, units, fed_from)]
            if index > 0:
                blocks.append(w_in.view(4, units, -1))
            blocks += [w_state.view(4, units, units), w_state.new_zeros(4, units, total - offset - units)]
            rows.append(torch.cat(blocks, dim=2))
            biases.append(bias.view(4, units))
            offset += units
        state_weight = torch.cat(rows, dim=1).reshape(4 * total, total).t()
        first = parts[0][0].view(4, self.layer_sizes[0], self.input_size)
        input_weight = F.pad(first, (0, 0, 0, total - first.shape[1])).reshape(4 * total, self.input_size)
        return input_weight, state_weight, torch.cat(biases, dim=1).reshape(-1)

    def _gather_index(self) -> Tensor:
        """Where each value of `_assemble`'s three outputs (state weight in its (4N, N) memory order, input weight,
        bias) sits in `_flat`'s vector, its last slot (a zero) for the blocks that are zeros: the layout made once."""
        sizes = [t.numel() for layer in self.layers for t in (layer.weight, layer.bias)]
        # Positions counted from 1, so that the zeros `_assemble` inserts stand for "no parameter".
        positions = torch.arange(1, sum(sizes) + 1, dtype=torch.float64).split(sizes)
        parts = []
        for layer, weight, bias in zip(self.layers, positions[::2], positions[1::2]):
            weight = weight.view(4 * layer.units, layer.in_features + layer.units)
            parts.append((weight[:, : layer.in_features], weight[:, layer.in_features :], bias))
        input_weight, state_weight, bias = self._assemble(parts)
        flat = torch.cat([state_weight.t().reshape(-1), input_weight.reshape(-1), bias])
        return torch.where(flat > 0, flat - 1, sum(sizes)).long()

    def _flat(self) -> Tensor:
        """Every layer's weight and bias as one vector with the wiring's mask applied, then a zero."""
        pieces = [t.reshape(-1) for layer in self.layers for t in (layer.weight * layer.mask, layer.bias)]
        return torch.cat(pieces + [self.layers[0].bias.new_zeros(1)])

    def _pipeline_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """`_assemble` of the masked weights, in one gather: built block by block, its small copies and their
        gradients cost more than the arithmetic they feed."""
        total = self.state_size
        gathered = self._flat().index_select(0, self.pipeline_index)
        state_end = 4 * total * total
        input_end = state_end + 4 * total * self.input_size
        state_weight = gathered[:state_end].view(4 * total, total).t()
        return gathered[state_end:input_end].view(4 * total, self.input_size), state_weight, gathered[input_end:]

    def forward(self, x: Tensor, h: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
        """A sequence: x (B, T, F), h (B, N), dt (B, T) -> (motor outputs (B, T, M), final state (B, N))."""
        batch, steps, _ = x.shape
        dts = sequence_dt(dt, batch, steps)
        input_weight, state_weight, bias = self._pipeline_weights()
        return run_chain(x.transpose(0, 1), input_weight, bias, dts, h, self.layer_sizes, state_weight)


def state_dict_from_ncps(ncps_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map the state_dict of an ncps `CfC` (mode "default", no mixed memory, no projection) to the equivalent
    `FastCfC` (fully connected) or `FastWiredCfC` (wired) state_dict."""
    prefix = "rnn_cell."
    cells: dict[str, dict[str, Tensor]] = {}
    result: dict[str, Tensor] = {}
    for key, value in ncps_state.items():
        if not key.startswith(prefix):
            raise ValueError(f"unexpected key {key!r}: only a plain ncps CfC (no mixed memory, no proj_size) maps")
        path = key[len(prefix) :].split(".")
        if path[0] == "backbone":  # nn.Sequential(Linear, activation, ...): only one backbone layer maps
            if path[1] != "0":
                raise ValueError(f"unexpected key {key!r}: FastCfC has at most one backbone layer")
            result[f"backbone.{path[2]}"] = value
        elif path[0].startswith("layer_"):
            cells.setdefault(f"layers.{path[0][len('layer_'):]}.", {})[".".join(path[1:])] = value
        else:
            cells.setdefault("gates.", {})[".".join(path)] = value
    for target, cell in cells.items():
        for kind in ("weight", "bias"):
            result[target + kind] = torch.cat([cell[f"{gate}.{kind}"] for gate in _GATES])
        if "sparsity_mask" in cell:
            mask = cell["sparsity_mask"]
            result[target + "mask"] = torch.cat([mask, mask, torch.ones_like(mask), torch.ones_like(mask)])
    return result
