"""The evaluation's figures, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import counted
from navigator.evaluation.distance import bin_edges, distance_bins
from navigator.evaluation.results import EvalResults
from navigator.evaluation.sweeps import SweepCurve
from navigator.figures import pyplot, save_png

ENDING_COLOURS = {"success": "tab:green", "collision": "tab:red", "timeout": "tab:orange"}  # others: grey


def plot_success(results: EvalResults, path: Path) -> None:
    """Success rate per suite (groups) and pilot (bars), with Wilson 95% intervals as error bars."""
    plt = pyplot()
    suites, pilots = results.settings.suites, results.settings.pilots
    width = 0.8 / len(pilots)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.2 * len(suites) + 2), 3.6), layout="constrained")
    for j, pilot in enumerate(pilots):
        summaries = [results.summary(suite, pilot) for suite in suites]
        rates = np.array([s.success_rate for s in summaries])
        errors = np.array([[s.success_rate - s.success_interval[0] for s in summaries],
                           [s.success_interval[1] - s.success_rate for s in summaries]])
        axes.bar(np.arange(len(suites)) + (j - (len(pilots) - 1) / 2) * width, rates, width, yerr=errors,
                 capsize=3, label=_label(pilot))
    # Composed suites (autumn+distractors+wind) are long: slanted, their labels do not run into each other.
    slanted = max(map(len, suites)) > 10
    axes.set_xticks(np.arange(len(suites)), suites, rotation=20 if slanted else 0, ha="right" if slanted else "center")
    axes.set_ylim(0, 1.05)
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_ylabel("success rate")
    per_bar = counted(results.settings.episodes, "episode")
    axes.set_title(f"{results.settings.task}: {per_bar} per bar, 95% Wilson intervals", fontsize="medium")
    _pilot_legend(figure, axes, len(pilots))
    save_png(figure, path)
    plt.close(figure)


def plot_trajectories(results: EvalResults, suite: str, path: Path) -> None:
    """Every episode's path seen from above in `suite`, one panel per pilot, coloured by its ending."""
    plt = pyplot()
    pilots = results.settings.pilots
    figure, axes = plt.subplots(1, len(pilots), figsize=(4.2 * len(pilots), 4.2), squeeze=False, sharex=True,
                                sharey=True)
    for panel, pilot in zip(axes[0], pilots):
        for record in (r for r in results.episodes if (r.suite, r.pilot) == (suite, pilot)):
            xy = np.asarray(record.path_xy)
            colour = ENDING_COLOURS.get(record.ending, "tab:gray")
            panel.plot(xy[:, 0], xy[:, 1], color=colour, linewidth=1, alpha=0.8)
            panel.plot(*record.start[:2], "o", color="black", markersize=3)
            panel.plot(*record.target[:2], "*", color=colour, markersize=9)
        panel.set_title(f"{_label(pilot)} in {suite}", fontsize="medium")
        panel.set_xlabel("x (m)")
        panel.set_aspect("equal", adjustable="box")
    axes[0][0].set_ylabel("y (m)")
    handles = [plt.Line2D([], [], color=c, label=name) for name, c in ENDING_COLOURS.items()]
    handles.append(plt.Line2D([], [], color="tab:gray", label="other ending"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize="small")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    save_png(figure, path)
    plt.close(figure)


def plot_sweep(curve: SweepCurve, path: Path) -> None:
    """Success rate against a sweep's level, one line per pilot, with Wilson 95% intervals as error bars (levels
    evenly spaced, in the order flown: they need not be monotone in value, e.g. falling exposure)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.0, 3.6))
    positions = np.arange(len(curve.levels))
    for line in curve.lines:
        rates = np.array(line.success_rates)
        errors = np.array([[rate - low for rate, (low, _) in zip(rates, line.success_intervals)],
                           [high - rate for rate, (_, high) in zip(rates, line.success_intervals)]])
        axes.errorbar(positions, rates, yerr=errors, marker="o", capsize=3, label=_label(line.pilot))
    axes.set_xticks(positions, [f"{level:g}" for level in curve.levels])
    axes.set_xlabel(curve.unit)
    axes.set_ylim(-0.02, 1.2)
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_ylabel("success rate")
    axes.set_title(f"{curve.kind} on {curve.base}: {curve.episodes} episodes per point (the same worlds), 95% "
                   f"Wilson intervals", fontsize="small")
    axes.legend(fontsize="small", loc="upper center", ncol=len(curve.lines), frameon=False)
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)


def plot_distance(results: EvalResults, path: Path) -> None:
    """Success rate against the straight start-to-target distance, one panel per named suite, one line per pilot
    through the centres of the distance bins, with Wilson 95% intervals."""
    plt = pyplot()
    suites, pilots = results.settings.suites, results.settings.pilots
    figure, axes = plt.subplots(1, len(suites), figsize=(3.6 * len(suites) + 0.6, 3.6), squeeze=False,
                                sharey=True, layout="constrained")
    for panel, suite in zip(axes[0], suites):
        records = [r for r in results.episodes if r.suite == suite]
        edges = bin_edges([r.straight_distance for r in records], results.settings.episodes)
        for pilot in pilots:
            bins = [b for b in distance_bins([r for r in records if r.pilot == pilot], edges) if b.episodes]
            centres = np.array([(b.low + b.high) / 2 for b in bins])
            rates = np.array([b.success_rate for b in bins])
            errors = np.array([[rate - b.success_interval[0] for rate, b in zip(rates, bins)],
                               [b.success_interval[1] - rate for rate, b in zip(rates, bins)]]).clip(0.0)  # rounding
            panel.errorbar(centres, rates, yerr=errors, marker="o", capsize=3, label=_label(pilot))
        panel.set_xticks(edges, [f"{edge:g}" for edge in edges], fontsize="small")
        panel.set_xlabel("start distance to target (m)")
        panel.set_title(suite, fontsize="medium")
        panel.grid(axis="x", alpha=0.3)
    axes[0][0].set_ylim(-0.02, 1.05)
    axes[0][0].set_yticks(np.linspace(0, 1, 6))
    axes[0][0].set_ylabel("success rate")
    _pilot_legend(figure, axes[0][0], len(pilots))
    save_png(figure, path)
    plt.close(figure)


def _pilot_legend(figure: Any, axes: Any, pilots: int) -> None:
    """One legend entry per pilot, below the figure in rows of two: checkpoint names are long, and a row of several
    above the data would be wider than the figure."""
    figure.legend(*axes.get_legend_handles_labels(), fontsize="small", loc="outside lower center",
                  ncol=min(pilots, 2), frameon=False)


def _label(pilot: str) -> str:
    """A checkpoint path shortened to its last two parts (runs/NAME/best.pt -> NAME/best.pt)."""
    return "/".join(Path(pilot).parts[-2:])
