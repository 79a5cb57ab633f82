"""The policy: image normalisation + CNN + head + tanh, with a sequence API for training and a single-step API for
flight and export.

Inputs are frames already cropped and resized by `preprocessing.crop_and_resize` (uint8, or float 0..255 for
augmented training frames); normalisation happens inside the module, so an exported graph takes uint8 frames.
The state is normalised by buffers set from the training data (`set_state_normalisation`). Actions come out through
tanh: bounded to [-1, 1] by construction in torch, ONNX and onboard alike, with gradients that never vanish
completely (a clamp has zero gradient whenever the output overshoots, and a net trained unbounded would only be
clipped at deployment, a train/flight mismatch). Targets are already normalised by the airframe's limits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from policies.config import STATE_SIZE, PolicyConfig
from policies.heads import Hidden
from policies.perception import ConvEncoder
from policies.registry import build_head


class Policy(nn.Module):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ConvEncoder(config.image, config.feature_size)
        self.head = build_head(config, config.feature_size + STATE_SIZE)
        self.register_buffer("state_mean", torch.zeros(STATE_SIZE))
        self.register_buffer("state_std", torch.ones(STATE_SIZE))

    def set_state_normalisation(self, mean: Tensor, std: Tensor) -> None:
        """Per-component statistics of the training states; the normalised state is (state - mean) / std."""
        if mean.shape != (STATE_SIZE,) or std.shape != (STATE_SIZE,) or not bool((std > 0).all()):
            raise ValueError(f"state mean and std must have shape ({STATE_SIZE},), std > 0")
        self.state_mean.copy_(mean)
        self.state_std.copy_(std)

    @property
    def hidden_names(self) -> tuple[str, ...]:
        return self.head.hidden_names

    def hidden_shapes(self, batch: int = 1) -> dict[str, tuple[int, int]]:
        """Name -> shape of each hidden-state tensor, in the order of the hidden tuple (empty for the MLP)."""
        return {name: (batch, size) for name, size in zip(self.head.hidden_names, self.head.hidden_sizes())}

    def initial_hidden(self, batch: int = 1) -> Hidden:
        """The hidden state at the start of an episode: zeros."""
        return tuple(self.state_mean.new_zeros(shape) for shape in self.hidden_shapes(batch).values())

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the CNN, of the head (recurrent core + read-out) and in total. Wired heads count
        their dense weights, masked-out synapses included (ncps's convention); masks are buffers."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        return {"cnn": count(self.encoder), "head": count(self.head), "total": count(self)}

    def _inputs(self, frames: Tensor, states: Tensor) -> Tensor:
        """frames (N, H, W, 3), states (N, 7) -> head inputs (N, features + 7)."""
        # Shape checks run in eager mode only: under ONNX tracing sizes are symbolic (see fast_cfc.step_dt).
        if not torch.jit.is_tracing() and states.shape != (frames.shape[0], STATE_SIZE):
            raise ValueError(f"expected states ({frames.shape[0]}, {STATE_SIZE}), got {tuple(states.shape)}")
        normalised = (states.to(torch.float32) - self.state_mean) / self.state_std
        return torch.cat([self.encoder(frames), normalised], dim=1)

    def _time(self, dt: Tensor) -> Tensor:
        """Seconds -> the heads' time unit (`PolicyConfig.time_unit_s`)."""
        return dt.to(torch.float32) / self.config.time_unit_s

    def _hidden(self, hidden: Hidden | None, batch: int) -> Hidden:
        if hidden is None:
            return self.initial_hidden(batch)
        expected = tuple(self.hidden_shapes(batch).values())
        if not torch.jit.is_tracing() and tuple(tuple(h.shape) for h in hidden) != expected:
            raise ValueError(f"expected hidden shapes {expected}, got {tuple(tuple(h.shape) for h in hidden)}")
        return tuple(hidden)

    def forward(
        self, images: Tensor, states: Tensor, dt: Tensor, hidden: Hidden | None = None
    ) -> tuple[Tensor, Hidden]:
        """Windows for training (truncated BPTT: pass the returned hidden state, detached, to the next window).
        images (B, T, H, W, 3), states (B, T, 7), dt (B, T) seconds -> actions (B, T, 4) in [-1, 1], hidden."""
        batch, steps = images.shape[:2]
        if dt.shape != (batch, steps):
            raise ValueError(f"expected dt ({batch}, {steps}), got {tuple(dt.shape)}")
        x = self._inputs(images.flatten(0, 1), states.flatten(0, 1)).unflatten(0, (batch, steps))
        y, hidden = self.head(x, self._time(dt), self._hidden(hidden, batch))
        return torch.tanh(y), hidden

    def step(
        self, image: Tensor, state: Tensor, hidden: Hidden | None, dt: Tensor | float
    ) -> tuple[Tensor, Hidden]:
        """One control step. image (B, H, W, 3), state (B, 7), hidden from `initial_hidden` or the previous step
        (None: initial), dt (B,) or a float: seconds since the previous step -> action (B, 4) in [-1, 1], hidden."""
        batch = image.shape[0]
        if not isinstance(dt, Tensor):
            dt = self.state_mean.new_full((batch,), float(dt))
        y, hidden = self.head.step(self._inputs(image, state), self._time(dt), self._hidden(hidden, batch))
        return torch.tanh(y), hidden


def build_policy(config: PolicyConfig) -> Policy:
    """A freshly initialised policy; the same config (seed included) always gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return Policy(config)


class PolicyStep(nn.Module):
    """`Policy.step` with flat tensor inputs and outputs, the module to export to ONNX:
    inputs  image (B, H, W, 3) uint8, state (B, 7) float32, dt (B,) float32 seconds, then `<name>_in` per hidden
            tensor (B, size) float32 (names and sizes: `Policy.hidden_shapes`);
    outputs action (B, 4) float32 in [-1, 1], then `<name>_out` per hidden tensor.
    Every axis 0 is the batch."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.policy = policy
        names = policy.hidden_names
        self.input_names = ("image", "state", "dt", *(f"{name}_in" for name in names))
        self.output_names = ("action", *(f"{name}_out" for name in names))

    def forward(self, image: Tensor, state: Tensor, dt: Tensor, *hidden: Tensor) -> tuple[Tensor, ...]:
        action, new_hidden = self.policy.step(image, state, hidden, dt)
        # The exporter drops graph inputs nothing reads, and the discrete-time heads do not read dt: adding
        # 0 * dt keeps dt an input of every exported policy, so a runtime feeds all policies the same way.
        return (action + 0.0 * dt.reshape(-1, 1), *new_hidden)

    def example_inputs(self, batch: int = 1) -> tuple[Tensor, ...]:
        spec = self.policy.config.image
        image = torch.zeros(batch, spec.output_height, spec.output_width, 3, dtype=torch.uint8)
        state = torch.zeros(batch, STATE_SIZE)
        dt = torch.full((batch,), 1.0 / 30.0)
        return (image, state, dt, *self.policy.initial_hidden(batch))

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {name: {0: "batch"} for name in (*self.input_names, *self.output_names)}

