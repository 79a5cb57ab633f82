"""`navigator export` from a checkpoint to a verified bundle folder: check the request, export the graph, fly and
replay the verification episodes, optionally quantise and measure, then move the finished folder into place.

The bundle is assembled in a temporary folder beside `out` and renamed into place only once every check passed:
a failed or interrupted export leaves nothing at `out` (and with --overwrite, the bundle that was there stays until the
new one replaces it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.config import MAX_SEED, check_seed_span, check_settings, setting
from navigator.dataset.atomic import atomic_write_bytes, fsync_folder, temporary_name
from navigator.errors import UserError, counted
from navigator.export.verify import Recording, record_episodes, replay
from navigator.onboard.bundle import FORMAT, GRAPH_NAME, MANIFEST_NAME, BundlePolicy, load_bundle, sealed
from navigator.scenario import HELD_OUT_SEED, canonical_task, set_canonical

TOLERANCE = 1e-4  # the largest action difference (normalised units) allowed between ONNX Runtime and PyTorch
QUANTIZATIONS = ("int8",)
VERIFICATION_PRESET = "summer"  # the training scenery: verification checks the graph, not generalisation


class VerificationError(Exception):
    """The exported graph does not act as the PyTorch policy does (a verdict about the export, not bad input)."""


# Export keeps every verification episode's frames in memory to replay them (8 MB for a 30 s fly-to-target episode,
# 20 MB for a 75 s hike one): a hundred (2 GB at worst) fit a workstation, and more would prove nothing ten do not.
MAX_VERIFY_EPISODES = 100


def bundle_folder(out: str | Path) -> Path:
    """--out as a Path; ValueError for a value that names no folder of its own: empty, or the current folder, one above
    it or the root ('.', '..', 'a/..', '/'), which a finished bundle cannot be renamed into place as (nor should
    --overwrite replace)."""
    if not str(out).strip():
        raise ValueError("must name the bundle's folder, e.g. bundles/NAME, got an empty value")
    path = Path(out)
    if path.name in ("", ".."):
        raise ValueError(f"must name the bundle's own folder, e.g. bundles/NAME, got {str(out)!r} (the current folder, "
                         f"one above it or the root, which a bundle cannot replace)")
    return path


@dataclass(frozen=True)
class ExportRequest:
    """checkpoint: a checkpoint path or "pretrained" (the shipped policy of `task`); task: the task to verify on
    (None: the one the checkpoint was trained on; fly-to-target for "pretrained"); out: the bundle folder;
    quantize: None or "int8"; verify_episodes: closed-loop episodes flown to verify (and, int8, to compare
    success); seed: the first of their world seeds; overwrite: replace an existing bundle at `out`. Values are checked
    when it is built (a SettingError naming the field; `navigator export` names the option)."""

    checkpoint: str
    out: str | Path  # a Path once built; a string (from --out) is checked as typed, before Path("") makes it "."
    task: str | None = None
    quantize: str | None = None
    verify_episodes: int = setting(3, ge=1, le=MAX_VERIFY_EPISODES)
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_settings(self)
        check_seed_span(self.seed, self.verify_episodes, "seed", "verify_episodes")
        set_canonical(self, "out", bundle_folder)
        if self.task is not None:
            set_canonical(self, "task", canonical_task)


class Hooks:
    """What the command shows while the export runs (the pipeline itself prints nothing)."""

    def stage(self, text: str) -> None: ...

    def episode(self, text: str) -> None: ...


@dataclass(frozen=True)
class _Source:
    path: Path
    policy: Any  # policies.policy.Policy
    metadata: dict[str, Any]
    task: str
    shipped: bool


def _load_source(request: ExportRequest) -> _Source:
    """The checkpoint and the task to verify on; UserError for a bad path or a file that is no checkpoint."""
    from navigator.pilots import pretrained_checkpoint
    from policies.checkpoint import load_checkpoint

    task = request.task
    shipped = request.checkpoint.strip().lower() == "pretrained"
    path = pretrained_checkpoint(task or "fly-to-target") if shipped else Path(request.checkpoint)
    if not shipped and not path.is_file():
        raise UserError(f"--checkpoint {path} {'is a folder' if path.is_dir() else 'does not exist'}: give a policy "
                        f"checkpoint (.pt) written by navigator train, e.g. runs/NAME/best.pt, or pretrained")
    try:
        policy, metadata = load_checkpoint(path)
    except (OSError, ValueError) as error:
        raise UserError(str(error)) from None
    if task is None:
        trained = sorted({r.get("task") for r in metadata.get("training_seeds") or [] if r.get("task")})
        task = trained[0] if trained else "fly-to-target"
    return _Source(path, policy, metadata, task, shipped)


BUNDLE_FILES = (MANIFEST_NAME, GRAPH_NAME)  # all a bundle folder holds: --overwrite replaces these and nothing else


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an --out that exists (an empty folder is taken as every command takes one; with
    --overwrite, a bundle holding nothing but its own files: nothing of the user's is ever deleted) or that could not
    be written."""
    from navigator.commands.common import check_output_folder

    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        check_output_folder(out, "--out", continuing=False)
    elif out.exists() or out.is_symlink():
        # What is there is said first: --overwrite is offered only where it would work
        if out.is_symlink() or not out.is_dir():
            raise UserError(f"--out {out} exists and is not a bundle folder (--overwrite replaces only a bundle); "
                            f"choose another name")
        names = sorted(p.name for p in out.iterdir())
        if names and not _is_bundle_manifest(out / MANIFEST_NAME):
            raise UserError(f"--out {out} exists and is not a bundle (no {MANIFEST_NAME} written by navigator "
                            f"export; --overwrite replaces only a bundle): choose another name")
        if not overwrite:
            raise UserError(f"--out {out} already holds a bundle; pass --overwrite to replace it, or choose another "
                            f"name")
        others = [name for name in names if name not in BUNDLE_FILES]
        if others:
            raise UserError(f"--out {out} holds files that are not the bundle's ({', '.join(others)}): --overwrite "
                            f"replaces only {' and '.join(BUNDLE_FILES)} and would lose them; move them elsewhere "
                            f"or choose another --out")
        check_output_folder(out.parent, "--out", continuing=True)
    else:
        check_output_folder(out, "--out", continuing=False)


