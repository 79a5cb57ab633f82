"""A whole training recipe: collect the demonstrations if they are missing, train, then DAgger rounds.

A run folder records the full recipe it was started with (`run.json`) before any work, and its progress
(`progress.json`) after each stage. Resuming is strict: the settings given must equal the recorded ones (apart from
those that cannot change the result: threads, cache size, collection workers), and a refusal names every one that
differs; an interrupted run then continues with the stage it was in: a collection flies only its missing episodes, a
training resumes from its last epoch. Without resume a folder that holds any run state, or anything else, is refused,
so a run never silently continues or overwrites. Extending a run with more epochs is asked for explicitly
(`extend`), and `run.json` records it.

The data is part of what a run computes, so `run.json` also records a fingerprint of every dataset a stage trains on
(its episodes' content checksums, from the manifest) when the stage starts; resuming refuses, before any work, a
dataset that changed since (re-collected, extended, episodes dropped), which would otherwise silently train on other
data with another validation split.

DAgger round r rolls out the current best policy, has the expert label every frame (into the dataset
`out/dagger/round-r`), adds those episodes to the data and continues training from the current weights.

Under torchrun this pipeline runs in rank 0 alone, which tells the other processes each stage to train alongside it
(`follow_recipe`); `run.json` records how many processes each start and continuation trained with (`world_sizes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import shutil
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from navigator.backends import Cluster
from navigator.collect import (CollectConfig, CollectedEpisode, CollectPart, collect, comparable_recipe,
                               open_for_collection)
from navigator.config import from_dict, to_dict
from navigator.dataset import completeness, read_manifest
from navigator.dataset.atomic import TEMP_SUFFIX, atomic_write_bytes
from navigator.dataset.manifest import manifest_path
from navigator.errors import UserError, counted, refuse_if_denied, some_of
from navigator.folder_lock import FolderLock, lock_new_folder, refuse_if_in_use
from navigator.json_fields import read_problem, with_checksum
from navigator.resume import (Continued, Difference, GivenAs, check_continuation, differences, path_spelling,
                              recorded_paths, show_setting, without)
from navigator.scenario import CameraSettings
from navigator.training import distributed
from navigator.training.augment import AUGMENT_VERSION
from navigator.training.config import DAGGER_SEED_STRIDE, TrainConfig, with_added_settings
from navigator.training.run_record import RUN_FORMAT, RUN_RECORD, RUN_VERSION, read_record
from navigator.training.loop import (Stage, TrainHooks, TrainingExtras, first_stage, read_training_state, train,
                                     training_device)
from navigator.workers import usable_cpus
from policies.checkpoint import CheckpointError, load_checkpoint
from policies.policy import Policy

# What this pipeline writes into a run folder: a folder holding any of them holds (part of) a run.
RUN_FILES = (RUN_RECORD, "progress.json", "last.pt", "best.pt", "history.json", "tensorboard", "dagger")
# Settings that cannot change what a run computes: they may differ between a run's start and its resumption.
FREE_SETTINGS = ("out", "threads", "cache_mb", "collect.workers", "collect.backend", "backend")

ProgressFile = dict[str, list[str]]


class Hooks(TrainHooks):
    """What the command shows while the recipe runs (the pipeline itself prints nothing): its stages, collected
    episodes and warnings, and each training's epochs and batches (`TrainHooks`)."""

    def stage(self, name: str, detail: str) -> None: ...

    def episode(self, collected: CollectedEpisode) -> None: ...

    def cluster(self, cluster: Cluster) -> None:
        """A collection's workers are up (Cluster.describe() says where)."""


def load_trained(path: Path) -> tuple[Policy, dict[str, Any]]:
    """A checkpoint this pipeline wrote, as (policy, metadata); a missing or damaged file is a UserError that says
    what is wrong with it and what to do."""
    try:
        return load_checkpoint(path)
    except CheckpointError as error:
        raise UserError(str(error)) from None


def collect_demonstrations(config: TrainConfig, hooks: Hooks) -> None:
    """The recipe's `collect` stage: its demonstrations collected into its first dataset, or finished there (only
    missing episodes are flown; the same settings give the same episodes)."""
    first = Path(config.data[0])
    hooks.stage("collect", f"{first} ({sum(p.episodes for p in config.collect.parts)} episodes)")
    _collect_into(first, replace(config.collect, backend=config.backend), hooks)


