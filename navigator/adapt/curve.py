"""A learning curve from config to files: collect one dataset of new demonstrations per scenery (OUT/data/SCENERY),
cut its prefixes (OUT/data/SCENERY-N), adapt the starting policy once per (scenery, demonstrations, strategy, seed)
(OUT/runs/SCENERY-N-STRATEGY-seedS, through `navigator.adapt.run`), evaluate per scenery the starting policy and all
that scenery's adaptations together on the same worlds of the new scenery and the old suites (OUT/eval/SCENERY,
`navigator.evaluation.pipeline.evaluate`), then write OUT/curve.json, curve.md and curve.png.

It is a study like `navigator compare`'s, and shares its machinery (`navigator.comparison.runner.open_study`):
OUT/adapt-curve.json records the settings (and the starting checkpoint's sha256) before any work, OUT/finished.json
the adaptations that finished; resuming refuses changed settings, collects only missing
episodes, adapts nothing finished, continues the adaptation that was interrupted, and flies only missing episodes.
A finished curve, kept without runs/ and data/ (a committed report) or copied elsewhere, resumes from curve.json and
each scenery's eval/SCENERY/results.json, collecting, adapting and flying nothing.
Before any work the starting policy is checked against the evaluation's scenario (camera, airframe, task) and the
demonstrations' world seeds against the evaluation's and the ones the policy was trained on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from navigator.adapt.curve_config import (CURVE_RECORD, CURVE_RECORD_FORMAT, CURVE_RECORD_VERSION, RESOURCES,
                                          CurveConfig, curve_settings)
from navigator.adapt.curve_plot import plot_curve
from navigator.adapt.curve_report import AdaptedRun, build_curve, render_curve
from navigator.adapt.prefix import make_prefix
from navigator.adapt.run import (
    adapt,
    check_data,
    policy_scenario,
    start_checkpoint,
)
from navigator.collect import (
    CollectConfig,
    CollectedEpisode,
    CollectPart,
    collect,
    open_for_collection,
)
from navigator.comparison.runner import Study, mark_finished, open_study, reported_entries
from navigator.dataset import file_sha256
from navigator.dataset.atomic import atomic_write_bytes
from navigator.dataset.manifest import manifest_path
from navigator.errors import UserError
from navigator.resume import same_path
from navigator.evaluation import pipeline as evaluation
from navigator.evaluation.folder import finished_results, write_json
from navigator.evaluation.seeds import seed_span, training_seeds
from navigator.training import pipeline as training
from navigator.training.config import DAGGER_SEED_STRIDE
from navigator.training.run_record import finished

CURVE = Study(what="learning curve", record=CURVE_RECORD, format=CURVE_RECORD_FORMAT,
              version=CURVE_RECORD_VERSION,
              fingerprints=(("start_sha256", "the starting policy {pilot}"),))


class Hooks:
    """What the command shows (the runner prints nothing): collections, adaptations as they start or are skipped,
    and the hooks the training and evaluation pipelines report to."""

    def collecting(self, scenery: str, todo: int) -> None: ...

    def collected(self, episode: CollectedEpisode) -> None: ...

    def run(self, name: str, index: int, total: int, done: bool) -> None: ...

    def training(self) -> training.Hooks:
        return training.Hooks()

    def evaluation(self, scenery: str) -> evaluation.Hooks:
        return evaluation.Hooks()


def run_name(scenery: str, count: int, strategy: str, seed: int) -> str:
    return f"{scenery}-{count}-{strategy}-seed{seed}"


def start_spec(config: CurveConfig) -> str:
    """The starting policy as the evaluation names it."""
    return "pretrained" if config.pilot.strip().lower() == "pretrained" else config.pilot


def collect_config(config: CurveConfig, scenery: str, workers: int) -> CollectConfig:
    """The demonstrations of `scenery`: as many as the largest count, flown in the evaluation's scenario."""
    settings = config.evaluation
    return CollectConfig(parts=(CollectPart(task=config.task, preset=scenery, episodes=max(config.demonstrations)),),
                         airframe=settings.airframe, camera=settings.camera, max_seconds=settings.max_seconds,
                         seed=config.collect_seed, dart_noise=config.dart_noise, workers=workers)


def _overlap(a: range, b: range) -> range:
    """The seeds two runs of consecutive seeds share (empty: none)."""
    return range(max(a.start, b.start), min(a.stop, b.stop))


