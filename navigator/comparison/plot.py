"""comparison.png: per suite, one bar per model at its mean success over training seeds, with the 95% interval as
whiskers and each training seed's own success rate as a dot; drawn with matplotlib's Agg backend from the
comparison document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.figures import pyplot, save_png


def plot_comparison(document: dict[str, Any], path: Path) -> None:
    """Draw comparison.json's document into the png at `path` (written atomically)."""
    plt = pyplot()

    suites, models = document["suites"], document["models"]
    width = 0.8 / len(models)
    figure, axes = plt.subplots(figsize=(max(7.0, 1.4 * len(suites) + 2), 4.2))
    positions = np.arange(len(suites))
    for j, entry in enumerate(models):
        cells = [entry["suites"][suite] for suite in suites]
        means = np.array([c["mean"] for c in cells])
        errors = np.array([[c["mean"] - c["low"] for c in cells], [c["high"] - c["mean"] for c in cells]])
        x = positions + (j - (len(models) - 1) / 2) * width
        axes.bar(x, means, width, yerr=errors, capsize=2, label=entry["model"], alpha=0.85)
        for run in entry["runs"]:
            rates = [run["suites"][suite]["successes"] / run["suites"][suite]["trials"] for suite in suites]
            axes.plot(x, rates, linestyle="none", marker=".", markersize=4, color="black", alpha=0.6)
    axes.set_xticks(positions, suites)
    axes.set_ylim(0, 1.2)  # headroom for the legend above the bars
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_ylabel("success rate")
    unfinished = f" (unfinished: {len(document['missing_runs'])} runs missing)" if document["missing_runs"] else ""
    axes.set_title(f"{document['task']}: mean success over each model's training seeds (dots: each seed){unfinished}"
                   f"\n{document['episodes']} worlds per suite; whiskers: 95% intervals", fontsize="medium")
    axes.legend(fontsize="small", loc="upper center", ncol=min(len(models), 6), frameon=False)
    figure.tight_layout()
    save_png(figure, path, dpi=120)