def _collect_into(out: Path, config: CollectConfig, hooks: Hooks) -> None:
    writer, _ = open_for_collection(out, config, resume=manifest_path(out).exists())
    collect(out, config, writer, hooks.episode, hooks.cluster)


def dagger_collect_config(config: TrainConfig, pilot: Path, round_index: int) -> CollectConfig:
    """Round r's roll-outs, flown by `pilot` and labelled by the expert: the scenario the demonstrations were
    recorded in (tasks, presets, airframe, camera and time limit of the first dataset's manifest), with seeds no
    demonstration used; the noise and worker settings from the recipe's `collect` section when there is one, and the
    recipe's backend."""
    recorded = read_manifest(Path(config.data[0])).recipe
    settings = config.collect or CollectConfig()
    parts = tuple(CollectPart(task=p["task"], preset=p["preset"], episodes=config.dagger.episodes)
                  for p in recorded.get("parts", [])) or (CollectPart(episodes=config.dagger.episodes),)
    camera = recorded.get("camera")
    return CollectConfig(parts=parts, airframe=recorded.get("airframe", settings.airframe),
                         camera=CameraSettings(**camera) if isinstance(camera, dict) else settings.camera,
                         max_seconds=recorded.get("max_seconds"), seed=DAGGER_SEED_STRIDE * round_index,
                         dart_noise=settings.dart_noise, dart_time_constant=settings.dart_time_constant,
                         keep_failed=True, workers=settings.workers, pilot=str(pilot), backend=config.backend)


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def _write_record(out: Path, record: dict[str, Any]) -> None:
    """OUT/run.json with its checksum (`read_record` refuses a record that no longer matches it); a record of
    version 1 (before checksums) stays without one: a checksum added now would vouch for edits made since."""
    _write_json(out / RUN_RECORD, with_checksum(record) if record["version"] >= 2 else record)


def stages(config: TrainConfig, out: Path) -> list[Stage]:
    """The trainings of the recipe in order: the first on its datasets, then DAgger round r on those and the roll-outs
    of rounds 1 to r (`out`/dagger/round-r), for the rounds' epochs."""
    rounds = [str(out / "dagger" / f"round-{r}") for r in range(1, config.dagger.rounds + 1)]
    return [first_stage(config)] + [Stage(f"dagger-{r}", (*config.data, *rounds[:r]), config.dagger.epochs)
                                    for r in range(1, config.dagger.rounds + 1)]


def _settings(recorded_config: dict[str, Any]) -> dict[str, Any]:
    """A recorded or given config without the settings that cannot change the result, and with those added since
    it was recorded as its run had them."""
    return without(with_added_settings(recorded_config), FREE_SETTINGS)


def _run_state(out: Path) -> list[str]:
    """The names in `out` that a training run writes (temporary files of its atomic writes included)."""
    return sorted(p.name for p in out.iterdir() if p.name in RUN_FILES or p.name.endswith((TEMP_SUFFIX, ".partial")))


def _check_new(out: Path, config: TrainConfig) -> None:
    """Refuse to start a new run in `out` unless it is missing or an empty folder, or one whose recipe would collect
    into a dataset recorded with other settings."""
    check_collect_target(config)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a run folder; choose a new or empty folder")
    if out.is_dir():
        if any(out.iterdir()):
            refuse_if_in_use(out, "training run")
        if _run_state(out):
            raise UserError(f"{out} already holds a training run ({', '.join(_run_state(out))}): pass --resume to "
                            f"continue it, or choose another --out")
        others = sorted(p.name for p in out.iterdir())
        if others:
            raise UserError(f"{out} is not empty ({some_of(others, 3)}) and holds no training run; choose a new or "
                            f"empty folder for --out")


def check_collect_target(config: TrainConfig) -> None:
    """A recipe with a `collect` section collects its demonstrations into its first dataset, or finishes them there:
    refuse, before any work, a first dataset recorded with other collection settings (another recipe's, or one
    extended since), which the recipe could neither collect into nor train on as its own."""
    first = Path(config.data[0])
    if config.collect is None or not manifest_path(first).exists():
        return
    found = differences(comparable_recipe(read_manifest(first).recipe), config.collect.recipe())
    if found:
        shown = "; ".join(f"collect.{d.name}: {_holds('the dataset', d.recorded)}, {_holds('the recipe', d.given)}"
                          for d in found)
        raise UserError(f"{first} already holds a dataset collected with other settings than the recipe's collect "
                        f"section ({shown}): give the recipe's data a new folder to collect into, or drop its collect "
                        f"section to train on {first} as it is")


