"""Neuron traces: the policy stepped open loop over one episode's inputs, every neuron of its head recorded per step,
drawn one row per neuron (grouped by layer) above the actions, with the flight's events on the shared time axis.

Open loop over the recorded inputs is the flight itself for a flown episode (the same frames, states and dt give the
same actions: the pipeline checks it), and for a dataset episode it is what the policy would have done on the frames
the expert flew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from navigator.dataset.atomic import atomic_output
from navigator.explain.circuit import Circuit, mlp_activity_hooks
from navigator.figures import pyplot, save_png
from policies.policy import Policy

ACTION_NAMES = ("vx", "vy", "vz", "yaw rate")
ACTION_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


@dataclass(frozen=True)
class Event:
    """Something that happened in the flight, at `time` seconds from its start: "start", "target 1 reached",
    the ending ("success", "collision", "timeout", ...)."""

    time: float
    label: str


@dataclass(frozen=True)
class Replay:
    """What the policy did over an episode's inputs: actions (T, 4) in [-1, 1] and the activity vector after each
    step (T, N), laid out as `navigator.explain.circuit` describes."""

    actions: np.ndarray
    activity: np.ndarray


def replay(policy: Policy, frames: np.ndarray, states: np.ndarray, dts: np.ndarray) -> Replay:
    """Step `policy` from its initial hidden state over frames (T, h, w, 3) uint8 (already cropped and resized to the
    policy's input), states (T, 7) float32 and dts (T,) seconds, one step at a time as in flight."""
    sink: list[torch.Tensor] = []
    hooks = [] if policy.hidden_names else mlp_activity_hooks(policy, sink)
    actions, activity = [], []
    try:
        with torch.inference_mode():
            hidden = policy.initial_hidden(1)
            for t in range(len(frames)):
                sink.clear()
                action, hidden = policy.step(torch.from_numpy(frames[t : t + 1]), torch.from_numpy(states[t : t + 1]),
                                             hidden, torch.from_numpy(dts[t : t + 1].astype(np.float32)))
                actions.append(action[0].numpy())
                activity.append(torch.cat(list(hidden) if hidden else sink, dim=1)[0].numpy())
    finally:
        for hook in hooks:
            hook.remove()
    return Replay(np.asarray(actions, np.float32), np.asarray(activity, np.float32))


@dataclass(frozen=True)
class Traces:
    """One row per neuron, one column per step: `rows` (N, T); `neuron_id` (N,) and `layer` (N,) name each row, in
    the circuit's group order; `time` (T,) seconds from the episode's start; `actions` (T, 4) the policy's."""

    rows: np.ndarray
    neuron_id: np.ndarray
    layer: np.ndarray
    time: np.ndarray
    actions: np.ndarray


def neuron_traces(result: Replay, circuit: Circuit, time: np.ndarray) -> Traces:
    """The replay's activity regrouped by layer (inter, command, motor for NCP heads), one row per neuron."""
    if result.activity.shape[1] != circuit.size:
        raise ValueError(f"activity has {result.activity.shape[1]} units per step, the circuit {circuit.size}")
    columns = np.concatenate([group.columns for group in circuit.groups])
    return Traces(rows=result.activity[:, columns].T.copy(),
                  neuron_id=np.concatenate([group.ids for group in circuit.groups]),
                  layer=np.concatenate([[group.name] * len(group.ids) for group in circuit.groups]).astype(str),
                  time=np.asarray(time, np.float64), actions=result.actions)


def write_traces_npz(traces: Traces, events: list[Event], path: Path) -> None:
    """The raw arrays, atomically: rows (N, T) as `activity`, `neuron_id`, `layer`, `time`, `actions` and the events
    (`event_time`, `event_label`). Loads with np.load(path) (no pickle)."""
    with atomic_output(path) as handle:
        np.savez_compressed(handle, activity=traces.rows, neuron_id=traces.neuron_id, layer=traces.layer,
                            time=traces.time, actions=traces.actions,
                            event_time=np.asarray([e.time for e in events], np.float64),
                            event_label=np.asarray([e.label for e in events], str))


def plot_traces(traces: Traces, events: list[Event], path: Path, title: str,
                recorded_actions: np.ndarray | None = None) -> None:
    """One heat-map panel per layer (rows: neurons labelled by id; colour: activity, symmetric around 0), then the
    four action channels, all on one time axis in seconds, events as vertical lines across every panel.
    `recorded_actions` (T, 4): what was flown when it was not this policy (a dataset's expert), drawn dashed."""
    plt = pyplot()
    layers = list(dict.fromkeys(traces.layer.tolist()))
    heights = [max(1.5, 0.09 * int((traces.layer == name).sum())) for name in layers] + [2.0]
    figure, axes = plt.subplots(len(heights), 1, sharex=True, figsize=(11, sum(heights) + 1.6),
                                gridspec_kw={"height_ratios": heights})
    step = float(np.median(np.diff(traces.time))) if len(traces.time) > 1 else 1.0 / 30.0
    extent_x = (traces.time[0] - step / 2, traces.time[-1] + step / 2)
    for axis, name in zip(axes, layers):
        selected = traces.layer == name
        rows, ids = traces.rows[selected], traces.neuron_id[selected]
        limit = float(np.abs(rows).max()) or 1.0
        image = axis.imshow(rows, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit,
                            extent=(*extent_x, len(ids) - 0.5, -0.5))
        every = max(1, len(ids) // 12)
        axis.set_yticks(range(0, len(ids), every), [str(i) for i in ids[::every]], fontsize=7)
        axis.set_ylabel(f"{name}\n({len(ids)})")
        figure.colorbar(image, ax=axis, pad=0.01, fraction=0.02)
    actions_axis = axes[-1]
    for channel, (label, colour) in enumerate(zip(ACTION_NAMES, ACTION_COLOURS)):
        actions_axis.plot(traces.time, traces.actions[:, channel], color=colour, lw=1.2, label=label)
        if recorded_actions is not None:
            actions_axis.plot(traces.time, recorded_actions[:, channel], color=colour, lw=0.8, ls="--")
    actions_axis.set_ylim(-1.05, 1.05)
    actions_axis.set_ylabel("action\n(normalised)")
    actions_axis.set_xlabel("time (s)")
    actions_axis.legend(loc="upper right", ncol=4, fontsize=7, title="dashed: recorded" if recorded_actions is not None
                        else None, title_fontsize=7)
    # The colour bars narrow the heat maps: give the action panel the same width so the time axes line up.
    figure.colorbar(image, ax=actions_axis, pad=0.01, fraction=0.02).ax.set_visible(False)
    for event in events:
        for axis in axes:
            axis.axvline(event.time, color="black", lw=0.8, ls=":")
        axes[0].annotate(event.label, (event.time, 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2),
                         textcoords="offset points", fontsize=7, rotation=30, ha="left", va="bottom")
    # The event labels stand above the first panel, slanted: keep room for them under the title.
    height = figure.get_figheight()
    figure.suptitle(title, fontsize=10, y=1 - 0.15 / height)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.6 / height))
    save_png(figure, path)
    plt.close(figure)
