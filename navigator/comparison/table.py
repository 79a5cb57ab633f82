"""comparison.md: the comparison document as a markdown table (rows: models; columns: head parameters, the training
seeds evaluated, then each suite's mean success with its 95% interval, "62% [48–75]") and, in plain words, every
suite where a baseline's mean is higher than the reference model's, and whether their intervals overlap; an
unfinished comparison says so first, and which runs it still lacks."""

from __future__ import annotations

from typing import Any

from navigator.errors import counted


def percent(rate: float) -> str:
    """0.625 -> "62"; a rate in [0, 1] as a whole percentage (Python's rounding, half to even)."""
    return f"{100 * rate:.0f}"


def cell(entry: dict[str, Any]) -> str:
    """{"mean": 0.62, "low": 0.48, "high": 0.75} -> "62% [48–75]"."""
    return f"{percent(entry['mean'])}% [{percent(entry['low'])}–{percent(entry['high'])}]"


def render_table(document: dict[str, Any]) -> str:
    """The markdown of comparison.json's document (see navigator.comparison.summary)."""
    suites, worlds = document["suites"], document["world_seeds"]
    reference, missing = document["reference"], document["missing_runs"]
    intro = (f"Success rate per suite: each model's mean over its training seeds and "
             f"{counted(document['episodes'], 'world')} per suite (world seeds {worlds[0]}–{worlds[-1]}, the same for "
             f"every checkpoint), with its "
             f"{document['interval']}. Head parameters: the recurrent core and its read-out, without the CNN every "
             f"model shares.")
    lines = [f"# Model comparison: {document['task']}", ""]
    if missing:
        lines += [f"**Unfinished:** {len(missing)} run{'s' * (len(missing) != 1)} not evaluated yet "
                  f"({', '.join(missing)}); the `navigator compare` command that started it, rerun with `--resume`, "
                  f"continues it. Models with fewer seeds have wider intervals.", ""]
    lines += [intro, "",
              "| model | head parameters | training seeds | " + " | ".join(suites) + " |",
              "|---|---:|---|" + "---:|" * len(suites)]
    for entry in document["models"]:
        seeds = ", ".join(str(run["seed"]) for run in entry["runs"])
        lines.append(f"| {entry['model']} | {entry['parameters']['head']:,} | {seeds} | "
                     + " | ".join(cell(entry["suites"][suite]) for suite in suites) + " |")
    evaluated = {entry["model"] for entry in document["models"]}
    if reference not in evaluated:
        found = [f"{reference}, the reference, has no evaluated run yet."]
    elif evaluated == {reference}:
        found = ["No baseline has an evaluated run yet."]
    else:
        found = verdict(document["above_reference"], reference)
    lines += ["", *found, ""]
    return "\n".join(lines)


def verdict(above: list[dict[str, Any]], reference: str) -> list[str]:
    """One line per suite where a baseline's mean success is higher than the reference's, or one line saying there
    is none."""
    if not above:
        return [f"No baseline has a higher mean success than {reference} in any suite."]
    lines = []
    for found in above:
        overlap = ("the intervals overlap, so the difference is within what training seeds and worlds vary by"
                   if found["overlap"] else "the intervals do not overlap")
        lines.append(f"- {found['suite']}: {found['model']}'s mean success ({percent(found['mean'])}%) is higher "
                     f"than {reference}'s ({percent(found['reference_mean'])}%); {overlap}.")
    return [f"Where a baseline beats {reference}:", "", *lines]
