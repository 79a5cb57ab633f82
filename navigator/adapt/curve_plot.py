"""curve.png: one row per new scenery; its first panel the success in that scenery, the others the success on each old
suite, against the number of new demonstrations: one line per strategy at its mean over training seeds with the 95%
interval as whiskers, and the starting policy's success as a dashed line (forgetting is the gap below it). Drawn with
matplotlib's Agg backend from curve.json's document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from navigator.errors import counted
from navigator.figures import pyplot, save_png


def plot_curve(document: dict[str, Any], path: Path) -> None:
    """Draw curve.json's document into the png at `path` (written atomically)."""
    plt = pyplot()

    sceneries, old, counts = document["sceneries"], document["old_suites"], document["demonstrations"]
    columns = 1 + len(old)
    figure, axes = plt.subplots(len(sceneries), columns, figsize=(4.2 * columns, 3.4 * len(sceneries)),
                                squeeze=False)
    for row, scenery in enumerate(sceneries):
        cells = [c for c in document["cells"] if c["scenery"] == scenery]
        start = document["start"][scenery]
        for column, suite in enumerate([scenery, *old]):
            ax = axes[row][column]
            for offset, strategy in enumerate(document["strategies"]):
                by_count = {c["demonstrations"]: c["success"][suite] for c in cells if c["strategy"] == strategy}
                means = [by_count[n]["mean"] for n in counts]
                errors = [[by_count[n]["mean"] - by_count[n]["low"] for n in counts],
                          [by_count[n]["high"] - by_count[n]["mean"] for n in counts]]
                # Strategies side by side at each count, so that their whiskers do not hide each other.
                shift = 1 + 0.03 * (offset - (len(document["strategies"]) - 1) / 2)
                ax.errorbar([n * shift for n in counts], means, yerr=errors, marker="o", markersize=4, capsize=2,
                            label=strategy)
            rate = start[suite]["successes"] / start[suite]["trials"]
            ax.axhline(rate, color="black", linestyle="--", linewidth=1, label="starting policy")
            ax.set_xscale("log")
            ax.set_xticks(counts, [str(n) for n in counts])
            ax.minorticks_off()
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("new demonstrations")
            ax.set_ylabel("success rate")
            ax.set_title(f"adapted to {scenery}: in {suite}" + (" (new)" if suite == scenery else " (old)"),
                         fontsize="medium")
    axes[0][0].legend(fontsize="small", loc="lower right")
    figure.suptitle(f"{document['task']}: mean of {len(document['training_seeds'])} training seeds, "
                    f"{counted(document['episodes'], 'world')} per suite; whiskers: 95% intervals", fontsize="medium")
    figure.tight_layout()
    save_png(figure, path, dpi=110)
