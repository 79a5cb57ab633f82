"""A comparison from config to files: train every (model, seed) run under OUT/runs/MODEL-seedSEED through the
training pipeline (the first run collects the shared data when the recipe has a `collect` section and it is missing;
the others reuse it), seed by seed and model by model; evaluate each run's best.pt as soon as it is trained, in
OUT/eval/MODEL-seedSEED (every run meets the same worlds); and after each run write OUT/comparison.json,
comparison.md and comparison.png over the runs evaluated so far, so that an unfinished comparison already reports
every model, on the seeds it has.

OUT/compare.json records the comparison's settings before any work and OUT/finished.json the runs whose training
finished, so that `resume` trains nothing finished again, continues a run that started (its folder holds run.json)
and an evaluation that started, starts the others, and refuses, before any work, settings that differ from the
recorded ones. Every run must train on the same demonstrations: finished.json also records the fingerprints of the
shared datasets the first run trained on, and each later run, and every resume, refuses data that changed since.

A finished run needs its folder no more once it is evaluated: a report kept without runs/ (as committed: the
repository's .gitignore leaves runs/, the evaluations' episodes/ and datasets/ out) resumes from comparison.json and
each finished run's eval/RUN/results.json, and collects the recipe's demonstrations again when they are missing (the
fingerprint check then confirms they are the ones the finished runs trained on).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.comparison.config import (FINISHED, PER_RUN, RECORD, RECORD_FORMAT, RECORD_VERSION, RUNS, CompareConfig,
                                         run_folder)
from navigator.comparison.plot import plot_comparison
from navigator.comparison.summary import RunInfo, build_comparison
from navigator.comparison.table import render_table
from navigator.config import to_dict
from navigator.dataset.atomic import atomic_write_bytes
from navigator.dataset.manifest import manifest_path, read_manifest
from navigator.errors import UserError, counted, refuse_if_denied
from navigator.json_fields import read_problem, show, with_checksum, without_checksum
from navigator.evaluation import pipeline as evaluation
from navigator.pilots import shipped_policy_now
from navigator.evaluation.folder import finished_results, with_added_settings, write_json
from navigator.training.config import with_added_settings as with_added_training_settings
from navigator.evaluation.results import EvalResults, build_results
from navigator.folder_lock import FolderLock, lock_new_folder, refuse_if_in_use
from navigator.resume import describe, differences, nothing_to_continue, require_record_format, without
from navigator.training import pipeline as training
from navigator.training.run_record import finished as run_finished

# Base recipe settings that cannot change a run's result (resources, and where roll-outs run): they may differ on
# resume.
RESOURCES = ("threads", "cache_mb", "collect.workers", "backend", "collect.backend")
# Of those, the training settings a study records beside its settings and gives back to a resume from its record.
TRAINING_RESOURCES = ("threads", "cache_mb")


class Hooks:
    """What the command shows (the runner prints nothing): each run as it starts or is skipped, and the hooks the
    training and evaluation pipelines report to."""

    def run(self, model: str, seed: int, index: int, total: int, finished: bool) -> None:
        """Run `index` (0-based) of `total` starts, or (`finished`) is skipped as finished before."""

    def training(self) -> training.Hooks:
        return training.Hooks()

    def evaluation(self) -> evaluation.Hooks:
        return evaluation.Hooks()


def recorded_settings(config: CompareConfig) -> dict[str, Any]:
    """What compare.json records and resuming compares: the models, reference, seeds and evaluation, and the base
    recipe as resolved (so that an edit to the recipe file is seen) less what each run sets itself and the
    resources. Where the recipe came from (`recipe`, `train`) and where the comparison is written are left out."""
    settings = to_dict(config)
    for name in ("out", "recipe", "train"):
        settings.pop(name)
    settings["base"] = without(settings["base"], (*PER_RUN, *RESOURCES))
    return settings


def _read_json(path: Path, what: str = "comparison") -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        refuse_if_denied(error)
        raise UserError(f"--resume: cannot read {path} ({read_problem(error)}); start the {what} over in another "
                        f"--out") from None


@dataclass(frozen=True)
class Study:
    """A folder of many trainings evaluated together, resumable: `record` holds its settings (in `format`,
    `version`), FINISHED the names of the runs that finished; `what` names it in messages ("comparison")."""

    what: str = "comparison"
    record: str = RECORD
    format: str = RECORD_FORMAT
    version: int = RECORD_VERSION
    # How a recorded setting is named to the user, by prefix: the comparison records its resolved training recipe
    # as `base`, which the user gives as `train:` (or its recipe file).
    user_names: tuple[tuple[str, str], ...] = ()
    # Recorded settings that are a file's sha256, not a value the user gives: (setting, the file in the user's words,
    # formatted with the settings).
    # A change is said as the file having changed since the study started, not as a setting given otherwise.
    fingerprints: tuple[tuple[str, str], ...] = ()

    def user_name(self, setting: str) -> str:
        for recorded, given in self.user_names:
            if setting.startswith(recorded):
                return given + setting[len(recorded):]
        return setting


COMPARISON = Study(user_names=(("base.", "train."),))


def open_study(out: Path, settings: dict[str, Any], resume: bool, study: Study = COMPARISON,
               resources: dict[str, Any] | None = None) -> tuple[list[str], FolderLock]:
    """Start the study in `out` (recording its `settings`, and the training `resources` it was started with), or
    (`resume`) check that `out` holds this very study; before any work. Returns the names of the runs finished
    before, and the lock that makes this process the study's one writer (hold it while the study runs).

    Resources are not compared on resume (another machine may give other threads), but a study continued from its
    record alone is given them back: the thread count changes the rounding of the training's float sums, so the
    runs still to train then come out as the uninterrupted study's would."""
    what, name = study.what, study.record
    if not resume:
        def check_empty() -> None:
            if out.exists() and (not out.is_dir() or any(out.iterdir())):
                refuse_if_in_use(out, what)
                raise UserError(f"--out {out} already exists and is not empty: pass --resume to continue the {what} "
                                f"there, or choose a new or empty folder")

        check_empty()
        lock = lock_new_folder(out, what, check_empty)
        write_json(out / name, with_checksum({"format": study.format, "version": study.version, "settings": settings,
                                              **({"resources": resources} if resources else {})}))
        return [], lock
    if not (out / name).is_file():
        raise nothing_to_continue(out, "--resume", what, name)
    lock = FolderLock(out, what)
    record = _read_json(out / name, what)
    start_over = f"start the {what} over in another --out"
    version = require_record_format(record, out / name, study.format, (1, study.version), start_over, flag="--resume")
    try:
        record = without_checksum(record, required=version >= 2)
    except ValueError as error:  # the runs still to train would follow settings the finished ones did not
        raise UserError(f"--resume: {out / name} cannot be continued from: {error}; restore it, or {start_over}") \
            from None
    recorded = record.get("settings")
    if not isinstance(recorded, dict):
        raise UserError(f"--resume: {out / name} records no settings (it is damaged); start the {what} over in "
                        f"another --out")
    if "evaluation" in recorded:  # recorded before some evaluation settings existed
        recorded = {**recorded, "evaluation": with_added_settings(recorded["evaluation"])}
    if isinstance(recorded.get("base"), dict):  # likewise, training settings
        recorded = {**recorded, "base": with_added_training_settings(recorded["base"])}
    for setting, file in study.fingerprints:
        if recorded.get(setting) != settings.get(setting):
            then = str(recorded.get(setting))
            kept = shipped_policy_now(then) if recorded.get("pilot") == "pretrained" else None
            if kept is not None and kept.is_relative_to(Path.cwd()):
                kept = kept.relative_to(Path.cwd())
            advice = (f"restore it, or start the {what} over in another --out" if kept is None else
                      f"it was the shipped policy then, kept since as {kept}: make the {what} again from it (pilot: "
                      f"{kept}) in another --out")
            raise UserError(f"--resume: {file.format_map(settings)} changed since the {what} in {out} started (its "
                            f"sha256 was {then[:12]}, now {str(settings.get(setting))[:12]}): the runs still to "
                            f"train would start from another policy than those finished; {advice}")
    found = [dataclasses.replace(difference, name=study.user_name(difference.name))
             for difference in differences(recorded, settings)]
    if found:
        raise UserError(f"--resume: {out} was started with other settings ({describe(found, name)}); resume with "
                        f"the settings it was started with, or choose another --out")
    finished = _read_json(out / FINISHED, what) if (out / FINISHED).exists() else {"runs": []}
    return list(finished["runs"]), lock


