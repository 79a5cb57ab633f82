"""Ablation of an NCP head's command neurons: silence one (`circuit.silenced`) and measure what changes.

(a) Open loop: the episode's recorded inputs replayed through the silenced policy; the mean |Δa| per action channel
    against the intact policy on the same inputs (normalised action units, [-1, 1] full scale).
(b) Closed loop: the silenced policy flies the same worlds (seeds) as the intact one; success with Wilson 95%
    intervals (navigator.evaluation.stats), and the paired change in success rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.evaluation.stats import wilson_interval
from navigator.explain.circuit import Circuit, silenced
from navigator.explain.traces import ACTION_COLOURS, ACTION_NAMES, replay
from navigator.figures import pyplot, save_png
from navigator.rollout import run_episode


@dataclass(frozen=True)
class ClosedLoop:
    """Successes of `episodes` flights on seeds `seeds`, in order; `endings` one per seed."""

    seeds: tuple[int, ...]
    endings: tuple[str, ...]
    successes: int

    @property
    def episodes(self) -> int:
        return len(self.seeds)

    def interval(self) -> tuple[float, float]:
        """Wilson 95% interval of the success rate."""
        return wilson_interval(self.successes, self.episodes)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        return {**asdict(self), "episodes": self.episodes, "success_rate": round(self.successes / self.episodes, 6),
                "wilson_95": [round(low, 6), round(high, 6)]}


@dataclass(frozen=True)
class NeuronAblation:
    """Neuron `neuron` (wiring id) silenced: mean |Δa| per channel (4,) open loop, and its closed-loop flights
    (None when none were flown)."""

    neuron: int
    action_change: tuple[float, ...]
    closed_loop: ClosedLoop | None


def action_changes(policy, circuit: Circuit, frames: np.ndarray, states: np.ndarray, dts: np.ndarray,
                   neurons: Sequence[int]) -> np.ndarray:
    """(len(neurons), 4): mean |Δa| per channel over the episode's inputs (frames (T, h, w, 3) uint8 preprocessed,
    states (T, 7), dts (T,) s) when each neuron alone is silenced, against the intact policy on the same inputs."""
    intact = replay(policy, frames, states, dts).actions
    changes = []
    for neuron in neurons:
        with silenced(policy, circuit, [neuron]):
            changes.append(np.abs(replay(policy, frames, states, dts).actions - intact).mean(axis=0))
    return np.asarray(changes, np.float64).reshape(len(neurons), intact.shape[1])


def fly_closed_loop(env, pilot, seeds: Sequence[int], advance: Callable[[bool], None]) -> ClosedLoop:
    """Fly `pilot` (as `navigator fly` flies it) once per seed; `advance(success)` after each flight."""
    endings, successes = [], 0
    for seed in seeds:
        result = run_episode(env, pilot, seed)
        endings.append(result.ending)
        successes += result.success
        advance(result.success)
    return ClosedLoop(tuple(seeds), tuple(endings), successes)


def closed_loop_ablation(env, pilot, circuit: Circuit, seeds: Sequence[int], neurons: Sequence[int],
                         advance: Callable[[bool], None]) -> tuple[ClosedLoop, list[ClosedLoop]]:
    """The intact checkpoint pilot (`pilot.policy` is its torch policy), then the pilot with each neuron silenced in
    turn, each on the same `seeds`: (intact, one per neuron)."""
    intact = fly_closed_loop(env, pilot, seeds, advance)
    ablated = []
    for neuron in neurons:
        with silenced(pilot.policy, circuit, [neuron]):
            ablated.append(fly_closed_loop(env, pilot, seeds, advance))
    return intact, ablated


def ablation_document(neurons: Sequence[int], changes: np.ndarray, intact: ClosedLoop | None,
                      ablated: Sequence[ClosedLoop] | None, steps: int) -> dict[str, Any]:
    """What ablation.json holds: the open-loop steps, the intact pilot's closed loop and one entry per neuron."""
    entries = []
    for index, neuron in enumerate(neurons):
        entry: dict[str, Any] = {"neuron": int(neuron), "mean_abs_action_change": {
            name: round(float(value), 6) for name, value in zip(ACTION_NAMES, changes[index])}}
        if intact is not None and ablated is not None:
            flown = ablated[index]
            entry["closed_loop"] = {**flown.to_dict(), "success_change": round(
                (flown.successes - intact.successes) / intact.episodes, 6)}
        entries.append(entry)
    return {"open_loop_steps": steps, "action_units": "normalised, [-1, 1] full scale",
            "silencing": "every synapse leaving the neuron cut; in a CfC that is its state clamped to 0 at every step",
            "intact": intact.to_dict() if intact is not None else None, "neurons": entries}


