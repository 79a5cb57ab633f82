"""`navigator eval` from settings to report: refuse a folder it cannot use, check the pilots, fly the missing
episodes in parallel (measuring attention on target if asked), summarise, film failed episodes, write results.json,
report.md and the figures (success.png, trajectories.png, distance.png, one sweep-KIND.png per stress sweep)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from navigator.backends import LOCAL, Backend, Cluster
from navigator.dataset.atomic import TEMP_SUFFIX, atomic_write_bytes, remove_orphaned_temporaries
from navigator.errors import UserError
from navigator.evaluation.episodes import EpisodeRecord, fly_episodes
from navigator.evaluation.folder import (check_continued, check_folder, damaged_note, episode_path,
                                         in_recorded_spelling, open_folder, read_finished, write_episode,
                                         write_json)
from navigator.evaluation.groups import Recipe, checkpoint_recipe
from navigator.evaluation.plots import plot_distance, plot_success, plot_sweep, plot_trajectories
from navigator.evaluation.report import render_report
from navigator.evaluation.results import EvalResults, PilotInfo, build_results
from navigator.evaluation.seeds import (SeedRange, TrainingSeeds, check_no_overlap, recorded_training_fields,
                                        training_seeds)
from navigator.evaluation.settings import EpisodeKey, EvalSettings
from navigator.evaluation.videos import VIDEOS, failures_to_film, filmed, video_path
from navigator.folder_lock import FolderLock, lock_new_folder
from navigator.json_fields import field_problems
from navigator.resume import GivenAs
from navigator.workers import local_workers


class Hooks:
    """What the command shows while episodes fly (the pipeline itself prints nothing)."""

    def start(self, todo: int, done: int) -> None: ...

    def damaged(self, note: str) -> None:
        """Damaged episode records were found (`note` says which); their episodes fly again."""

    def episode(self, record: EpisodeRecord) -> None: ...

    def filming(self, todo: int) -> None: ...

    def filmed(self, record: EpisodeRecord) -> None: ...

    def cluster(self, cluster: Cluster) -> None:
        """The workers are up (Cluster.describe() says where)."""


def inspect_pilots(settings: EvalSettings, given_as: GivenAs | None = None) -> tuple[PilotInfo, ...]:
    """Build every pilot once (a bad spec, checkpoint, bundle, camera or airframe is a UserError before anything
    flies) and refuse evaluation seeds that a checkpoint, or the checkpoint a bundle was exported from, was trained
    on. A refusal names settings as `given_as` says the user gave them (a flag, or a key of the --config file)."""
    from navigator.pilots import BundlePilot, CheckpointPilot, make_pilot
    from navigator.scenario import make_scenario_env

    env = make_scenario_env(settings.scenario(settings.suites[0]))
    try:
        pilots = [make_pilot(spec, env, camera_key="camera") for spec in settings.pilots]  # eval's YAML key
    finally:
        env.close()
    if settings.attention:
        check_attention(settings, pilots, given_as or GivenAs(config=False))
    infos = []
    for spec, pilot in zip(settings.pilots, pilots):
        seeds = pilot_training_seeds(spec, pilot)
        if seeds is not None:
            check_no_overlap(f"pilot {spec}", seeds, settings.task, settings.seeds)
        if isinstance(pilot, BundlePilot):
            recipe = (pilot.manifest.get("source") or {}).get("recipe")
            infos.append(PilotInfo(spec, pilot.manifest["onnx"]["sha256"], seeds,
                                   None if recipe is None else Recipe(recipe["model"], recipe["seed"],
                                                                      recipe["sha256"])))
        elif isinstance(pilot, CheckpointPilot):
            infos.append(PilotInfo(spec, hashlib.sha256(Path(pilot.name).read_bytes()).hexdigest(), seeds,
                                   checkpoint_recipe(pilot.metadata)))
        else:
            infos.append(PilotInfo(spec, None, None))
    return tuple(infos)


def pilot_training_seeds(spec: str, pilot: Any) -> TrainingSeeds | None:
    """The world seeds pilot `spec` (as `make_pilot` made it) was trained on: a checkpoint's from its metadata, a
    bundle's from its policy.json's record of the checkpoint it was exported from; None for a pilot that was not
    trained (the expert). UserError for a bundle whose record is damaged."""
    from navigator.pilots import BundlePilot, CheckpointPilot

    if isinstance(pilot, CheckpointPilot):
        return training_seeds(pilot.metadata)
    if not isinstance(pilot, BundlePilot):
        return None
    problems = field_problems(pilot.manifest, SOURCE_FIELDS)
    if problems:
        raise UserError(f"pilot {spec}: policy.json's record of its training is damaged ({'; '.join(problems)}), so "
                        f"the seeds it was trained on are unknown; export the bundle again with navigator export")
    recorded = (pilot.manifest.get("source") or {}).get("training_seeds")
    if recorded is None:
        return TrainingSeeds((), complete=False)
    return TrainingSeeds(tuple(SeedRange(r["task"], r["first"], r["count"], r["source"]) for r in recorded["ranges"]),
                         recorded["complete"])


def check_attention(settings: EvalSettings, pilots: list, given_as: GivenAs) -> None:
    """Refuse attention settings that can measure nothing: no policy checkpoint among the pilots (the expert reads
    the world and a bundle is an ONNX graph: neither has saliency). A missing Captum, which integrated gradients
    needs, fails here (ModuleNotFoundError, which the CLI turns into the extra to install) before anything flies.
    `attention` and `pilots` are named as flags or as keys of the config file, as the user gave them."""
    from navigator.pilots import CheckpointPilot

    if not any(isinstance(pilot, CheckpointPilot) for pilot in pilots):
        by_flag = "attention" in given_as.flags
        attention = "--attention" if by_flag else "attention (true in the config file)"
        drop = "drop --attention" if by_flag else "set attention: false there"
        add = ("add a --pilot that is" if "pilots" in given_as.flags or not given_as.config
               else "add to pilots in the config file (or give --pilot) one that is")
        raise UserError(f"{attention} measures where a policy checkpoint looks, and none of the pilots "
                        f"({', '.join(settings.pilots)}) is one (the expert and exported bundles have no saliency): "
                        f"{add} pretrained or a .pt checkpoint, or {drop}")
    if settings.attention_method == "integrated-gradients":
        import captum.attr  # noqa: F401


# What a bundle's policy.json records of its training (navigator.export.manifest), read to refuse seeds it saw.
SOURCE_FIELDS = (("source", "optional mapping or null"), *recorded_training_fields("source"))


def evaluate(out: Path, settings: EvalSettings, workers: int = 0, resume: bool = False, hooks: Hooks | None = None,
             videos: int | None = 0, backend: Backend = LOCAL, extend: bool = False,
             given_as: GivenAs | None = None) -> EvalResults:
    """Fly every episode of `settings` not yet recorded in `out` with `workers` processes (0: one per core; of the
    Ray cluster with the ray `backend`), film the first `videos` failed episodes of each named suite and pilot not yet
    filmed (in local processes: the videos go into `out`), then write the results and the report there; returns the
    results. `videos` None: as many as the evaluation in `out` recorded (0 for a new one); fewer than it recorded
    films no more, and keeps the videos there. `resume` continues the
    evaluation in `out` with exactly its settings; `extend` (with `resume`) with more episodes (worlds) per suite,
    the only setting that may change (a refusal names settings as `given_as` says the user gave them). UserError,
    before any pilot is loaded, for a folder it cannot use."""
    hooks = hooks or Hooks()
    flying = workers if backend.kind == "ray" else local_workers(workers)
    workers = local_workers(workers)
    flag = "--extend" if extend else "--resume"
    lock = FolderLock(out, "evaluation") if out.is_dir() else None  # before reading what the folder holds
    recorded = check_folder(out, resume, flag)
    settings = settings if recorded is None else in_recorded_spelling(recorded, settings)
    grown = recorded is not None and check_continued(out, recorded, settings, extend, given_as)
    pilots = inspect_pilots(settings, given_as)
    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    recorded_videos = recorded.get("videos", 0) if recorded is not None else 0
    recorded_videos = recorded_videos if isinstance(recorded_videos, int) and recorded_videos >= 0 else 0
    videos = recorded_videos if videos is None else videos
    if lock is None:  # a new folder
        lock = lock_new_folder(out, "evaluation", lambda: check_folder(out, resume, flag))
    # Videos already made are kept (the report links them), so the folder records the most ever asked for.
    open_folder(out, settings, pilots, recorded, grown, max(videos, recorded_videos))
    with lock:
        try:
            return _evaluate(out, settings, pilots, flying, workers, hooks, videos, backend)
        except BaseException:  # Ctrl-C too: a new evaluation that recorded nothing leaves nothing behind
            _discard_if_empty(out, created)
            raise


def _discard_if_empty(out: Path, created: list[Path]) -> None:
    """Remove the evaluation folder this call `created` (deepest first, `out` and the folders above it it made) if
    no episode was recorded there: only its eval.json and empty folders, never anything else."""
    if not created or not out.is_dir() or any(path.is_file() and path != out / "eval.json" for path in out.rglob("*")):
        return
    shutil.rmtree(out)
    for folder in created[1:]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _evaluate(out: Path, settings: EvalSettings, pilots: tuple[PilotInfo, ...], flying: int, workers: int,
              hooks: Hooks, videos: int, backend: Backend) -> EvalResults:
    """`evaluate` in its opened folder `out`."""
    finished, damaged, restored = read_finished(out, settings)
    if damaged:
        hooks.damaged(damaged_note(out, damaged))
    for key in restored:
        write_episode(out, settings, key, finished[key])
    if restored:
        hooks.damaged(damaged_note(out, [episode_path(out, settings, key) for key in restored],
                                   "restored from results.json"))
    todo = [key for key in settings.keys() if key not in finished]
    hooks.start(len(todo), len(finished))
    for key, record in fly_episodes(settings, todo, flying, backend=backend, on_ready=hooks.cluster):
        write_episode(out, settings, key, record)
        finished[key] = record
        hooks.episode(record)
    results = build_results(settings, pilots, list(finished.values()))
    write_json(out / "results.json", results.to_dict())
    _film_failures(out, settings, finished, videos, workers, hooks)

    figures = {"success per suite and pilot": "success.png",
               f"trajectories from above in {settings.suites[0]}": "trajectories.png",
               "success against the start distance to the target": "distance.png"}
    plot_success(results, out / "success.png")
    plot_trajectories(results, settings.suites[0], out / "trajectories.png")
    plot_distance(results, out / "distance.png")
    for curve in results.sweeps:
        figures[f"success against {curve.kind}"] = f"sweep-{curve.kind}.png"
        plot_sweep(curve, out / f"sweep-{curve.kind}.png")
    shown = filmed(out, settings, finished)
    report = render_report(results, figures, [finished[key] for key in shown],
                           [video_path(out, settings, key).relative_to(out).as_posix() for key in shown])
    atomic_write_bytes(out / "report.md", report.encode())
    return results


def _film_failures(out: Path, settings: EvalSettings, records: dict[EpisodeKey, EpisodeRecord], per_pair: int,
                   workers: int, hooks: Hooks) -> None:
    """Fly again, filming, the first `per_pair` failed episodes of each named suite and pilot whose video is not in
    `out` yet. A flight that differs from its record would film another episode than the one reported: its video
    is removed and a RuntimeError raised."""
    paths = {key: video_path(out, settings, key) for key in failures_to_film(settings, records, per_pair)}
    paths = {key: path for key, path in paths.items() if not path.exists()}
    folders = {path.parent for path in paths.values()}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    hooks.filming(len(paths))
    try:
        for key, record in fly_episodes(settings, list(paths), workers, paths):
            if record != records[key]:
                paths[key].unlink(missing_ok=True)
                raise RuntimeError(f"{record.pilot} in {record.suite} from seed {record.seed} flew otherwise when "
                                   f"filmed ({record.ending}) than when evaluated ({records[key].ending}): the episode "
                                   f"is not deterministic")
            hooks.filmed(record)
    finally:  # a worker stopped mid-video (Ctrl-C ends the pool) left its temporary file, here or in an earlier run
        for folder in folders | {path.parent for path in (out / VIDEOS).glob(f"*/*{TEMP_SUFFIX}")}:
            remove_orphaned_temporaries(folder)
