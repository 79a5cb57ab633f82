"""One adaptation from settings to checkpoint: resolve and check the starting policy, refuse new (or replayed) data
that it could not learn from, build the training recipe, and run it through the training pipeline with the
strategy's extras (`navigator.training.pipeline.run_recipe`: run.json, progress, strict resume, dataset fingerprints).

Everything is checked before any work: a pilot that is no trainable checkpoint, data recorded with another camera,
airframe or task than the policy's, a replay strategy without old data or replaying the new data, an --out that holds
something else; and on resume, settings or a starting checkpoint that changed since the run started.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

from navigator.adapt.config import (
    SHIPPED_OLD_DATA,
    AdaptConfig,
    AdaptTrainConfig,
    recorded_adaptation,
)
from navigator.config import to_dict
from navigator.dataset import file_sha256, open_datasets, read_manifest
from navigator.dataset.reader import require_episodes
from navigator.errors import UserError, counted, refuse_if_denied
from navigator.json_fields import read_problem
from navigator.resume import Difference, describe, differences, nothing_to_continue, relative_path_advice
from navigator.training import pipeline as training
from navigator.training.run_record import finished


def start_checkpoint(config: AdaptConfig, given_as: str = "--pilot") -> Path:
    """The checkpoint the adaptation starts from: the shipped policy of config.task for `pretrained`. `given_as`
    names where the user gave the pilot, in a refusal ("--pilot", or "pilot in curve.yaml")."""
    from navigator.pilots import pretrained_checkpoint

    if config.pilot.strip().lower() == "pretrained":
        return pretrained_checkpoint(config.task)
    path = Path(config.pilot)
    if not path.is_file():
        raise UserError(f"{given_as} {path} does not exist; give pretrained or the path of a policy checkpoint "
                        f"(.pt), e.g. runs/NAME/best.pt")
    return path


def policy_scenario(policy, metadata: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[str]]:
    """What a checkpoint flies: its camera (CAMERA_SETTINGS; the image spec's size and field of view where the
    checkpoint records none), airframe (None: not recorded) and tasks (from its training seeds)."""
    from navigator.pilots import CAMERA_SETTINGS

    spec = policy.config.image
    camera = {"width": spec.input_width, "height": spec.input_height, "fov_deg": spec.input_hfov_deg,
              **{k: v for k, v in (metadata.get("camera") or {}).items() if k in CAMERA_SETTINGS}}
    tasks = sorted({r.get("task") for r in metadata.get("training_seeds") or [] if r.get("task")})
    return camera, metadata.get("airframe"), tasks


def check_data(paths: tuple[str, ...], flag: str, pilot: str, camera: dict[str, Any], airframe: str | None,
               tasks: list[str]) -> None:
    """Refuse, naming the fix, a dataset of `paths` (given as `flag`) that holds no episodes, or whose episodes were
    recorded with another camera, airframe or task than the policy (`pilot`) flies."""
    from navigator.pilots import CAMERA_SETTINGS
    from navigator.scenario import canonical_task

    for path in paths:
        if not Path(path).exists():
            raise UserError(f"{flag} {path} does not exist{relative_path_advice(path)}: restore it, or record it "
                            f"again with navigator collect --out {path} and the settings it was recorded with (a "
                            f"policy's own demonstrations: its training recipe collects them)")
    datasets = open_datasets([Path(p) for p in paths])
    require_episodes(datasets, flag)
    for dataset in datasets:
        recorded = dataset.read(dataset.entries[0], verify=False).metadata
        theirs = recorded.get("camera") or {}
        differing = [k for k in CAMERA_SETTINGS if k in theirs and k in camera
                     and not math.isclose(float(theirs[k]), float(camera[k]), rel_tol=1e-9, abs_tol=1e-9)]
        if differing:
            listed = ", ".join(f"{k} {theirs[k]} (the policy's {camera[k]})" for k in differing)
            fix = ", ".join(f"{k}: {camera[k]}" for k in differing)
            raise UserError(f"{flag} {dataset.path} was recorded with another camera than {pilot} flies: {listed}; "
                            f"record the new data with the policy's camera (navigator collect --config FILE with "
                            f"camera: {{{fix}}}), or adapt a policy trained on this camera")
        if airframe is not None and recorded.get("airframe") != airframe:
            raise UserError(f"{flag} {dataset.path} was recorded on the {recorded.get('airframe')} airframe, but "
                            f"{pilot} flies the {airframe}: its actions are scaled by that airframe's limits; record "
                            f"the data with navigator collect --airframe {airframe}")
        other = sorted({canonical_task(e.task) for e in dataset.entries} - set(tasks)) if tasks else []
        if other:
            raise UserError(f"{flag} {dataset.path} holds {' and '.join(other)} demonstrations, but {pilot} was "
                            f"trained on {' and '.join(tasks)}: record {tasks[0]} demonstrations (navigator collect "
                            f"--task {tasks[0]}), or adapt a policy of {other[0]} (--task {other[0]})")


def check_replay_is_old(data: tuple[str, ...], replay: tuple[str, ...]) -> None:
    """Refuse a dataset given both as new data and as old data to replay, however it is spelt (folders compared by
    device and inode, as `require_distinct` compares --data): its episodes would be replayed as what the policy
    must not forget, and the replay strategy would be fine-tuning on the new data twice over."""
    for old in map(Path, replay):
        for new in map(Path, data):
            if old.is_dir() and new.is_dir() and old.samefile(new):
                same = f"--replay {old} is also given as --data" if str(old) == str(new) else (
                    f"--replay {old} and --data {new} are the same dataset folder")
                raise UserError(f"{same}: it would replay the new demonstrations as the old ones; give the data the "
                                f"policy was trained on as --replay ({SHIPPED_OLD_DATA})")


def check_data_is_new(data: tuple[str, ...], metadata: dict[str, Any], pilot: str) -> None:
    """Refuse new data flown on worlds the policy (`pilot`, whose checkpoint `metadata` records its training seeds)
    was trained on, as the learning curve does (its collect_seed): the same world seeds are the same layouts (in
    another light, the same trees and target), so what it learns there is partly what it knows, and an evaluation
    could not tell the two apart. Its own training data is the plainest case."""
    from navigator.evaluation.seeds import seed_span, training_seeds

    known = training_seeds(metadata).ranges
    for path in data:
        for flown in read_manifest(Path(path)).seed_ranges():
            seeds = range(flown["first"], flown["first"] + flown["count"])
            for trained in known:
                shared = trained.overlap(flown["task"], seeds)
                if shared:
                    raise UserError(f"--data {path} flies {flown['task']} {seed_span(shared, 'world')}, which "
                                    f"{pilot} was trained on ({trained.source}, as its checkpoint records): adapting "
                                    f"on them teaches it worlds it knows; record demonstrations in the new "
                                    f"surroundings on seeds it was not trained on (navigator collect --preset PRESET "
                                    f"--seed S) and give those")


def data_presets(paths: tuple[str, ...]) -> list[str]:
    """The presets (sceneries; suite names for navigator eval) of the episodes of datasets `paths`, in the order
    first met."""
    presets: list[str] = []
    for path in paths:
        presets += [e.preset for e in read_manifest(Path(path)).episodes if e.preset not in presets]
    return presets


def prepare(config: AdaptConfig, resume: bool = False) -> AdaptTrainConfig:
    """The checked training recipe of `config`, before any work (see the module's docstring). Resuming, the new data
    was checked when the adaptation started, and a changed starting checkpoint is said by `check_resumable`."""
    start = start_checkpoint(config)
    policy, metadata = training.load_trained(start)
    camera, airframe, tasks = policy_scenario(policy, metadata)
    shown = config.pilot if config.pilot.strip().lower() != "pretrained" else f"pretrained ({start})"
    check_data(config.data, "--data", shown, camera, airframe, tasks)
    check_data(config.replay, "--replay", shown, camera, airframe, tasks)
    check_replay_is_old(config.data, config.replay)
    if not resume:
        check_data_is_new(config.data, metadata, shown)
    model = {"model": policy.config.model, "normalisation": policy.config.image.normalisation,
             "feature_size": policy.config.feature_size, "head_size": policy.config.head_size}
    return config.recipe(str(start), file_sha256(start), model, metadata.get("train_config"))


def check_resumable(config: AdaptConfig, recipe: AdaptTrainConfig) -> None:
    """On --resume: refuse settings that differ from the run's (named in adapt's terms), and a starting checkpoint
    whose file changed since the run started."""
    out = Path(config.out)
    record = out / training.RUN_RECORD
    if not record.is_file():
        raise nothing_to_continue(out, "--resume", "adaptation", training.RUN_RECORD)
    recorded = read_run_config(record)
    if not isinstance(recorded.get("adapt"), dict):
        raise UserError(f"--resume: {out} holds a training run, not an adaptation; continue it with navigator train "
                        f"--out {shlex.quote(str(out))} --resume")
    given = {name: value for name, value in recorded_adaptation(to_dict(recipe)).items() if name != "out"}
    refuse_changed(out, differences({k: v for k, v in recorded_adaptation(recorded).items() if k != "out"}, given))
    if finished(out, recipe.dagger.rounds):
        rounds = f" and {counted(recipe.dagger.rounds, 'DAgger round')}" if recipe.dagger.rounds else ""
        early = training.stopped_early(out, recipe.epochs, recipe.patience)
        every = "its one epoch trained" if recipe.epochs == 1 else f"all {recipe.epochs} epochs trained"
        longer = "" if early else "; to train longer, adapt again in another --out with a larger --epochs"
        raise UserError(f"--resume: {out} is finished ({early or every}{rounds}): nothing to "
                        f"resume; to fly it: navigator fly --pilot {shlex.quote(str(out / 'best.pt'))}{longer}")
    if recorded["adapt"].get("start_sha256") != recipe.adapt.start_sha256:
        raise UserError(f"--resume: the starting checkpoint {recipe.adapt.start} changed since {out} started (its "
                        f"sha256 was {str(recorded['adapt'].get('start_sha256'))[:12]}): resuming would continue "
                        f"another policy; restore it, or adapt again in another --out")


def refuse_changed(out: Path, found: list[Difference]) -> None:
    """On --resume: refuse, naming each, settings that differ from those the run in `out` recorded."""
    if found:
        raise UserError(f"--resume: {out} was adapted with other settings: {describe(found, 'run')}; drop the flags "
                        f"that differ (the run's settings are read from {out / training.RUN_RECORD}), or choose "
                        f"another --out")


def read_run_config(record: Path) -> dict[str, Any]:
    """The settings a run's record (run.json) holds."""
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        refuse_if_denied(error)
        raise UserError(f"--resume: cannot read {record} ({read_problem(error)}); adapt again in another "
                        f"--out") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise UserError(f"--resume: {record} records no settings; adapt again in another --out")
    return config


def adapt(config: AdaptConfig, resume: bool, hooks: training.Hooks | None = None) -> Path:
    """Adapt the starting policy of `config` in config.out (or, `resume`, continue the adaptation there); returns
    the adapted best.pt. UserError before any work for anything the module's docstring lists."""
    from navigator.adapt.strategies import Strategy

    recipe = prepare(config, resume)
    if resume:
        check_resumable(config, recipe)
    return training.run_recipe(recipe, resume, hooks or training.Hooks(), extras=Strategy(recipe))