def _holds(owner: str, value: Any) -> str:
    return f"{owner} leaves it unset" if value is None else f"{owner} has {show_setting(value)}"


def _start_new(out: Path, config: TrainConfig) -> tuple[tuple[Path, ...], FolderLock]:
    """Check that a new run may start in `out` (missing, or an empty folder), before any work; record its recipe.
    Returns the folders it created, outermost first, and the run folder's lock, taken before the record is
    written."""
    _check_new(out, config)
    created = tuple(folder for folder in (*reversed(out.parents), out) if not folder.exists())
    lock = lock_new_folder(out, "training run", lambda: _check_new(out, config))
    _write_record(out, {"format": RUN_FORMAT, "version": RUN_VERSION, "config": to_dict(config),
                        "augment_version": AUGMENT_VERSION, "extensions": [], "datasets": {"data": {}, "dagger": {}},
                        "world_sizes": [distributed.world_size()]})
    return created, lock


def _read_progress(out: Path) -> ProgressFile:
    path = out / "progress.json"
    if not path.exists():
        return {"completed": []}
    try:
        progress = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        refuse_if_denied(error)
        raise UserError(f"{path} cannot be read ({read_problem(error)}); start the run over in another --out") from None
    completed = progress.get("completed") if isinstance(progress, dict) else None
    if not isinstance(completed, list) or not all(isinstance(stage, str) for stage in completed):
        raise UserError(f"{path} is damaged (it holds no list of the completed stages); start the run over in "
                        f"another --out")
    return progress


def _continue(out: Path, config: TrainConfig, extend: bool, given_as: GivenAs) -> ProgressFile:
    """Check that `config` continues the run in `out` (exactly, or extended to more epochs when `extend`), before any
    work; record an extension. Returns the run's progress."""
    record, progress, extension = _check_continue(out, config, extend, given_as)
    if extension is not None:
        _extend(out, record, progress, extension)
    _record_world_size(out)
    return progress


def _check_continue(out: Path, config: TrainConfig, extend: bool,
                    given_as: GivenAs) -> tuple[dict[str, Any], ProgressFile, dict[str, Any] | None]:
    """Refuse, writing nothing, a `config` that does not continue the run in `out` (exactly, or extended to more
    epochs when `extend`), a finished run to resume, or a dataset that changed. Returns the run's record, its
    progress and, when extending, the extension to record (`_extension`)."""
    flag = "--extend" if extend else "--resume"
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag}: --out {out} is a file, not a run folder")
    if not out.is_dir() or not any(out.iterdir()):
        raise UserError(f"{flag}: {out} holds no training run to continue; drop {flag} to start one")
    if not (out / RUN_RECORD).exists():
        if _run_state(out):
            raise UserError(f"{flag}: {out} holds a training run without a record of its settings ({RUN_RECORD}; "
                            f"older versions did not write one), so resuming could mix settings; start the run over "
                            f"in another --out")
        raise UserError(f"{flag}: {out} holds no training run (no {RUN_RECORD}); choose the run's folder, or drop "
                        f"{flag} and choose a new or empty folder")
    record = read_record(out)
    progress = _read_progress(out)
    for kept in ("best.pt", "last.pt", "history.json"):  # read again after training: an unreadable one is found now
        if (out / kept).exists():
            (out / kept).open("rb").close()  # PermissionError: the CLI names the file and what to do
    found = differences(_settings(record["config"]), _settings(to_dict(config)))
    names = [stage.name for stage in stages(config, out)]
    finished = all(name in progress["completed"] for name in names)
    state_path = out / "last.pt"  # read once for the checks below
    state = read_training_state(state_path) if state_path.exists() else None
    dagger_begun = _dagger_begun(progress, state)
    more_epochs = check_continuation(found, lambda d: d.name == "epochs", extend,
                                     Continued(out, "run", str(out / RUN_RECORD), "epochs", "--epochs",
                                               given_as=given_as, holds=str(record["config"].get("epochs", "")),
                                               finished=finished, extendable=not dagger_begun))
    # After the settings' check: a recipe with other DAgger rounds has other stages, and is named as such.
    known = [*(["collect"] if config.collect is not None else []), *names]  # as _run_stages completes them
    unknown = [stage for stage in progress["completed"] if stage not in known]
    if unknown:
        raise UserError(f"{out / 'progress.json'} is damaged (it lists {', '.join(map(repr, unknown))} as completed, "
                        f"and this run's stages are {', '.join(known)}); start the run over in another --out")
    foreign = sorted(set(_recorded_datasets(record)) - {("data", path_spelling(path)) for path in config.data}
                     - {("dagger", f"round-{r}") for r in range(1, config.dagger.rounds + 1)})
    if foreign:
        raise UserError(f"{out / RUN_RECORD} is damaged (its 'datasets' records {', '.join(n for _, n in foreign)}, "
                        f"which the run does not train on); restore it, or start the run over in another --out")
    _check_datasets(out, record, flag)  # every dataset the record names: it records nothing new
    if finished and not extend:
        early = stopped_early(out, config.epochs, config.patience)
        if early:
            more = "more epochs would not run; start a new run with a larger `patience:` in its --config recipe"
        elif dagger_begun:  # --extend adds epochs before the DAgger rounds only (`_extension`)
            more = ("more epochs cannot be added after its DAgger rounds; to train longer, start a new run with a "
                    "larger --epochs in another --out")
        else:
            more = "to train it for more epochs pass --extend with a larger --epochs"
        every = "its one epoch trained" if config.epochs == 1 else f"all {config.epochs} epochs trained"
        rounds = f" and {counted(config.dagger.rounds, 'DAgger round')}" if config.dagger.rounds else ""
        raise UserError(f"--resume: {out} is finished ({early or every}{rounds}): nothing to "
                        f"resume; {more}; to fly it: navigator fly --pilot {shlex.quote(str(out / 'best.pt'))}")
    _check_augmentation(out, record, flag)
    _check_state_kept(out, config, progress, flag, state)
    if extend:
        return record, progress, _extension(out, config, dagger_begun, state, more_epochs[0])
    return record, progress, None