def _is_bundle_manifest(path: Path) -> bool:
    """Whether `path` is a policy.json navigator export wrote (a file of that name may be anything of the user's)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _scenario(source: _Source):
    """The scenario the checkpoint was trained for: its task, airframe and camera, in the training scenery."""
    from navigator.pilots import CAMERA_SETTINGS
    from navigator.scenario import CameraSettings, ScenarioConfig

    spec = source.policy.config.image
    camera = {"width": spec.input_width, "height": spec.input_height, "fov_deg": spec.input_hfov_deg,
              **{k: v for k, v in (source.metadata.get("camera") or {}).items() if k in CAMERA_SETTINGS}}
    return ScenarioConfig(task=source.task, preset=VERIFICATION_PRESET,
                          airframe=source.metadata.get("airframe") or "x500", camera=CameraSettings(**camera))


def export_bundle(request: ExportRequest, hooks: Hooks | None = None) -> dict[str, Any]:
    """Write the verified bundle of `request` to `request.out`; returns its manifest. UserError (before any work)
    for a bad request; VerificationError (nothing written) when ONNX Runtime and PyTorch act differently."""
    from navigator.evaluation.seeds import check_no_overlap, training_seeds
    from navigator.export.graph import export_graph, graph_opset
    from navigator.export.manifest import build_manifest, find_evaluation, graph_record
    from navigator.pilots import CheckpointPilot
    from navigator.scenario import make_scenario_env
    from navigator.training.loop import git_commit

    hooks = hooks or Hooks()
    if request.quantize is not None and request.quantize not in QUANTIZATIONS:
        raise UserError(f"--quantize {request.quantize!r} is not supported; choose one of {', '.join(QUANTIZATIONS)}")
    out = Path(request.out)
    source = _load_source(request)
    _check_out(out, request.overwrite)
    seeds = range(request.seed, request.seed + request.verify_episodes)
    check_no_overlap(f"checkpoint {source.path}", training_seeds(source.metadata), source.task, seeds,
                     flights="the export's verification flights")

    checkpoint_sha256 = hashlib.sha256(source.path.read_bytes()).hexdigest()
    folders = [source.path.parent]
    if source.shipped:  # the shipped policies' evaluations live in the repository's reports/
        folders.append(source.path.parents[2] / "reports" / f"shipped-{source.task}")
    evaluation = find_evaluation(folders, checkpoint_sha256)

    env = make_scenario_env(_scenario(source))
    staging = temporary_name(out)
    try:
        pilot = CheckpointPilot(source.path, env)  # refuses a checkpoint of another task before any work
        hooks.stage("exporting the single-step graph")
        graph = export_graph(source.policy)
        description = env.unwrapped.description()
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        inputs, outputs = _names(source.policy)
        manifest = build_manifest(source.policy, source.metadata, source.path, checkpoint_sha256, description,
                                  graph_record(graph, _sha256(graph), graph_opset(graph), inputs, outputs, "float32"),
                                  git_commit(), evaluation)
        _write(staging, graph, manifest)

        hooks.stage(f"flying {counted(len(seeds), 'verification episode')} in PyTorch ({source.task}, "
                    f"{VERIFICATION_PRESET})")
        recordings = record_episodes(
            env, pilot, source.policy.config.image, seeds,
            lambda r: hooks.episode(f"seed {r.seed}: {r.ending}, {len(r.actions)} steps"))
        hooks.stage("replaying them through ONNX Runtime")
        difference = replay(BundlePolicy(load_bundle(staging)), recordings)
        steps = sum(len(r.actions) for r in recordings)
        if not difference <= TOLERANCE:
            raise VerificationError(
                f"the exported graph's actions differ from PyTorch's by up to {difference:.3g} (tolerance "
                f"{TOLERANCE:g}) over {steps} steps of {counted(len(recordings), 'episode')}: the export is wrong, "
                f"nothing was written to {out}; please report it with the checkpoint")
        manifest["verification"] = {"task": source.task, "preset": VERIFICATION_PRESET, "seeds": list(seeds),
                                    "episodes": len(recordings), "steps": steps,
                                    "successes": sum(r.success for r in recordings),
                                    "max_action_diff": difference, "tolerance": TOLERANCE}
        if request.quantize == "int8":
            manifest = _quantize(staging, graph, manifest, recordings, env, hooks)
        _write(staging, None, manifest)
        _move_into_place(staging, out)
    finally:
        env.close()
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _names(policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from policies.policy import PolicyStep

    step = PolicyStep(policy)
    return step.input_names, step.output_names


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(folder: Path, graph: bytes | None, manifest: dict[str, Any]) -> None:
    if graph is not None:
        atomic_write_bytes(folder / GRAPH_NAME, graph)
    atomic_write_bytes(folder / MANIFEST_NAME,
                       (json.dumps(sealed(manifest), indent=2, allow_nan=False) + "\n").encode())


def _quantize(staging: Path, graph: bytes, manifest: dict[str, Any], recordings: Sequence[Recording], env,
              hooks: Hooks) -> dict[str, Any]:
    """Replace the staged float graph by its int8 version; measure its action difference on the recorded steps and
    its closed-loop success on the verification seeds against the float policy's (the verification flights, which
    the float graph reproduces to TOLERANCE)."""
    from navigator.export.graph import graph_opset
    from navigator.export.manifest import graph_record
    from navigator.export.quantize import METHOD, quantize_int8
    from navigator.pilots import BundlePilot
    from navigator.rollout import run_episode

    hooks.stage("quantising to int8")
    quantized = quantize_int8(graph)
    onnx = manifest["onnx"]
    manifest = {**manifest, "onnx": graph_record(quantized, _sha256(quantized), graph_opset(quantized),
                                                 tuple(onnx["inputs"]), tuple(onnx["outputs"]), "int8")}
    _write(staging, quantized, manifest)
    difference = replay(BundlePolicy(load_bundle(staging)), recordings)
    hooks.stage(f"flying the int8 graph on the same {len(recordings)} seeds")
    pilot = BundlePilot(staging, env)
    successes = 0
    for recording in recordings:
        result = run_episode(env, pilot, recording.seed)
        successes += result.success
        hooks.episode(f"seed {recording.seed}: {result.ending} (float: {recording.ending})")
    float_rate = sum(r.success for r in recordings) / len(recordings)
    int8_rate = successes / len(recordings)
    manifest["quantization"] = {"method": METHOD, "max_action_diff": difference if math.isfinite(difference) else None,
                                "episodes": len(recordings), "seeds": [r.seed for r in recordings],
                                "success_rate_float": float_rate, "success_rate_int8": int8_rate,
                                "success_difference": int8_rate - float_rate}
    return manifest


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished bundle to `out`; an existing bundle there (--overwrite) is moved aside first and its files
    removed after, so that `out` is at every moment the old bundle, the new one, or (between two renames) absent."""
    previous = None
    if out.exists():
        previous = temporary_name(out)
        os.replace(out, previous)
    os.replace(staging, out)
    fsync_folder(out.parent)
    if previous is not None:
        # Only the bundle's own files (all _check_out let it hold): os.rmdir fails rather than delete a file the user
        # put there during the export, which stays in the moved-aside folder.
        for name in BUNDLE_FILES:
            (previous / name).unlink(missing_ok=True)
        os.rmdir(previous)