def ablation_markdown(document: dict[str, Any], title: str) -> str:
    """ablation.md: one table row per silenced command neuron."""
    intact = document["intact"]
    lines = [f"# Command-neuron ablation: {title}", "",
             f"Each command neuron silenced alone: {document['silencing']}.", "",
             (f"- **Δ action**: mean |Δa| per channel over the explained episode's {document['open_loop_steps']} "
              f"steps, open loop (the same inputs), in normalised action units (full scale 1).")]
    if intact is not None:
        low, high = intact["wilson_95"]
        lines.append(f"- **closed loop**: success on the same {intact['episodes']} worlds (seeds "
                     f"{intact['seeds'][0]}..{intact['seeds'][-1]}), Wilson 95% interval; intact policy "
                     f"{intact['successes']}/{intact['episodes']} [{low:.2f}, {high:.2f}].")
    else:
        lines.append("- **closed loop**: not flown (--ablation-episodes 0).")
    header = ["neuron", *(f"Δ{name}" for name in ACTION_NAMES), "Δ mean"]
    if intact is not None:
        header += ["success", "95% interval", "Δ success"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in document["neurons"]:
        changes = list(entry["mean_abs_action_change"].values())
        row = [str(entry["neuron"]), *(f"{value:.4f}" for value in changes), f"{np.mean(changes):.4f}"]
        if "closed_loop" in entry:
            flown = entry["closed_loop"]
            row += [f"{flown['successes']}/{flown['episodes']}",
                    f"[{flown['wilson_95'][0]:.2f}, {flown['wilson_95'][1]:.2f}]", f"{flown['success_change']:+.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_ablation(document: dict[str, Any], path: Path, title: str) -> None:
    """Top: mean |Δa| per channel for each silenced neuron (stacked bars). Bottom (when flown): closed-loop success
    per neuron with Wilson 95% error bars, the intact policy's rate and interval as a line and band."""
    plt = pyplot()
    entries = document["neurons"]
    intact = document["intact"]
    labels = [str(entry["neuron"]) for entry in entries]
    x = np.arange(len(entries))
    rows = 2 if intact is not None else 1
    figure, axes = plt.subplots(rows, 1, sharex=True, figsize=(max(6.0, 0.32 * len(entries) + 2), 2.8 * rows + 0.6),
                                squeeze=False)
    axis = axes[0, 0]
    bottom = np.zeros(len(entries))
    for name, colour in zip(ACTION_NAMES, ACTION_COLOURS):
        values = np.array([entry["mean_abs_action_change"][name] for entry in entries])
        axis.bar(x, values, 0.8, bottom=bottom, color=colour, label=name)
        bottom += values
    axis.set_ylabel("mean |Δa| (open loop)")
    axis.legend(ncol=4, fontsize=7, loc="upper right")
    axis.set_title(title, fontsize=10)
    if intact is not None:
        axis = axes[1, 0]
        rates = np.array([entry["closed_loop"]["success_rate"] for entry in entries])
        intervals = np.array([entry["closed_loop"]["wilson_95"] for entry in entries])
        axis.errorbar(x, rates, yerr=[rates - intervals[:, 0], intervals[:, 1] - rates], fmt="o", color="black",
                      ms=4, capsize=2, label="silenced")
        axis.axhline(intact["success_rate"], color="tab:green", lw=1, label="intact")
        axis.axhspan(*intact["wilson_95"], color="tab:green", alpha=0.15)
        axis.set_ylim(-0.05, 1.05)
        axis.set_ylabel(f"success ({intact['episodes']} worlds)")
        axis.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xticks(x, labels, fontsize=7)
    axes[-1, 0].set_xlabel("silenced command neuron (wiring id)")
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)