def mark_finished(out: Path, finished: list[str], run: str, **recorded: Any) -> None:
    """Record that `run` finished (after the runs of `finished`, which gains it), with `recorded` entries beside
    the run names (kept, like the ones recorded before, in later writes)."""
    finished.append(run)
    document = _read_json(out / FINISHED) if (out / FINISHED).exists() else {}
    write_json(out / FINISHED, {**document, **recorded, "runs": finished})


def open_comparison(config: CompareConfig, resume: bool) -> tuple[list[str], FolderLock]:
    """Start the comparison in OUT (recording its settings), or (`resume`) check that OUT holds this very
    comparison; before any work. Returns the names of the runs finished before (`cfc-ncp-seed0`, ...) and the
    comparison's lock (`open_study`)."""
    return open_study(Path(config.out), recorded_settings(config), resume,
                      resources={name: getattr(config.base, name) for name in TRAINING_RESOURCES})


def run_comparison(config: CompareConfig, resume: bool, workers: int = 0, hooks: Hooks | None = None) -> dict[str, Any]:
    """Train and evaluate the missing runs (evaluations with `workers` processes, 0: one per core; the results do
    not depend on it), writing comparison.json, .md and .png in OUT after each; returns the last comparison.json
    document. UserError, before any work, for an OUT that holds another comparison (or its settings changed, when
    resuming)."""
    hooks = hooks or Hooks()
    if not resume:  # refused before OUT is made, which would otherwise be left for only --resume to accept
        training.check_collect_target(config.base)
    finished, lock = open_comparison(config, resume)
    with lock:
        return _compare(config, finished, workers, hooks)


