"""`navigator eval` from settings to report: check the pilots, fly the missing episodes in parallel, summarise, write
results.json, report.md, success.png and trajectories.png."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from navigator.dataset.atomic import atomic_write_bytes
from navigator.evaluation.episodes import EpisodeRecord, fly_episodes
from navigator.evaluation.folder import open_folder, read_finished, write_episode, write_json
from navigator.evaluation.plots import plot_success, plot_trajectories
from navigator.evaluation.report import render_report
from navigator.evaluation.results import EvalResults, PilotInfo, build_results
from navigator.evaluation.seeds import check_no_overlap, training_seeds
from navigator.evaluation.settings import EvalSettings


class Hooks:
    """What the command shows while episodes fly (the pipeline itself prints nothing)."""

    def start(self, todo: int, done: int) -> None: ...

    def episode(self, record: EpisodeRecord) -> None: ...


def inspect_pilots(settings: EvalSettings) -> tuple[PilotInfo, ...]:
    """Build every pilot once (a bad spec, checkpoint, camera or airframe is a UserError before anything flies) and
    refuse evaluation seeds that a checkpoint was trained on."""
    from navigator.pilots import CheckpointPilot, make_pilot
    from navigator.scenario import make_scenario_env

    env = make_scenario_env(settings.scenario(settings.suites[0]))
    try:
        pilots = [make_pilot(spec, env, camera_key="camera") for spec in settings.pilots]  # eval's YAML key
    finally:
        env.close()
    infos = []
    for spec, pilot in zip(settings.pilots, pilots):
        if not isinstance(pilot, CheckpointPilot):
            infos.append(PilotInfo(spec, None, None))
            continue
        seeds = training_seeds(pilot.metadata)
        check_no_overlap(spec, seeds, settings.task, settings.seeds)
        infos.append(PilotInfo(spec, hashlib.sha256(Path(pilot.name).read_bytes()).hexdigest(), seeds))
    return tuple(infos)


def evaluate(out: Path, settings: EvalSettings, workers: int = 0, resume: bool = False,
             hooks: Hooks | None = None) -> EvalResults:
    """Fly every episode of `settings` not yet recorded in `out` with `workers` processes (0: one per core), then
    write the results and the report there; returns the results."""
    hooks = hooks or Hooks()
    pilots = inspect_pilots(settings)
    open_folder(out, settings, pilots, resume)
    finished = read_finished(out, settings)
    todo = [key for key in settings.keys() if key not in finished]
    hooks.start(len(todo), len(finished))
    for key, record in fly_episodes(settings, todo, workers or os.cpu_count() or 1):
        write_episode(out, settings, key, record)
        finished[key] = record
        hooks.episode(record)
    results = build_results(settings, pilots, list(finished.values()))
    write_json(out / "results.json", results.to_dict())
    figures = {"success per suite and pilot": "success.png",
               f"trajectories from above in {settings.suites[0]}": "trajectories.png"}
    plot_success(results, out / "success.png")
    plot_trajectories(results, settings.suites[0], out / "trajectories.png")
    atomic_write_bytes(out / "report.md", render_report(results, figures).encode())
    return results
