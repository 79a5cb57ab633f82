"""Policy heads: features (CNN features + normalised state) over time -> unsquashed actions, with memory.

Every head has one interface, so the policy wrapper, export and training never branch on the model kind:
* `forward(x (B, T, F), dt (B, T), hidden) -> (y (B, T, A), hidden)` for training over windows;
* `step(x (B, F), dt (B,), hidden) -> (y (B, A), hidden)` for flight and export;
* hidden is a flat tuple of tensors named by `hidden_names`, each (B, size) with sizes `hidden_sizes`
  (empty for the memoryless MLP).
A head includes its output layer; the policy applies the final tanh. Discrete-time baselines (LSTM, GRU, MLP)
ignore dt: they assume the rate they were trained at.

Every head is finite for every dt the dataset format allows (any finite dt >= 0, datasets/README.md): a dt of 0 is
a repeated frame (and the loader pads short windows with it), and a huge dt is a stalled companion computer. The
continuous-time heads therefore see dt through `bounded_dt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from ncps.torch import LTCCell
from ncps.wirings import AutoNCP
from torch import Tensor, nn

from policies.fast_cfc import FastCfC, FastWiredCfC, sequence_dt, step_dt

Hidden = tuple[Tensor, ...]

CFC_BACKBONE_UNITS = 64

# The longest step the continuous-time heads tell apart, in time units (about 5.5 minutes at the nominal 30 Hz): any
# longer gap saturates their time gates anyway, while an unbounded dt overflows float32 products such as
# time_a * dt to inf, and inf * 0 is NaN in the forward or the backward pass.
MAX_DT = 1e4
# LTC's solver divides by dt (cm_t = cm / (dt / unfolds)): at dt = 0 that is inf, and inf * 0 = NaN for a zero
# state. Zero elapsed time should leave the state as it was; from this floor a step changes it by about a millionth.
LTC_MIN_DT = 1e-6


def bounded_dt(dt: Tensor, minimum: float = 0.0) -> Tensor:
    """dt clamped to [minimum, MAX_DT] time units: what a continuous-time head computes with (see MAX_DT)."""
    return dt.clamp(minimum, MAX_DT)


class Head(nn.Module, ABC):
    hidden_names: tuple[str, ...] = ("h",)

    @abstractmethod
    def hidden_sizes(self) -> tuple[int, ...]: ...

    @abstractmethod
    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]: ...

    @abstractmethod
    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]: ...


class CfCNCPHead(Head):
    """CfC with an NCP wiring (ncps's AutoNCP): the motor neurons are the actions, one neuron each. A per-channel
    scale and bias maps them from the CfC's (-1, 1) range to the pre-tanh range, keeping one neuron per action."""

    def __init__(self, input_size: int, units: int, actions: int, sparsity: float, seed: int) -> None:
        super().__init__()
        self.cfc = FastWiredCfC(input_size, AutoNCP(units, actions, sparsity_level=sparsity, seed=seed))
        self.scale = nn.Parameter(torch.ones(actions))
        self.bias = nn.Parameter(torch.zeros(actions))

    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.cfc.state_size,)

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        motor, h = self.cfc(x, hidden[0], bounded_dt(dt))
        return torch.addcmul(self.bias, motor, self.scale), (h,)

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        motor, h = self.cfc.step(x, hidden[0], bounded_dt(dt))
        return torch.addcmul(self.bias, motor, self.scale), (h,)


class CfCHead(Head):
    """Fully connected CfC (with ncps's one-layer LeCun-tanh backbone) and a linear read-out."""

    def __init__(self, input_size: int, units: int, actions: int) -> None:
        super().__init__()
        self.cfc = FastCfC(input_size, units, CFC_BACKBONE_UNITS)
        self.out = nn.Linear(units, actions)

    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.cfc.state_size,)

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, h = self.cfc(x, hidden[0], bounded_dt(dt))
        return self.out(y), (h,)

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, h = self.cfc.step(x, hidden[0], bounded_dt(dt))
        return self.out(y), (h,)


class LTCNCPHead(Head):
    """ncps's LTC cell with an NCP wiring; its own affine output mapping is the read-out. Weight constraints are
    implicit (softplus), so no clipping step is needed after each optimiser step. State order is the wiring's
    neuron ids, motor neurons first. Stepped by our loop with dt (B, 1): ncps's LTC sequence wrapper mishandles
    per-sample timespans for batch > 1."""

    def __init__(self, input_size: int, units: int, actions: int, sparsity: float, seed: int) -> None:
        super().__init__()
        wiring = AutoNCP(units, actions, sparsity_level=sparsity, seed=seed)
        self.cell = LTCCell(wiring, in_features=input_size, implicit_param_constraints=True)

    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.cell.state_size,)

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        dts = sequence_dt(bounded_dt(dt, LTC_MIN_DT), x.shape[0], x.shape[1])
        h = hidden[0]
        outputs = []
        for t in range(x.shape[1]):
            y, h = self.cell(x[:, t], h, dts[t])
            outputs.append(y)
        return torch.stack(outputs, dim=1), (h,)

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, h = self.cell(x, hidden[0], step_dt(bounded_dt(dt, LTC_MIN_DT), x.shape[0]))
        return y, (h,)


class LSTMHead(Head):
    hidden_names = ("h", "c")

    def __init__(self, input_size: int, units: int, actions: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, units, batch_first=True)
        self.out = nn.Linear(units, actions)

    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.lstm.hidden_size, self.lstm.hidden_size)

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, (h, c) = self.lstm(x, (hidden[0].unsqueeze(0), hidden[1].unsqueeze(0)))
        return self.out(y), (h.squeeze(0), c.squeeze(0))

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, hidden = self.forward(x.unsqueeze(1), dt, hidden)
        return y.squeeze(1), hidden


class GRUHead(Head):
    def __init__(self, input_size: int, units: int, actions: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, units, batch_first=True)
        self.out = nn.Linear(units, actions)

    def hidden_sizes(self) -> tuple[int, ...]:
        return (self.gru.hidden_size,)

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, h = self.gru(x, hidden[0].unsqueeze(0))
        return self.out(y), (h.squeeze(0),)

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        y, hidden = self.forward(x.unsqueeze(1), dt, hidden)
        return y.squeeze(1), hidden


class MLPHead(Head):
    """Memoryless baseline: two tanh hidden layers applied frame by frame; no hidden state."""

    hidden_names = ()

    def __init__(self, input_size: int, units: int, actions: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_size, units), nn.Tanh(), nn.Linear(units, units), nn.Tanh(), nn.Linear(units, actions)
        )

    def hidden_sizes(self) -> tuple[int, ...]:
        return ()

    def forward(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        return self.net(x), ()

    def step(self, x: Tensor, dt: Tensor, hidden: Hidden) -> tuple[Tensor, Hidden]:
        return self.net(x), ()