def _compare(config: CompareConfig, finished: list[str], workers: int, hooks: Hooks) -> dict[str, Any]:
    """`run_comparison` in its opened folder."""
    out = Path(config.out)
    runs = config.runs()
    # A finished run whose evaluation finished is read from the report: its checkpoint is not needed, and may be gone
    # (runs/ is not kept beside a committed report) or elsewhere (a comparison copied to another folder). One whose
    # checkpoint is gone and whose report is short is refused, before any work.
    reported = {}
    for run in runs:
        if run_folder(out, *run).name in finished:
            gone = not (run_folder(out, *run) / "best.pt").is_file()
            entry = _reported_run(config, *run, required=gone)
            if entry is not None:
                reported[run_folder(out, *run).name] = entry
    unfinished = any(run_folder(out, *run).name not in finished for run in runs)
    if finished and unfinished:
        _collect_if_missing(config, hooks.training())
    shared = _shared_data(out, finished)
    if shared is None and finished and unfinished:
        shared = _recorded_anew(out, finished, config, hooks.training())
    if shared is not None and unfinished:
        _check_shared_data(out, shared, finished)  # a comparison that cannot finish is refused before any work
    evaluated: list[tuple[RunInfo, EvalResults]] = []
    document: dict[str, Any] = {}
    for index, (model, seed) in enumerate(runs):
        folder = run_folder(out, model, seed)
        done = folder.name in finished
        if folder.name in reported:
            hooks.run(model, seed, index, len(runs), done)
            evaluated.append(reported[folder.name])
            document = _write_comparison(config, evaluated, [run_folder(out, *run).name for run in runs[index + 1:]])
            continue
        if not done and shared is not None:  # before the run starts (and, on resume, before any work)
            _check_shared_data(out, shared, finished)
        hooks.run(model, seed, index, len(runs), done)
        if not done:
            # A run that started continues exactly (its pipeline checks its settings and data); the others start
            # anew. One that finished before its name was recorded (finished.json lost) is not trained again.
            recipe = config.run_config(model, seed)
            if not run_finished(folder, recipe.dagger.rounds):
                training.run_recipe(recipe, (folder / training.RUN_RECORD).is_file(), hooks.training())
            if shared is None:
                shared = _trained_on(folder)
                mark_finished(out, finished, folder.name, data=shared)
            else:
                mark_finished(out, finished, folder.name)
        info = _run_info(config, model, seed)
        settings = dataclasses.replace(config.evaluation, pilots=(info.pilot,))
        eval_out = out / "eval" / folder.name
        if eval_out.is_dir() and any(eval_out.iterdir()) and not (eval_out / "eval.json").is_file():
            # Its record lost, nothing can continue it, and the comparison does not delete what it cannot vouch for.
            raise UserError(f"--resume: {eval_out} holds files but no eval.json, the record of the run's evaluation, "
                            f"so it cannot be continued; remove {eval_out} and resume: the run is evaluated again")
        results = evaluation.evaluate(eval_out, settings, workers, (eval_out / "eval.json").is_file(),
                                      hooks.evaluation())
        # The pilot as its evaluation recorded it: OUT may be spelt differently on resume (./out, out, /abs/out)
        evaluated.append((dataclasses.replace(info, pilot=results.pilots[0].spec), results))
        document = _write_comparison(config, evaluated, [run_folder(out, *run).name for run in runs[index + 1:]])
    return document


