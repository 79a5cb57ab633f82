"""The learning-curve document (curve.json) from the per-scenery evaluations, and its markdown (curve.md).

Per scenery, number of demonstrations and strategy: the mean success over the training seeds in the new scenery and
in each old suite, with the hierarchical bootstrap 95% interval of the evaluation's own seed group
(`navigator.evaluation.groups`, not computed again); forgetting on each old suite, the starting policy's success
there minus the adaptations' mean, in points, with the interval the bootstrap gives it (the starting policy's
success on the same worlds is taken as fixed); every run's outcome in every world; and, for the issue's goal (with
20 new demonstrations, at least 90% in the new scenery and at most 2 points lost on summer), which strategies meet
it. With DAgger rounds, N counts the expert's demonstrations only: the document records the rounds' settings, and
curve.md names the roll-outs beside every N, so that nobody reads N as all the data an adaptation trained on.
Everything curve.md and curve.png show is in the document, so both can be drawn again from curve.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from navigator.comparison.table import cell, percent
from navigator.errors import counted

if TYPE_CHECKING:
    from navigator.adapt.curve_config import CurveConfig
    from navigator.evaluation.results import EvalResults

FORMAT = "liquid-navigator/adapt-curve"
VERSION = 1
# The goal: with GOAL_DEMONSTRATIONS new demonstrations, at least GOAL_NEW success in the new scenery and at
# most GOAL_FORGETTING (a fraction: 2 points) lost on GOAL_SUITE.
GOAL_DEMONSTRATIONS, GOAL_NEW, GOAL_FORGETTING, GOAL_SUITE = 20, 0.90, 0.02, "summer"


@dataclass(frozen=True)
class AdaptedRun:
    """One finished adaptation: where it adapted to, from how many demonstrations, how, with which training seed;
    its best.pt (the pilot spec it was evaluated as) and best validation loss."""

    scenery: str
    demonstrations: int
    strategy: str
    seed: int
    pilot: str
    val_loss: float


def _successes(records: list) -> dict[str, Any]:
    return {"successes": sum(r.success for r in records), "trials": len(records),
            "outcomes": [r.success for r in records]}


def build_curve(config: CurveConfig, results: dict[str, EvalResults], runs: list[AdaptedRun], start: str,
                start_sha256: str) -> dict[str, Any]:
    """The document of `runs` (in the config's order), from each scenery's evaluation `results` (whose first pilot
    is the starting policy `start`). RuntimeError when an evaluation did not group the training seeds of an
    adaptation (they would not be one recipe apart from the seed)."""
    old = list(config.evaluation.suites)
    sceneries: dict[str, dict[str, Any]] = {}  # the starting policy's successes per scenery's evaluation and suite
    cells = []
    for scenery, found in results.items():
        seeds = list(found.settings.seeds)
        by_key = {(r.suite, r.pilot, r.seed): r for r in found.episodes}
        suites = [scenery, *old]
        baseline = {suite: _successes([by_key[suite, start, seed] for seed in seeds]) for suite in suites}
        sceneries[scenery] = baseline
        for count in config.demonstrations:
            for strategy in config.strategies:
                members = [run for run in runs if (run.scenery, run.demonstrations, run.strategy) == (
                    scenery, count, strategy)]
                group = next((g for g in found.groups if g.pilots == tuple(run.pilot for run in members)), None)
                if group is None:
                    raise RuntimeError(f"the evaluation of {scenery} did not group the training seeds of {strategy} "
                                       f"with {count} demonstrations ({', '.join(run.pilot for run in members)})")
                rows = {row.suite: row for row in group.suites}
                success = {suite: {"mean": rows[suite].success_rate, "low": rows[suite].success_interval[0],
                                   "high": rows[suite].success_interval[1]} for suite in suites}
                forgetting = {}
                for suite in old:
                    before = baseline[suite]["successes"] / baseline[suite]["trials"]
                    forgetting[suite] = {"mean": round(before - success[suite]["mean"], 6),
                                         "low": round(before - success[suite]["high"], 6),
                                         "high": round(before - success[suite]["low"], 6)}
                cells.append({
                    "scenery": scenery, "demonstrations": count, "strategy": strategy, "success": success,
                    "forgetting": forgetting,
                    "runs": [{"seed": run.seed, "checkpoint": run.pilot, "val_loss": run.val_loss,
                              "suites": {suite: _successes([by_key[suite, run.pilot, seed] for seed in seeds])
                                         for suite in suites}} for run in members]})
    first = next(iter(results.values())).settings
    from navigator.training.config import DAGGER_SEED_STRIDE

    adaptation = config.adaptation(config.sceneries[0], 1, config.strategies[0], config.seeds[0])
    dagger = adaptation.dagger
    return {"format": FORMAT, "version": VERSION, "task": config.task, "pilot": start, "start_sha256": start_sha256,
            "sceneries": list(config.sceneries), "old_suites": old, "demonstrations": list(config.demonstrations),
            "strategies": list(config.strategies), "training_seeds": list(config.seeds),
            "dagger": {"rounds": dagger.rounds, "episodes": dagger.episodes, "epochs": dagger.epochs,
                       "first_seed": DAGGER_SEED_STRIDE},  # round r flies seeds first_seed * r on
            "weight_mix": adaptation.weight_mix,
            "demonstration_seeds": [config.new_seeds.start, config.new_seeds.stop - 1],
            "episodes": first.episodes, "world_seeds": list(first.seeds),
            "interval": "hierarchical bootstrap 95% interval (training seeds resampled, then worlds, the same for "
                        "every seed)",
            "forgetting_is": "the starting policy's success minus the adaptations' mean, on the same worlds "
                             "(positive: lost); its interval takes the starting policy's success as fixed",
            "start": sceneries, "cells": cells, "goal": goal(cells, old)}


def goal(cells: list[dict[str, Any]], old: list[str]) -> list[dict[str, Any]]:
    """Per scenery and strategy adapted with GOAL_DEMONSTRATIONS demonstrations (and GOAL_SUITE among the old
    suites): its mean success in the new scenery, its mean forgetting on GOAL_SUITE and whether both meet the goal."""
    if GOAL_SUITE not in old:
        return []
    return [{"scenery": c["scenery"], "strategy": c["strategy"], "new": c["success"][c["scenery"]]["mean"],
             "forgetting": c["forgetting"][GOAL_SUITE]["mean"],
             "met": c["success"][c["scenery"]]["mean"] >= GOAL_NEW and
             c["forgetting"][GOAL_SUITE]["mean"] <= GOAL_FORGETTING}
            for c in cells if c["demonstrations"] == GOAL_DEMONSTRATIONS]


def _points(value: float) -> str:
    """0.025 -> "+2" (points lost); -0.01 -> "-1"."""
    return f"{100 * value:+.0f}"


def _drop(entry: dict[str, Any]) -> str:
    """{"mean": 0.02, "low": -0.03, "high": 0.07} -> "+2 [-3, +7]"."""
    return f"{_points(entry['mean'])} [{_points(entry['low'])}, {_points(entry['high'])}]"


def _mix_line(mix: float) -> str:
    """What the weight mix makes of each adapted policy, as a sentence for the intro (empty at 1, curves made before
    it included)."""
    if mix == 1:
        return ""
    return (f" Each adapted policy keeps {mix:g} of its trained weight change: its weights are start + {mix:g} x "
            f"(trained - start), WiSE-FT's interpolation back to the starting policy.")


def _dagger_lines(dagger: dict[str, Any]) -> tuple[str, str]:
    """What the DAgger rounds add to each adaptation: (beside N in a column's title, a sentence for the intro); both
    empty without rounds."""
    if not dagger["rounds"]:
        return "", ""
    total = dagger["rounds"] * dagger["episodes"]
    rounds = f"{dagger['rounds']} DAgger round{'s' if dagger['rounds'] > 1 else ''}"
    return (f" + {total} roll-outs",
            f" After that training, {rounds} of {dagger['episodes']} roll-outs each: the adapted policy flies worlds "
            f"of the new scenery (world seeds {dagger['first_seed']} on), the expert labels every frame, and training "
            f"continues "
            f"{dagger['epochs']} epochs on the N demonstrations and all roll-outs so far. So N counts the expert's "
            f"demonstrations only; each adaptation also trained on {total} labelled roll-outs of its own.")


def render_curve(document: dict[str, Any]) -> str:
    """The markdown of curve.json's document."""
    counts, seeds, worlds = document["demonstrations"], document["training_seeds"], document["world_seeds"]
    beside, rollouts = _dagger_lines(document.get("dagger") or {"rounds": 0})  # curves made before DAgger: none
    intro = (f"Each adaptation starts from {document['pilot']} (sha256 {document['start_sha256'][:12]}) and trains on "
             f"the first N demonstrations of one dataset per new scenery (world seeds "
             f"{document['demonstration_seeds'][0]}–{document['demonstration_seeds'][1]}).{rollouts}"
             f"{_mix_line(document.get('weight_mix', 1.0))} Success: mean "
             f"over {len(seeds)} training seeds ({', '.join(map(str, seeds))}) and "
             f"{counted(document['episodes'], 'world')} per suite (world seeds {worlds[0]}–{worlds[-1]}, the same for "
             f"every policy), with its "
             f"{document['interval']}. Forgetting, in points: {document['forgetting_is']}.")
    lines = [f"# Adaptation learning curve: {document['task']}, from {document['pilot']}", "", intro, ""]
    for scenery in document["sceneries"]:
        start = document["start"][scenery]
        cells = [c for c in document["cells"] if c["scenery"] == scenery]
        header = "| strategy | " + " | ".join(f"N = {n}{beside}" for n in counts) + " |"
        rule = "|---|" + "---:|" * len(counts)
        lines += [f"## {scenery}", "", f"Success in {scenery} (the starting policy: {_rate(start[scenery])}):", "",
                  header, rule]
        for strategy in document["strategies"]:
            row = {c["demonstrations"]: c for c in cells if c["strategy"] == strategy}
            lines.append(f"| {strategy} | " + " | ".join(cell(row[n]["success"][scenery]) for n in counts) + " |")
        for suite in document["old_suites"]:
            title = (f"Forgetting on {suite}, points lost (the starting policy: {_rate(start[suite])}; success "
                     f"after adapting in brackets):")
            lines += ["", title, "", header, rule]
            for strategy in document["strategies"]:
                row = {c["demonstrations"]: c for c in cells if c["strategy"] == strategy}
                lines.append(f"| {strategy} | " + " | ".join(
                    f"{_drop(row[n]['forgetting'][suite])} ({percent(row[n]['success'][suite]['mean'])}%)"
                    for n in counts) + " |")
        lines.append("")
    lines += _goal_lines(document["goal"])
    return "\n".join(lines) + "\n"


def _rate(entry: dict[str, Any]) -> str:
    return f"{entry['successes']}/{entry['trials']} ({percent(entry['successes'] / entry['trials'])}%)"


def _goal_lines(found: list[dict[str, Any]]) -> list[str]:
    if not found:
        return [(f"The goal ({GOAL_DEMONSTRATIONS} demonstrations, {GOAL_SUITE} among the old suites) is not part "
                 f"of this curve."), ""]
    title = (f"## Goal: with {GOAL_DEMONSTRATIONS} new demonstrations, at least {percent(GOAL_NEW)}% in the new "
             f"scenery and at most {100 * GOAL_FORGETTING:.0f} points lost on {GOAL_SUITE}")
    lines = [title, ""]
    for entry in found:
        verdict = "met" if entry["met"] else "not met"
        lines.append(f"- {entry['scenery']}, {entry['strategy']}: {percent(entry['new'])}% in {entry['scenery']}, "
                     f"{_points(entry['forgetting'])} points on {GOAL_SUITE}: {verdict}.")
    return lines + [""]