def check_start(config: CurveConfig, source: str) -> str:
    """Before any work: the starting policy flies the evaluation's scenario, its evaluation worlds and the new
    demonstrations' are ones it was not trained on, and the demonstrations' and the DAgger roll-outs' are not
    evaluation worlds (the replayed data: `check_replay`). Returns the starting checkpoint's sha256."""
    first = config.adaptation(config.sceneries[0], 1, config.strategies[0], config.seeds[0])
    start = start_checkpoint(first, f"pilot in {source}:")
    settings = dataclasses.replace(config.evaluation, pilots=(start_spec(config),),
                                   suites=(*config.sceneries, *config.evaluation.suites))
    evaluation.inspect_pilots(settings)  # camera, airframe and task; evaluation seeds it trained on
    _, metadata = training.load_trained(start)
    demonstrations = config.new_seeds
    worlds = range(settings.seed, settings.seed + settings.episodes)
    evaluated = _overlap(demonstrations, worlds)
    if evaluated:
        below = worlds.start - len(demonstrations)  # the largest first seed whose demonstrations end before them
        choice = (f"at most {below} or at least {worlds.stop}" if below >= 0 else f"at least {worlds.stop}")
        raise UserError(f"collect_seed in {source}: the demonstrations would fly "
                        f"{seed_span(demonstrations, 'world')}, and the evaluation flies {seed_span(evaluated)} of "
                        f"them: choose a collect_seed of {choice}")
    for r in range(1, first.dagger.rounds + 1):  # the training pipeline's seeds of DAgger round r
        shared = _overlap(range(DAGGER_SEED_STRIDE * r, DAGGER_SEED_STRIDE * r + first.dagger.episodes), worlds)
        if shared:
            raise UserError(f"evaluation.seed in {source}: the evaluation would fly {seed_span(shared, 'world')}, "
                            f"which DAgger round {r} flies (seeds {DAGGER_SEED_STRIDE * r} on); "
                            f"choose evaluation worlds below {DAGGER_SEED_STRIDE}")
    for known in training_seeds(metadata).ranges:
        shared = known.overlap(config.task, demonstrations)
        if shared:
            trained = range(known.first, known.first + known.count)
            raise UserError(f"collect_seed in {source}: the demonstrations would fly "
                            f"{seed_span(demonstrations, 'world')}, and {start} was trained on "
                            f"{seed_span(trained, 'world')} ({known.source}), {seed_span(shared)} among them: "
                            f"choose a collect_seed past {known.first + known.count - 1}, so that new means new")
    return file_sha256(start)


def check_replay(config: CurveConfig, source: str) -> None:
    """The replayed data exists and is the starting policy's camera, airframe and task; needed only while an
    adaptation is still to train (a finished curve, kept without its datasets, reports without them)."""
    start = start_checkpoint(config.adaptation(config.sceneries[0], 1, config.strategies[0], config.seeds[0]),
                             f"pilot in {source}:")
    policy, metadata = training.load_trained(start)
    camera, airframe, tasks = policy_scenario(policy, metadata)
    check_data(config.replay, f"replay in {source}:", str(start), camera, airframe, tasks)


def _reported_runs(config: CurveConfig, done: list[str]) -> dict[str, AdaptedRun]:
    """The adaptations OUT/curve.json reports, by run name, for each scenery whose adaptations all finished and whose
    finished evaluation in OUT/eval/SCENERY/results.json, flown with the reported checkpoints, stands for them all: a
    finished curve is read, not flown again, also kept without runs/ (a committed report) or copied elsewhere (its
    checkpoints' paths then name the old folder). UserError naming the first finished adaptation whose best.pt is
    missing when its scenery cannot be read so."""
    out = Path(config.out)
    runs = {(cell.get("scenery"), cell.get("demonstrations"), cell.get("strategy"), run.get("seed")): run
            for cell in reported_entries(out / "curve.json", "cells") for run in cell.get("runs", [])}
    reported = {}
    for scenery in config.sceneries:
        keys = [key for key in config.runs() if key[0] == scenery]
        gone = next((run_name(*key) for key in keys if run_name(*key) in done
                     and not (out / "runs" / run_name(*key) / "best.pt").is_file()), None)
        if not all(key in runs and run_name(*key) in done for key in keys):
            why = f"{out / 'curve.json'} does not report every adaptation to {scenery}"
        else:
            adapted = {run_name(*key): AdaptedRun(*key, runs[key]["checkpoint"], runs[key]["val_loss"])
                       for key in keys}
            settings = config.evaluation.flown_by((start_spec(config), *[run.pilot for run in adapted.values()]),
                                                  suites=(scenery, *config.evaluation.suites))
            if finished_results(out / "eval" / scenery, settings) is not None:
                reported.update(adapted)
                continue
            why = f"{out / 'eval' / scenery / 'results.json'} is not the learning curve's finished evaluation of it"
        if gone is not None:
            raise UserError(f"--resume: {out / 'runs' / gone / 'best.pt'} is missing and {why}: restore "
                            f"{out / 'runs' / gone}, or start the learning curve over in another --out")
    return reported