def _trained_on(folder: Path) -> dict[str, Any]:
    """The fingerprints of the shared datasets (the recipe's `data`, not its DAgger rounds) the run in `folder`
    trained on, as its run.json records them: {path as given: {"episodes", "sha256"}}."""
    record = _read_json(folder / training.RUN_RECORD)
    return dict((record.get("datasets") or {}).get("data") or {})


def _shared_data(out: Path, finished: list[str]) -> dict[str, Any] | None:
    """The shared datasets' fingerprints recorded when the first run finished (None before that, and where they
    are not known: see `_recorded_anew`). A comparison recorded before finished.json kept them takes them from its
    first finished run's run.json."""
    if not finished:
        return None
    recorded = _read_json(out / FINISHED).get("data")
    if isinstance(recorded, dict):
        return recorded
    first = out / RUNS / finished[0] / training.RUN_RECORD
    return _trained_on(first.parent) if first.is_file() else None


def _recorded_anew(out: Path, finished: list[str], config: CompareConfig,
                   hooks: training.Hooks) -> dict[str, Any]:
    """The shared datasets' fingerprints as they are now, recorded in finished.json for the runs still to train,
    for a comparison from before finished.json kept them whose first run's folder (that held them) is gone: what
    the finished runs trained on cannot be checked any more, and the warning says so. The data is still the one
    the recorded recipe makes (its `data` and `collect` settings are checked on resume)."""
    shared = {}
    for path in config.base.data:
        _check_present(out, path, finished)
        shared[path] = training.dataset_fingerprint(Path(path))
    runs = counted(len(finished), "finished run")
    hooks.warning(f"{out / FINISHED} does not record the data the {runs} trained on, and "
                  f"{out / RUNS / finished[0] / training.RUN_RECORD}, which did, is gone: the runs still to train "
                  f"use {', '.join(shared)} as it is now, recorded from here on")
    document = _read_json(out / FINISHED)
    write_json(out / FINISHED, {**document, "data": shared, "data_recorded_after": list(finished)})
    return shared


def _check_shared_data(out: Path, shared: dict[str, Any], finished: list[str]) -> None:
    """Refuse to train another run when a shared dataset changed since the runs of `finished` trained on it: their
    results would then compare models trained on different demonstrations."""
    for path, then in shared.items():
        _check_present(out, path, finished)
        now = training.dataset_fingerprint(Path(path))
        if now != then:
            raise UserError(f"{path} changed since the comparison in {out} trained {counted(len(finished), 'run')} "
                            f"on it "
                            f"({training.fingerprint_change(now, then)}): every run must train on the same data; "
                            f"restore it, or start the comparison over in another --out")


