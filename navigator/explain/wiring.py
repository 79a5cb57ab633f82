"""The NCP head's wiring diagram, drawn with matplotlib from ncps's wiring: sensory inputs, inter, command and motor
neurons in four columns, every synapse one line coloured by its polarity (green excitatory, red inhibitory).

ncps's own `Wiring.draw_graph` needs networkx and lays neurons out in shells, which hides the layers; the layered
layout here reads left to right as the signal flows. Recurrent command synapses are drawn as arcs right of their
column.

Polarity is the wiring's. An LTC starts its reversal potentials from it; a CfC uses only which synapses exist (its
masks are |adjacency|, as in ncps) and learns each synapse's sign in its weights. A CfC's masks also cover only its
ff1/ff2 gates: its time gates read every neuron of the previous layer (ncps's CfCCell does the same), so in a CfC
head a neuron reaches the next layer's neurons it has no synapse to through their time constants. The caption says
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ncps.wirings import Wiring

from navigator.explain.circuit import LAYER_NAMES
from navigator.explain.traces import ACTION_NAMES
from navigator.figures import pyplot, save_png
from sim_envs.tasks.base import STATE_FIELDS

POLARITY_COLOURS = {1: "tab:green", -1: "tab:red"}  # excitatory, inhibitory
NEURON_COLOURS = {"sensory": "tab:olive", "inter": "tab:blue", "command": "tab:cyan", "motor": "tab:orange"}


@dataclass(frozen=True)
class Synapse:
    """One synapse: source and destination node names ("sensory 3", "neuron 17") and polarity (+1 or -1)."""

    source: str
    target: str
    polarity: int


def synapses(wiring: Wiring) -> list[Synapse]:
    """Every synapse of a built wiring, sensory ones first, each once."""
    found = [Synapse(f"sensory {s}", f"neuron {d}", int(wiring.sensory_adjacency_matrix[s, d]))
             for s, d in zip(*np.nonzero(wiring.sensory_adjacency_matrix))]
    found += [Synapse(f"neuron {s}", f"neuron {d}", int(wiring.adjacency_matrix[s, d]))
              for s, d in zip(*np.nonzero(wiring.adjacency_matrix))]
    return found


def node_positions(wiring: Wiring) -> dict[str, tuple[float, float]]:
    """Node name -> (x, y): column 0 the sensory inputs, then one column per layer; each column spread over [0, 1]."""
    columns = [[f"sensory {i}" for i in range(wiring.input_dim)]]
    columns += [[f"neuron {i}" for i in wiring.get_neurons_of_layer(layer)] for layer in range(wiring.num_layers)]
    positions = {}
    for x, names in enumerate(columns):
        ys = np.linspace(1.0, 0.0, len(names)) if len(names) > 1 else [0.5]
        positions.update({name: (float(x), float(y)) for name, y in zip(names, ys)})
    return positions


def _sensory_label(index: int, features: int) -> str:
    """The policy's head inputs are the CNN features, then the normalised state (policies/policy.py)."""
    return f"f{index}" if index < features else STATE_FIELDS[index - features]


def plot_wiring(wiring: Wiring, path: Path, title: str, learned_sign: bool) -> dict[str, int]:
    """Draw `wiring` (built) into PNG `path` (`draw_wiring`); returns the counts drawn."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(10, 8.5))
    counts = draw_wiring(axis, wiring, title, learned_sign)
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)
    return counts


def draw_wiring(axis, wiring: Wiring, title: str, learned_sign: bool) -> dict[str, int]:
    """Draw `wiring` (built) on matplotlib `axis`: one node per neuron and sensory input, one line (or arc) per synapse
    coloured by polarity. `learned_sign`: the head learns synapse signs in its weights (CfC), said in the caption.
    Returns the counts drawn: neurons, sensory inputs, excitatory and inhibitory synapses."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import FancyArrowPatch

    positions = node_positions(wiring)
    drawn = synapses(wiring)
    for polarity, colour in POLARITY_COLOURS.items():
        straight = [(positions[s.source], positions[s.target]) for s in drawn
                    if s.polarity == polarity and positions[s.source][0] != positions[s.target][0]]
        axis.add_collection(LineCollection(straight, colors=colour, linewidths=0.5, alpha=0.45, zorder=1))
    for s in drawn:
        if positions[s.source][0] == positions[s.target][0]:  # recurrent, within a column: an arc to its right
            axis.add_patch(FancyArrowPatch(positions[s.source], positions[s.target], connectionstyle="arc3,rad=-0.3",
                                           arrowstyle="-|>", mutation_scale=6, color=POLARITY_COLOURS[s.polarity],
                                           lw=0.7, alpha=0.7, zorder=1))
    features = wiring.input_dim - len(STATE_FIELDS)
    names = ("sensory", *LAYER_NAMES[: wiring.num_layers])
    for column, kind in enumerate(names):
        nodes = [(name, xy) for name, xy in positions.items() if xy[0] == column]
        xs, ys = zip(*(xy for _, xy in nodes))
        axis.scatter(xs, ys, s=22 if kind == "sensory" else 60, color=NEURON_COLOURS[kind], edgecolors="black",
                     linewidths=0.4, zorder=2, label=f"{kind} ({len(nodes)})")
        for name, (x, y) in nodes:
            index = int(name.split()[1])
            label = (_sensory_label(index, features) if kind == "sensory"
                     else ACTION_NAMES[index] if kind == "motor" and index < len(ACTION_NAMES) else str(index))
            axis.annotate(label, (x, y), xytext=(-5 if kind == "sensory" else 5, 0), textcoords="offset points",
                          fontsize=5 if kind == "sensory" else 6, va="center",
                          ha="right" if kind == "sensory" else "left")
    counts = {"neurons": wiring.units, "sensory": wiring.input_dim,
              "excitatory": sum(s.polarity > 0 for s in drawn), "inhibitory": sum(s.polarity < 0 for s in drawn)}
    axis.plot([], [], color=POLARITY_COLOURS[1], label=f"excitatory ({counts['excitatory']})")
    axis.plot([], [], color=POLARITY_COLOURS[-1], label=f"inhibitory ({counts['inhibitory']})")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=6, fontsize=8, frameon=False)
    axis.set_xlim(-0.4, len(names) - 0.4)
    axis.set_ylim(-0.04, 1.04)
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks([])
    for side in ("left", "right", "top"):
        axis.spines[side].set_visible(False)
    note = ("polarity as ncps's wiring assigns it; a CfC learns each synapse's sign, and its time gates read the "
            "whole previous layer (as in ncps)" if learned_sign
            else "polarity as ncps's wiring assigns it (the LTC's initial reversal potentials)")
    axis.set_title(f"{title}\n{note}", fontsize=9)
    return counts