def _refuse_moved(out: Path, name: str, metadata: dict[str, Any], data: Path) -> None:
    """Refuse, before its evaluation, a finished adaptation trained on the demonstrations of another folder than
    `data`: the curve was moved or copied while unfinished, and its runs would not make one recipe per cell."""
    trained_on = (metadata.get("train_config") or {}).get("data") or []
    if trained_on and not same_path(str(trained_on[0]), str(data)):
        raise UserError(f"--resume: {out / 'runs' / name} was trained on {trained_on[0]}, not {data}: the learning "
                        f"curve was moved or copied while unfinished, and the adaptations still to train would "
                        f"learn from another folder's data; continue it where it was started, or start it over in "
                        f"another --out")


def run_curve(config: CurveConfig, resume: bool, workers: int = 0, hooks: Hooks | None = None,
              source: str = "the config") -> dict[str, Any]:
    """Collect, adapt, evaluate and report (see the module's docstring); returns curve.json's document. `source`
    names the config file in messages. UserError before any work for what check_start refuses, an OUT that holds
    something else, or (resuming) settings that changed."""
    hooks = hooks or Hooks()
    out = Path(config.out)
    sha256 = check_start(config, source)
    if not resume:
        check_replay(config, source)
    done, lock = open_study(out, curve_settings(config, sha256), resume, CURVE,
                            resources={name: config.train[name] for name in RESOURCES if name in config.train})
    with lock:
        if resume and any(run_name(*run) not in done for run in config.runs()):
            check_replay(config, source)
        return _run_curve(config, done, resume, workers, hooks, sha256)


def _run_curve(config: CurveConfig, done: list[str], resume: bool, workers: int, hooks: Hooks,
               sha256: str) -> dict[str, Any]:
    """`run_curve` in its opened folder."""
    out = Path(config.out)
    runs = config.runs()
    # A finished scenery is read from the report; a finished adaptation whose folder is gone (runs/ is not kept
    # beside a committed report) and cannot be read so is refused, before any work.
    reported = _reported_runs(config, done)
    for scenery, count, strategy, seed in runs:  # before any work: a curve moved while unfinished is refused
        name = run_name(scenery, count, strategy, seed)
        if name in done and name not in reported and (out / "runs" / name / "best.pt").is_file():
            _, metadata = training.load_trained(out / "runs" / name / "best.pt")
            _refuse_moved(out, name, metadata, out / "data" / f"{scenery}-{count}")
    for scenery in config.sceneries:
        if all(run_name(*run) in done for run in runs if run[0] == scenery):
            continue  # its demonstrations are needed only to adapt
        folder = out / "data" / scenery
        settings = collect_config(config, scenery, workers)
        writer, _ = open_for_collection(folder, settings, resume=manifest_path(folder).exists())
        hooks.collecting(scenery, len(writer.missing(settings.keys())))
        collect(folder, settings, writer, hooks.collected)

    adapted = []
    for index, (scenery, count, strategy, seed) in enumerate(runs):
        name = run_name(scenery, count, strategy, seed)
        folder = out / "runs" / name
        skip = name in done
        hooks.run(name, index, len(runs), skip)
        if name in reported:
            adapted.append(reported[name])
            continue
        if not skip:
            data = make_prefix(out / "data" / scenery, count, out / "data" / f"{scenery}-{count}")
            settings = config.adaptation(scenery, count, strategy, seed, str(data), str(folder))
            # A run that finished before its name was recorded is not trained again.
            if not finished(folder, settings.dagger.rounds):
                adapt(settings, (folder / training.RUN_RECORD).is_file(), hooks.training())
            mark_finished(out, done, name)
        _, metadata = training.load_trained(folder / "best.pt")
        adapted.append(AdaptedRun(scenery, count, strategy, seed, str(folder / "best.pt"), metadata["val_loss"]))

    results = {}
    for scenery in config.sceneries:
        pilots = (start_spec(config), *[run.pilot for run in adapted if run.scenery == scenery])
        suites = (scenery, *config.evaluation.suites)
        folder = out / "eval" / scenery
        if any(run.scenery == scenery for run in reported.values()):  # checked finished by _reported_runs
            results[scenery] = finished_results(folder, config.evaluation.flown_by(pilots, suites=suites))
        else:
            settings = dataclasses.replace(config.evaluation, pilots=pilots, suites=suites)
            results[scenery] = evaluation.evaluate(folder, settings, workers,
                                                   resume and (folder / "eval.json").is_file(),
                                                   hooks.evaluation(scenery))
    document = build_curve(config, results, adapted, start_spec(config), sha256)
    write_json(out / "curve.json", document)
    atomic_write_bytes(out / "curve.md", render_curve(document).encode())
    plot_curve(document, out / "curve.png")
    return document