def _check_state_kept(out: Path, config: TrainConfig, progress: ProgressFile, flag: str,
                      state: dict[str, Any] | None) -> None:
    """Refuse to continue a run whose resume state (last.pt) was deleted or replaced after its stage saved epochs:
    the stage would start over and overwrite its best.pt. A finished run (only --extend continues it) always has
    one. For a stage in progress, the evidence is best.pt of that stage at epoch 2 or later (epoch 1's last.pt was
    written by then); at epoch 1 an interruption between the two writes looks alike, and training that epoch again
    gives the same weights. `state`: last.pt's content, None without one."""
    pending = next((stage for stage in stages(config, out) if stage.name not in progress["completed"]), None)
    best_path, state_path = out / "best.pt", out / "last.pt"
    if not best_path.exists():
        return
    if pending is None:
        if state is None:
            raise UserError(f"{flag}: {state_path} is missing, and extending continues from it (a run that saved "
                            f"{best_path} saved it too): it was deleted or moved; restore it, or start the run over "
                            f"in another --out")
        return
    if state is not None and state.get("stage") == pending.name:
        return
    _, best = load_trained(best_path)
    if best.get("stage") == pending.name and isinstance(best.get("epoch"), int) and best["epoch"] >= 2:
        held = "is missing" if state is None else f"holds the run's {state.get('stage')}"
        raise UserError(f"{flag}: {best_path} holds epoch {best['epoch']} of the run's {pending.name}, but "
                        f"{state_path} {held}: the state a resume continues from was deleted or replaced, and "
                        f"{pending.name} would start over and overwrite best.pt; restore {state_path}, or start the "
                        f"run over in another --out")


def _check_augmentation(out: Path, record: dict[str, Any], flag: str) -> None:
    """Refuse to continue a run whose windows were augmented by other numbers than this version's (a run recorded
    before `augment_version` existed had version 1): it would go on training on differently augmented images."""
    started = record.get("augment_version", 1)
    if started != AUGMENT_VERSION:
        release = "an older" if started < AUGMENT_VERSION else "a newer"
        raise UserError(f"{flag}: {out} was started with training augmentation version {started}, and this "
                        f"liquid-navigator augments with version {AUGMENT_VERSION} (same settings, other random "
                        f"images), so it cannot continue the run exactly; start the run over in another --out, or "
                        f"continue it with the {release} liquid-navigator release that started it")


