"""report.md: the evaluation in words and tables, one table per suite with a row per pilot."""

from __future__ import annotations

from navigator.evaluation.results import EvalResults, PilotInfo, SuiteSummary

COLUMNS = ("pilot", "success", "95% interval", "mean time to target (s)", "path efficiency", "collision rate",
           "endings")


def render_report(results: EvalResults, figures: dict[str, str]) -> str:
    """The markdown report; `figures` maps a caption to an image file name beside the report."""
    s = results.settings
    lines = [f"# Closed-loop evaluation: {s.task}", "",
             f"{s.episodes} episodes per suite and pilot, world seeds {s.seed}-{s.seed + s.episodes - 1} (the same "
             f"worlds for every pilot), airframe {s.airframe}, camera {s.camera.width}x{s.camera.height} at "
             f"{s.camera.rate_hz} Hz" + (f", episodes end after {s.max_seconds:g} s" if s.max_seconds else "") + ".",
             "", "Success intervals are Wilson 95% score intervals. Time to target and path efficiency are means over "
             "successful episodes; path efficiency is the straight start-to-target distance over the path flown "
             "plus the distance left at the end (1: a straight flight).", ""]
    lines += ["## Pilots", ""] + [f"- `{p.spec}`: {_provenance(p)}" for p in results.pilots] + [""]
    for suite in s.suites:
        lines += [f"## {suite}", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
        lines += [_row(results.summary(suite, pilot)) for pilot in s.pilots] + [""]
    for caption, name in figures.items():
        lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def _row(summary: SuiteSummary) -> str:
    low, high = summary.success_interval
    endings = ", ".join(f"{name} {count}" for name, count in summary.endings.items())
    cells = (f"`{summary.pilot}`", f"{summary.successes}/{summary.episodes} ({summary.success_rate:.0%})",
             f"{low:.0%}-{high:.0%}", _maybe(summary.mean_time_to_target, "{:.1f}"),
             _maybe(summary.mean_path_efficiency, "{:.2f}"), f"{summary.collision_rate:.0%}", endings)
    return "| " + " | ".join(cells) + " |"


def _maybe(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def _provenance(pilot: PilotInfo) -> str:
    if pilot.training_seeds is None:
        return "privileged expert (reads the world)"
    flown = "; ".join(f"{r.task or 'any task'} seeds {r.first}-{r.first + r.count - 1} ({r.source})"
                      for r in pilot.training_seeds.ranges)
    known = "trained on " + (flown or "no recorded seeds")
    if not pilot.training_seeds.complete:
        known += "; its checkpoint does not record its demonstrations' seeds, so overlap with them was not checked"
    return f"checkpoint sha256 {pilot.checkpoint_sha256[:12]}, {known}"
