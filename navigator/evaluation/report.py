"""report.md: the evaluation in words and tables: one table per suite with a row per pilot, attention on target (when
measured) per suite and pilot, one table per stress sweep with a row per level, the groups of training seeds, and
links to the videos of failed episodes."""

from __future__ import annotations

from navigator.errors import counted
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.results import EvalResults, PilotInfo, SuiteSummary
from navigator.evaluation.seeds import seed_span
from navigator.evaluation.sweeps import SweepCurve

COLUMNS = ("pilot", "success", "95% interval", "mean time to target (s)", "path efficiency", "collision rate",
           "endings")


def render_report(results: EvalResults, figures: dict[str, str], videos: list[EpisodeRecord],
                  video_links: list[str]) -> str:
    """The markdown report; `figures` maps a caption to an image file name beside the report; `videos` are the
    filmed failed episodes, at `video_links` (paths relative to the report)."""
    s = results.settings
    worlds = seed_span(range(s.seed, s.seed + s.episodes), "world")
    lines = [f"# Closed-loop evaluation: {s.task}", "",
             f"{counted(s.episodes, 'episode')} per suite and pilot, {worlds} "
             f"(the same worlds for every pilot), airframe {s.airframe}, camera {s.camera.width}x{s.camera.height} at "
             f"{s.camera.rate_hz} Hz" + (f", episodes end after {s.max_seconds:g} s" if s.max_seconds else "") + ".",
             "", "Success intervals are Wilson 95% score intervals. Time to target and path efficiency are means over "
             "successful episodes; path efficiency is the straight start-to-target distance over the path flown "
             "plus the distance left at the end (1: a straight flight).", ""]
    lines += ["## Pilots", ""] + [f"- `{p.spec}`: {_provenance(p)}" for p in results.pilots] + [""]
    for suite in s.suites:
        lines += [f"## {suite}", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
        lines += [_row(results.summary(suite, pilot)) for pilot in s.pilots] + [""]
    if s.attention:
        lines += _attention(results)
    for curve in results.sweeps:
        lines += _sweep(curve)
    if results.groups:
        lines += _groups(results)
    if videos:
        lines += ["## Videos of failed episodes", "", "The first failed episodes of each suite and pilot, flown again "
                  "(the same worlds, the same flights) with the onboard camera beside a chase view.", ""]
        lines += [f"- {r.suite}, `{r.pilot}`, seed {r.seed} ({r.ending}): [{link}]({link})"
                  for r, link in zip(videos, video_links)] + [""]
    for caption, name in figures.items():
        lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def _attention(results: EvalResults) -> list[str]:
    """Attention on target: a row per flown suite, a column per pilot: the mean with its bootstrap 95% interval and
    the number of episodes it is over."""
    s = results.settings
    lines = ["## Attention on target", "",
             f"The share of the policy's saliency mass ({s.attention_method}) that falls on the target's pixels in "
             f"the onboard image, measured every {s.attention_interval} camera steps while the target was in view "
             f"(a target hidden by trees or black patches covers only its visible pixels), averaged over each "
             f"episode; the table gives the mean over episodes with a bootstrap 95% interval over episodes, and the "
             f"target's mean share of the image (what a saliency spread evenly over the image would score). The "
             f"expert and exported bundles have no saliency to measure (the expert reads the world, a bundle is an "
             f"ONNX graph): their cells say so.", "",
             "| suite | " + " | ".join(f"`{pilot}`" for pilot in s.pilots) + " |", "| --- |" + " --- |" * len(s.pilots)]
    for suite in s.flown_suites:
        cells = [_attention_cell(results.summary(suite, pilot)) for pilot in s.pilots]
        lines.append(f"| {suite} | " + " | ".join(cells) + " |")
    return lines + [""]


def _attention_cell(summary: SuiteSummary) -> str:
    attention = summary.attention
    if attention is None:
        return "no saliency (not measured)"
    if attention.mean is None:
        return "target never in view at a measured step"
    return (f"{attention.mean:.3f} ({attention_interval(attention)}), target {attention.target_share:.3f} of the "
            f"image, {attention.episodes}/{summary.episodes} episodes")


def attention_interval(attention) -> str:
    """An attention figure's interval as text: "0.310-0.420", or why there is none (one episode)."""
    if attention.interval is None:
        return "one episode: no interval"
    low, high = attention.interval
    return f"{low:.3f}-{high:.3f}"


def _sweep(curve: SweepCurve) -> list[str]:
    """A sweep's table: a row per level, a column per pilot: successes and the Wilson 95% interval."""
    lines = [f"## Sweep: {curve.kind} on {curve.base}", "",
             f"Success against {curve.unit}, {counted(curve.episodes, 'episode')} per level and pilot, on the same "
             f"worlds at every level (suites `{curve.suites[0]}` ...).", "",
             "| level | " + " | ".join(f"`{line.pilot}`" for line in curve.lines) + " |",
             "| --- |" + " --- |" * len(curve.lines)]
    for index, level in enumerate(curve.levels):
        cells = [f"{line.successes[index]}/{curve.episodes} ({line.success_intervals[index][0]:.0%}-"
                 f"{line.success_intervals[index][1]:.0%})" for line in curve.lines]
        lines.append(f"| {level:g} | " + " | ".join(cells) + " |")
    return lines + [""]


def _groups(results: EvalResults) -> list[str]:
    """The groups of training seeds: per suite, the mean success over seeds with its hierarchical bootstrap 95%
    interval."""
    lines = ["## Across training seeds", "",
             "Checkpoints of one model trained by the same recipe apart from the seed. Success is the mean over the "
             "group's seeds; the interval is a hierarchical bootstrap 95% interval (training seeds, then worlds, "
             "resampled), which counts the spread between training seeds.", ""]
    lines += [f"- {g.label}: seeds {', '.join(map(str, g.training_seeds))} "
              f"({', '.join(f'`{pilot}`' for pilot in g.pilots)})" for g in results.groups] + [""]
    suites = results.groups[0].suites
    lines += ["| group | " + " | ".join(s.suite for s in suites) + " |", "| --- |" + " --- |" * len(suites)]
    for group in results.groups:
        cells = [f"{s.success_rate:.0%} ({s.success_interval[0]:.0%}-{s.success_interval[1]:.0%})"
                 for s in group.suites]
        lines.append(f"| {group.label} | " + " | ".join(cells) + " |")
    return lines + [""]


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
    flown = "; ".join(f"{seed_span(range(r.first, r.first + r.count), r.task or 'any task')} ({r.source})"
                      for r in pilot.training_seeds.ranges)
    known = "trained on " + (flown or "no recorded seeds")
    if not pilot.training_seeds.complete:
        known += "; its checkpoint does not record its demonstrations' seeds, so overlap with them was not checked"
    # A bundle's identity is its graph's (PilotInfo.checkpoint_sha256 holds policy.onnx's sha256, which a resumed
    # evaluation compares); a checkpoint is a .pt file, or the shipped one (`pretrained`).
    what = "checkpoint" if pilot.spec == "pretrained" or pilot.spec.endswith(".pt") else "bundle, policy.onnx"
    return f"{what} sha256 {pilot.checkpoint_sha256[:12]}, {known}"