def stopped_early(out: Path, epochs: int, patience: int) -> str | None:
    """How the training in `out` stopped before its `epochs` ("stopped early at epoch 11 of 30: no better validation
    loss for 6 epochs"), from its saved state; None when it ran them all (or went on to DAgger rounds, whose states
    replace it)."""
    state_path = out / "last.pt"
    state = read_training_state(state_path) if state_path.exists() else None
    if state is None or state.get("stage") != "train" or state["stale"] < patience or state["epoch"] >= epochs:
        return None
    return (f"stopped early at epoch {state['epoch']} of {epochs}: no better validation loss for {patience} "
            f"epoch{'s' if patience != 1 else ''} (patience)")


def check_recipe(config: TrainConfig, resume: bool, extend: bool = False, given_as: GivenAs | None = None) -> None:
    """Every refusal of `run_recipe` before any work (a run folder that cannot hold a new run; a continuation whose
    settings, progress or datasets do not allow it), writing nothing: what a launcher checks before it starts the
    processes that will run the recipe (`navigator train --nproc`). UserError as `run_recipe` raises it."""
    out = Path(config.out)
    if resume or extend:
        _check_continue(out, config, extend, given_as or GivenAs())
    else:
        _check_new(out, config)
    training_device(config.device, distributed.current())


def _record_world_size(out: Path) -> None:
    """Add to run.json how many processes this continuation trains with. Any number may continue a run: the global
    batch (batch_size, a recorded setting) fixes what it computes, whichever number of processes shares it (up to
    float rounding)."""
    record = read_record(out)
    _write_record(out, {**record, "world_sizes": [*record.get("world_sizes", []),
                                                             distributed.world_size()]})


def dataset_fingerprint(path: Path) -> dict[str, Any]:
    """What a resumed run compares: the dataset's episode count and the sha256 of its episodes' files and content
    checksums (the manifest's), which changes with any episode added, dropped or re-recorded."""
    episodes = read_manifest(path).episodes
    listing = json.dumps(sorted([entry.file, entry.sha256] for entry in episodes)).encode("utf-8")
    return {"episodes": len(episodes), "sha256": hashlib.sha256(listing).hexdigest()}


def fingerprint_change(now: dict[str, Any], then: dict[str, Any]) -> str:
    """How a dataset's fingerprint `now` differs from `then`, in words: "12 episodes now, 10 then"."""
    if now["episodes"] != then["episodes"]:
        return f"{now['episodes']} episodes now, {then['episodes']} then"
    return f"{now['episodes']} episodes, but not the ones it had then"


# A run's datasets, as run.json records them: `data` by the path given in the recipe, `dagger` by round folder
# name inside the run folder (whose own path may be spelt differently on resume).
_DatasetKey = tuple[str, str]


def _dataset_path(out: Path, key: _DatasetKey) -> Path:
    section, name = key
    return out / "dagger" / name if section == "dagger" else Path(name)


def _recorded_datasets(record: dict[str, Any]) -> dict[_DatasetKey, dict[str, Any]]:
    """The fingerprints in a run record (none in records written before fingerprints existed), the recipe's
    datasets by `path_spelling` (one dataset typed "./datasets/night/" at the start and "datasets/night" now)."""
    sections = record.get("datasets")
    if not isinstance(sections, dict):
        return {}
    return {(section, path_spelling(name) if section == "data" else name): fingerprint
            for section in ("data", "dagger")
            for name, fingerprint in (sections.get(section) or {}).items()}


def _check_datasets(out: Path, record: dict[str, Any], flag: str = "--resume",
                    keys: list[_DatasetKey] | None = None) -> None:
    """Refuse when a dataset the run recorded (every one, or those of `keys`) changed since; record the fingerprints
    of those of `keys` not recorded yet (a stage's data, when the stage starts)."""
    recorded = _recorded_datasets(record)
    new = {}
    for key in (list(recorded) if keys is None else keys):
        path = _dataset_path(out, key)
        now = dataset_fingerprint(path)
        then = recorded.get(key)
        if then is None:
            new[key] = now
        elif now != then:
            raise UserError(f"{flag}: {path} changed since this run started ({fingerprint_change(now, then)}): resume "
                            f"needs the same data; start a new run in another --out")
    if new:
        sections = {section: {name: fp for (s, name), fp in recorded.items() if s == section}
                    for section in ("data", "dagger")}
        for (section, name), fingerprint in new.items():
            sections[section][name] = fingerprint
        _write_record(out, {**record, "datasets": sections})


