"""The comparison document (comparison.json) from the evaluated runs' results: per model, per training seed and per
suite the successes, trials and every world's outcome; per model and suite the mean success over the training seeds
evaluated so far with the hierarchical bootstrap 95% interval (`navigator.evaluation.stats.seed_bootstrap`, the
interval navigator eval gives a group of training seeds); where a baseline's mean is above the reference model's;
and which runs are still missing (an unfinished comparison is reported as such).

Everything the table and the figure show is in the document, so that both can be drawn again from comparison.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from navigator.evaluation.episodes import EpisodeRecord
    from navigator.evaluation.results import EvalResults

FORMAT = "liquid-navigator/comparison"
VERSION = 2  # 2: missing_runs; models averaged over the seeds evaluated so far


@dataclass(frozen=True)
class RunInfo:
    """One trained run: its model, training seed, checkpoint (the pilot spec it was evaluated as), parameter counts
    ({"cnn", "head", "total"}: trainable parameters) and best validation loss."""

    model: str
    seed: int
    pilot: str
    parameters: dict[str, int]
    val_loss: float


def build_comparison(results: EvalResults, runs: list[RunInfo], reference: str, recipe: dict[str, Any],
                     missing: list[str] = ()) -> dict[str, Any]:
    """The document for `runs` (each a pilot of `results`; models in their order of first appearance, each model's
    runs in training seed order), over the evaluation's named suites; `recipe` is the training recipe the runs
    share, recorded as it is; `missing` names the comparison's runs not evaluated yet."""
    from navigator.evaluation.stats import seed_bootstrap

    settings = results.settings
    seeds = list(settings.seeds)
    outcome = {(r.suite, r.pilot, r.seed): r for r in results.episodes}
    models = list(dict.fromkeys(run.model for run in runs))
    entries = []
    for model in models:
        members = sorted((run for run in runs if run.model == model), key=lambda run: run.seed)
        suites = {}
        for suite in settings.suites:
            mean, low, high = seed_bootstrap([[outcome[suite, run.pilot, seed].success for seed in seeds]
                                              for run in members])
            suites[suite] = {"mean": round(mean, 6), "low": round(low, 6), "high": round(high, 6)}
        entries.append({
            "model": model,
            "parameters": members[0].parameters,
            "suites": suites,
            "runs": [{"seed": run.seed, "checkpoint": run.pilot, "val_loss": run.val_loss,
                      "suites": {suite: _outcomes([outcome[suite, run.pilot, seed] for seed in seeds])
                                 for suite in settings.suites}} for run in members],
        })
    return {"format": FORMAT, "version": VERSION, "task": settings.task, "suites": list(settings.suites),
            "episodes": settings.episodes, "world_seeds": seeds,
            "training_seeds": sorted({run.seed for run in runs}),
            "interval": "hierarchical bootstrap 95% interval (training seeds resampled, then worlds, the same for "
                        "every seed; where every outcome is alike, the Wilson interval of them all)",
            "reference": reference, "recipe": recipe, "models": entries, "missing_runs": list(missing),
            "above_reference": above_reference(entries, reference, list(settings.suites))}


def _outcomes(records: list[EpisodeRecord]) -> dict[str, Any]:
    """One run in one suite: successes of trials, and each world's success and ending, in world seed order."""
    return {"successes": sum(r.success for r in records), "trials": len(records),
            "outcomes": [r.success for r in records], "endings": [r.ending for r in records]}


def above_reference(models: list[dict[str, Any]], reference: str, suites: list[str]) -> list[dict[str, Any]]:
    """Every (baseline, suite) where the baseline's mean success is higher than the reference's, and whether their
    intervals overlap (if they do, the difference is within what training seeds and worlds vary by); none while
    the reference has no evaluated run."""
    ref = next((entry["suites"] for entry in models if entry["model"] == reference), None)
    if ref is None:
        return []
    found = []
    for suite in suites:
        for entry in models:
            cell = entry["suites"][suite]
            if entry["model"] != reference and cell["mean"] > ref[suite]["mean"]:
                found.append({"model": entry["model"], "suite": suite, "mean": cell["mean"],
                              "reference_mean": ref[suite]["mean"],
                              "overlap": cell["low"] <= ref[suite]["high"] and ref[suite]["low"] <= cell["high"]})
    return found