def _collect_if_missing(config: CompareConfig, hooks: training.Hooks) -> None:
    """Collect the recipe's own demonstrations (its `collect` section's first dataset) again on resume when they
    are missing, as in a clone of a committed report, which holds no datasets, or short of the recipe's episodes (a
    collection interrupted): the recorded collect settings give the same episodes, and the shared data's
    fingerprint check that follows confirms it before any training."""
    collect = config.base.collect
    first = Path(config.base.data[0])
    if collect is not None and (not manifest_path(first).exists()
                                or len(read_manifest(first).episodes) < sum(p.episodes for p in collect.parts)):
        training.collect_demonstrations(config.base, hooks)


def _check_present(out: Path, path: str, finished: list[str]) -> None:
    if not Path(path).is_dir():
        raise UserError(f"{path} is missing: the comparison in {out} trained {counted(len(finished), 'run')} on it "
                        f"and every run must train on the same data; restore it, or start the comparison over in "
                        f"another --out")


def _write_comparison(config: CompareConfig, evaluated: list[tuple[RunInfo, EvalResults]],
                      missing: list[str]) -> dict[str, Any]:
    """comparison.json, .md and .png in OUT over the `evaluated` runs (each one pilot's evaluation on the same
    worlds), with the names of the runs still `missing`; returns the document."""
    out = Path(config.out)
    infos = [info for info, _ in evaluated]
    settings = config.evaluation.flown_by(tuple(info.pilot for info in infos))
    merged = build_results(settings, tuple(pilot for _, results in evaluated for pilot in results.pilots),
                           [record for _, results in evaluated for record in results.episodes])
    document = build_comparison(merged, infos, config.reference, recorded_settings(config)["base"], missing)
    write_json(out / "comparison.json", document)
    atomic_write_bytes(out / "comparison.md", render_table(document).encode())
    plot_comparison(document, out / "comparison.png")
    return document


def _reported_run(config: CompareConfig, model: str, seed: int,
                  required: bool) -> tuple[RunInfo, EvalResults] | None:
    """A finished run as the comparison reported it: its RunInfo from OUT/comparison.json and its evaluation from
    OUT/eval/RUN/results.json, which must hold every episode of the comparison's evaluation settings. Where it is
    not reported whole: None, or with `required` (the run's folder is gone) a UserError naming what is missing."""
    out = Path(config.out)
    folder = run_folder(out, model, seed)
    results_path = out / "eval" / folder.name / "results.json"
    restore = f"restore {folder}, or start the comparison over in another --out"
    info = next((RunInfo(model, seed, run["checkpoint"], entry["parameters"], run["val_loss"])
                 for entry in reported_entries(out / "comparison.json", "models") if entry.get("model") == model
                 for run in entry.get("runs", []) if run.get("seed") == seed), None)
    if info is None and not required:
        return None
    if info is None:
        raise UserError(f"--resume: {folder / 'best.pt'} is missing and {out / 'comparison.json'} does not report "
                        f"{folder.name}: {restore}")
    # Its pilot as the comparison reported it (OUT may be spelt differently on resume)
    results = finished_results(results_path.parent, config.evaluation.flown_by((info.pilot,)))
    if results is None and not required:
        return None
    if results is None:
        raise UserError(f"--resume: {folder / 'best.pt'} is missing and {results_path} is not the comparison's "
                        f"finished evaluation of it: {restore}")
    return info, results


def reported_entries(path: Path, key: str) -> list[dict[str, Any]]:
    """The entries (JSON objects) listed under `key` in the report document at `path` (comparison.json's
    "models", curve.json's "cells"); none if it is missing. UserError for one that is there but cannot be read: the
    finished runs it reports would otherwise be taken as never reported."""
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document.get(key) if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise TypeError(f"it holds no list {show(key)}")
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
        refuse_if_denied(error)
        raise UserError(f"--resume: {path} cannot be read ({read_problem(error)}): restore it (it is part of the "
                        f"committed report: git checkout -- {path}), or start over in another --out") from None
    return [entry for entry in entries if isinstance(entry, dict)]


def _run_info(config: CompareConfig, model: str, seed: int) -> RunInfo:
    """A finished run as the comparison reports it: its best.pt (the pilot), head and CNN sizes and validation
    loss."""
    best = run_folder(Path(config.out), model, seed) / "best.pt"
    policy, metadata = training.load_trained(best)
    return RunInfo(model, seed, str(best), policy.parameter_counts(), metadata["val_loss"])