def _dagger_begun(progress: ProgressFile, state: dict[str, Any] | None) -> bool:
    """Whether a run is past its first training: a DAgger round completed, or one in progress (its saved `state`)."""
    return any(stage.startswith("dagger-") for stage in progress["completed"]) or (
        state is not None and state.get("stage") != "train")


def _extension(out: Path, config: TrainConfig, dagger_begun: bool, state: dict[str, Any] | None,
               epochs: Difference) -> dict[str, Any]:
    """Refuse to extend the run in `out` once its DAgger rounds began or after it stopped early (its saved `state`);
    otherwise what run.json records of the extension: {"epochs": {"from", "to"}, "after_epoch"}."""
    if dagger_begun:
        raise UserError(f"--extend: {out} has begun its DAgger rounds after its "
                        f"{counted(epochs.recorded, 'training epoch')}; more epochs can only be added before them; "
                        f"start a new run with --epochs {epochs.given}")
    if state is not None and state["stale"] >= config.patience:
        raise UserError(f"--extend: {out} stopped early at epoch {state['epoch']}: its validation loss had not "
                        f"improved for {config.patience} epochs (patience), so more epochs would not run; start a "
                        f"new run with --epochs {epochs.given} and a larger `patience:` in its --config recipe")
    return {"epochs": {"from": epochs.recorded, "to": epochs.given},
            "after_epoch": state["epoch"] if state is not None else 0}


def _extend(out: Path, record: dict[str, Any], progress: ProgressFile, extension: dict[str, Any]) -> None:
    """Record in `out` that its first training now runs to the `extension`'s epochs, and reopen that stage."""
    _write_record(out, {**record, "config": {**record["config"], "epochs": extension["epochs"]["to"]},
                        "extensions": [*record["extensions"], extension]})
    if "train" in progress["completed"]:
        progress["completed"].remove("train")
        _write_json(out / "progress.json", progress)


