"""A policy's head seen as a circuit: its neurons grouped by layer, its NCP wiring, and silencing a neuron.

The NCP heads (`cfc-ncp`, `ltc-ncp`) do not keep ncps's wiring object, only the synapse masks it produced. The wiring is
rebuilt here from the policy's config (ncps's AutoNCP is deterministic for a seed) and checked against those masks, so
that the diagram and the layer grouping shown are the ones the weights use, never a look-alike.

Activity vectors (what `traces` records per step) are laid out as follows:
* `cfc-ncp`: the hidden state, ncps's layer order [inter | command | motor] (policies/fast_cfc.py);
* `ltc-ncp`: the hidden state in wiring neuron ids (motor first: ncps's LTCCell);
* `cfc`, `gru`: the hidden state (one group); `lstm`: h then c (one group each);
* `mlp` (no state): the outputs of its two tanh layers (one group each).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from ncps.wirings import AutoNCP, Wiring

from policies.config import ACTION_SIZE, STATE_SIZE
from policies.policy import Policy
from policies.registry import head_size

NCP_MODELS = ("cfc-ncp", "ltc-ncp")
LAYER_NAMES = ("inter", "command", "motor")  # ncps NCP layers 0, 1, 2


@dataclass(frozen=True)
class NeuronGroup:
    """One layer (or hidden tensor) of the head: `columns` index the activity vector, `ids` name its neurons (the
    wiring's neuron ids for NCP heads, unit indices otherwise); both (n,) int arrays in the same order."""

    name: str
    columns: np.ndarray
    ids: np.ndarray


@dataclass(frozen=True)
class Circuit:
    """The head's neurons by group, and its built ncps wiring (None for heads without one)."""

    model: str
    groups: tuple[NeuronGroup, ...]
    wiring: Wiring | None

    @property
    def size(self) -> int:
        """Length of the activity vector: every neuron once."""
        return sum(len(group.columns) for group in self.groups)

    def group(self, name: str) -> NeuronGroup:
        """The group called `name`; KeyError naming the groups there are."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"no neuron group {name!r}; this {self.model} head has {[g.name for g in self.groups]}")

    @property
    def command_neurons(self) -> tuple[int, ...]:
        """Wiring ids of the command neurons: what ablation silences (empty for heads without a wiring)."""
        return tuple(int(i) for i in self.group("command").ids) if self.wiring is not None else ()


def policy_wiring(policy: Policy) -> Wiring:
    """The built NCP wiring of a `cfc-ncp` or `ltc-ncp` policy, rebuilt from its config and checked against the synapse
    masks of its weights. ValueError if the policy has no wiring or its masks differ (weights edited by hand, or
    written by another ncps version whose AutoNCP draws differently)."""
    config = policy.config
    if config.model not in NCP_MODELS:
        raise ValueError(f"a {config.model} head has no NCP wiring (only {' and '.join(NCP_MODELS)} have one)")
    wiring = AutoNCP(head_size(config), ACTION_SIZE, sparsity_level=config.ncp_sparsity, seed=config.seed)
    wiring.build(config.feature_size + STATE_SIZE)
    if not np.array_equal(_used_synapses(policy, wiring), _wiring_synapses(policy, wiring)):
        raise ValueError(f"the synapses of this {config.model} head differ from the NCP wiring its config describes "
                         f"(units {head_size(config)}, sparsity {config.ncp_sparsity}, seed {config.seed}): its "
                         f"weights were edited or come from another ncps version")
    return wiring


def _wiring_synapses(policy: Policy, wiring: Wiring) -> np.ndarray:
    """The wiring's synapses in the layout `_used_synapses` reads the model's masks in (0/1 ints)."""
    if policy.config.model == "ltc-ncp":
        return np.concatenate([np.abs(wiring.sensory_adjacency_matrix), np.abs(wiring.adjacency_matrix)]).astype(int)
    blocks, previous = [], None
    for index in range(wiring.num_layers):
        neurons = wiring.get_neurons_of_layer(index)
        incoming = (wiring.sensory_adjacency_matrix[:, neurons] if previous is None
                    else wiring.adjacency_matrix[np.ix_(previous, neurons)])
        blocks.append(np.abs(incoming).T.astype(int).ravel())
        previous = neurons
    return np.concatenate(blocks)


def _used_synapses(policy: Policy, wiring: Wiring) -> np.ndarray:
    """The synapses the model's masks let through (0/1 ints), in `_wiring_synapses`'s layout."""
    head = policy.head
    if policy.config.model == "ltc-ncp":
        cell = head.cell
        return torch.cat([cell.sensory_sparsity_mask, cell.sparsity_mask]).detach().numpy().astype(int)
    blocks = []
    for layer in head.cfc.layers:
        # The ff1 block's input columns: the synapses from the previous layer (or the sensory inputs).
        blocks.append(layer.mask[: layer.units, : layer.in_features].detach().numpy().astype(int).ravel())
    return np.concatenate(blocks)


def circuit_of(policy: Policy) -> Circuit:
    """The neuron groups of `policy`'s head (layout in the module docstring) and its wiring where it has one."""
    model = policy.config.model
    if model in NCP_MODELS:
        wiring = policy_wiring(policy)
        groups, offset = [], 0
        for index, name in enumerate(LAYER_NAMES):
            ids = np.asarray(wiring.get_neurons_of_layer(index), int)
            columns = ids if model == "ltc-ncp" else np.arange(offset, offset + len(ids))
            groups.append(NeuronGroup(name, columns, ids))
            offset += len(ids)
        return Circuit(model, tuple(groups), wiring)
    if policy.hidden_names:
        names, sizes = policy.hidden_names, policy.head.hidden_sizes()
    else:
        names = tuple(f"tanh {index + 1}" for index in range(len(_tanh_layers(policy))))
        sizes = tuple(layer.out_features for layer in _tanh_inputs(policy))
    offsets = np.cumsum((0, *sizes))
    groups = tuple(NeuronGroup(name, np.arange(offsets[i], offsets[i + 1]), np.arange(size))
                   for i, (name, size) in enumerate(zip(names, sizes)))
    return Circuit(model, groups, None)


def _tanh_layers(policy: Policy) -> list[torch.nn.Module]:
    """The memoryless MLP head's tanh activations, whose outputs are its hidden units."""
    return [module for module in policy.head.modules() if isinstance(module, torch.nn.Tanh)]


def _tanh_inputs(policy: Policy) -> list[torch.nn.Linear]:
    """The Linear layer in front of each tanh of the MLP head (their widths are the groups' sizes)."""
    modules = list(policy.head.net)
    return [modules[i - 1] for i, module in enumerate(modules) if isinstance(module, torch.nn.Tanh)]


def mlp_activity_hooks(policy: Policy, sink: list[torch.Tensor]) -> list[torch.utils.hooks.RemovableHandle]:
    """Forward hooks that append each tanh layer's output to `sink` (an MLP's activity, which no hidden state holds);
    remove the returned handles when done."""
    return [layer.register_forward_hook(lambda _module, _inputs, output: sink.append(output.detach()))
            for layer in _tanh_layers(policy)]


@contextmanager
def silenced(policy: Policy, circuit: Circuit, neurons: Iterable[int]) -> Iterator[None]:
    """While the body runs, the given non-motor neurons (wiring ids) of NCP policy `policy` are silent: every synapse
    leaving them is cut, so nothing downstream reads them. The synapse masks are restored on exit.

    In a CfC layer a neuron's state enters every update linearly (gates = bias + W [input, state]), so cutting its
    columns is exactly clamping its state to 0 at every step, in the same step's next layer as in the following
    steps. In an LTC a zero potential still drives its synapses (sigmoid(0 - mu) > 0), so a clamped neuron would not be
    silent: there the synapses themselves are removed. ValueError for a head without a wiring, an unknown id or a motor
    neuron (a motor neuron is an action channel, not a hidden neuron)."""
    if circuit.wiring is None:
        raise ValueError(f"a {circuit.model} head has no wired neurons to silence")
    motor = set(circuit.group("motor").ids.tolist())
    masks = ([policy.head.cell.sparsity_mask] if circuit.model == "ltc-ncp"
             else [layer.mask for layer in policy.head.cfc.layers])
    saved = [mask.detach().clone() for mask in masks]
    try:
        with torch.no_grad():
            for neuron in neurons:
                if neuron in motor or not 0 <= neuron < circuit.wiring.units:
                    raise ValueError(f"neuron {neuron} is not an inter or command neuron of this head")
                if circuit.model == "ltc-ncp":
                    masks[0][neuron, :] = 0.0  # rows are source neurons
                    continue
                index = next(i for i, group in enumerate(circuit.groups) if neuron in group.ids)
                local = int(np.flatnonzero(circuit.groups[index].ids == neuron)[0])
                layers = policy.head.cfc.layers
                masks[index][:, layers[index].in_features + local] = 0.0  # its own layer's recurrent read
                masks[index + 1][:, local] = 0.0  # the next layer's input read
        yield
    finally:
        with torch.no_grad():
            for mask, original in zip(masks, saved):
                mask.copy_(original)