def _discard_new_run(out: Path, created: tuple[Path, ...]) -> None:
    """After a new run failed before its first epoch was saved: remove what it wrote, and the folders it made while
    they are empty, so a failed run leaves no empty run folder behind. Anything else (a dataset collected into
    `out`) stays."""
    if (out / "last.pt").exists() or (out / "best.pt").exists():
        return
    for name in (RUN_RECORD, "progress.json", "history.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "tensorboard", ignore_errors=True)
    for folder in reversed(created):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def run_recipe(config: TrainConfig, resume: bool, hooks: Hooks, extend: bool = False,
               extras: TrainingExtras | None = None, given_as: GivenAs | None = None) -> Path:
    """Run the recipe in `config.out`; returns the path of the best policy checkpoint.

    resume: continue the run there, with exactly its settings. extend (implies resume): continue it with more
    epochs than it was started with, the only setting that may change. Neither: start a new run, in a folder that
    is missing or empty. `extras`: what the run changes in the plain recipe (`navigator adapt`'s strategies).
    `given_as`: how the user gave the settings, to name a setting that differs from the run's as typed."""
    out = Path(config.out)
    # A GPU this machine lacks is refused before any work (after a continuation's settings: a run continues on
    # the device it started on, which is what to say first when another is given).
    if resume or extend:
        with FolderLock(out, "training run") if out.is_dir() else nullcontext():  # before reading its state
            config = _in_recorded_spelling(out, config)
            progress = _continue(out, config, extend, given_as or GivenAs())
            training_device(config.device, distributed.current())
            if extend:  # what an evaluation or a bundle was made from is about to change under its path
                hooks.warning(f"extending {out}: its best.pt is replaced whenever the longer training validates "
                              f"better; copy it first to keep the current one")
            _run_stages(config, out, progress, hooks, extras)
    else:
        training_device(config.device, distributed.current())
        created, lock = _start_new(out, config)
        with lock:
            try:
                _run_stages(config, out, {"completed": []}, hooks, extras)
            except BaseException:
                _discard_new_run(out, created)
                raise
    load_trained(out / "best.pt")  # a damaged result is reported now, not when it is first flown
    return out / "best.pt"


def _in_recorded_spelling(out: Path, config: TrainConfig) -> TrainConfig:
    """`config` with its datasets named as the run in `out` recorded them, where the user named the same folders
    another way now (relative and absolute, "./x/"): run.json keys its datasets' fingerprints by those names."""
    try:
        recorded = json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))["config"]["data"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return config  # the continuation's own checks say what is wrong with the record
    data = recorded_paths(recorded, config.data)
    return config if data is None else dataclasses.replace(config, data=data)


def _run_stages(config: TrainConfig, out: Path, progress: ProgressFile, hooks: Hooks,
                extras: TrainingExtras | None) -> None:
    cores = usable_cpus()
    if config.threads > cores:  # said once; every stage's training uses the cores (navigator.training.loop.train)
        hooks.warning(f"threads: {config.threads} is more than the {counted(cores, 'CPU core')} this process may "
                      f"use; threads "
                      f"that share cores only wait for each other, so training uses {cores} (the result is the same)")
    progress_path = out / "progress.json"
    if config.collect is not None and "collect" not in progress["completed"]:
        collect_demonstrations(config, hooks)
        _complete(progress, "collect", progress_path)

    policy: Policy | None = None
    for round_index, stage in enumerate(stages(config, out)):
        if stage.name in progress["completed"]:
            continue
        if round_index:
            round_data = Path(stage.data[-1])
            flies = counted(config.dagger.episodes, "episode")
            hooks.stage(stage.name, f"the current policy flies {flies} per task, the expert labels them into "
                                    f"{round_data}")
            _collect_into(round_data, dagger_collect_config(config, out / "best.pt", round_index), hooks)
            policy, _ = load_trained(out / "best.pt")
        _check_datasets(out, read_record(out), keys=_dataset_keys(config, stage))
        state_path = out / "last.pt"
        saved = read_training_state(state_path).get("stage") if state_path.exists() else None
        hooks.stage(stage.name, f"{counted(stage.epochs, 'epoch')} on {counted(len(stage.data), 'dataset')}")
        _warn_if_incomplete(stage.data, hooks)
        _lead(config, stage, resume=saved == stage.name)
        train(config, out, stage, resume=saved == stage.name, hooks=hooks, initial=policy, extras=extras)
        _complete(progress, stage.name, progress_path)
    _lead(config, None, resume=False)


def _lead(config: TrainConfig, stage: Stage | None, resume: bool) -> None:
    """Under torchrun: tell the other processes (`follow_recipe`) to train `stage` alongside rank 0, or, for None,
    that the recipe is done."""
    group = distributed.current()
    if group is not None:
        group.send({"stage": None} if stage is None else {
            "stage": stage.name, "data": list(stage.data), "epochs": stage.epochs, "resume": resume,
            "config": to_dict(config), "fingerprints": [dataset_fingerprint(Path(path)) for path in stage.data]})


def follow_recipe(group: distributed.Group) -> None:
    """A torchrun process other than rank 0: train each stage rank 0 announces (`_lead`) as rank 0 trains it, until
    rank 0 says the recipe is done. It writes nothing: rank 0 checks, records, collects and saves. Waits for rank 0
    up to `distributed.LEADER_WAIT` between stages (DAgger roll-outs fly meanwhile). Refuses a dataset that differs
    from rank 0's (another copy on another machine), which would silently train on other data."""
    while (message := group.receive(distributed.LEADER_WAIT))["stage"] is not None:
        for path, fingerprint in zip(message["data"], message["fingerprints"]):
            if dataset_fingerprint(Path(path)) != fingerprint:
                raise UserError(f"{path} on this machine is not the dataset rank 0 trains on (other episodes); "
                                f"every machine needs the same dataset at the same path")
        config = from_dict(TrainConfig, message["config"])
        train(config, Path(config.out), Stage(message["stage"], tuple(message["data"]), message["epochs"]),
              resume=message["resume"])


def _dataset_keys(config: TrainConfig, stage: Stage) -> list[_DatasetKey]:
    """How run.json names a stage's datasets: the recipe's by their path, the DAgger rounds' by their folder name."""
    rounds = stage.data[len(config.data):]
    return [("data", path_spelling(path)) for path in config.data] + [("dagger", Path(path).name) for path in rounds]


def _warn_if_incomplete(data: tuple[str, ...], hooks: Hooks) -> None:
    """Training on a collection that stopped early is allowed (it is sound data), but the user should know."""
    for folder in data:
        found = completeness(read_manifest(Path(folder)))
        if not found.complete:
            hooks.warning(f"{folder}: {found.message(folder)}")


def _complete(progress: ProgressFile, stage: str, path: Path) -> None:
    progress["completed"].append(stage)
    _write_json(path, progress)
