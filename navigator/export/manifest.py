"""policy.json, the manifest of a bundle: what the onboard runtime, `navigator fly/eval` and a person need to know to
fly the graph beside it, and where it came from.

Fields (schema version `navigator.onboard.bundle.SCHEMA_VERSION`):
  schema_version, format     what reads it: `navigator.onboard.bundle.load_bundle` refuses any other version
  model, policy_config       the model's name and the full PolicyConfig the checkpoint was built from
  parameter_counts           trainable parameters: cnn, head, total
  task, airframe             what it was trained and verified on
  image                      preprocessing (policies.preprocessing.ImageSpec.to_dict): the trained camera's size and
                             horizontal field of view (input_*), the policy's input size and field of view (output_*),
                             the normalisation, done inside the graph on uint8 frames
  camera                     the trained camera: width, height, fov_deg, tilt_deg (up), rate_hz
  rate_hz, dt                the policy's step rate and its period in seconds
  action                     fields [vx, vy, vz, yaw_rate], units, frame: heading-frame FLU normalised to [-1, 1]
  action_limits              vx, vy, vz m/s and yaw_rate rad/s: an action of 1 is that much
  state_fields               the state vector's components, in order
  hidden                     [{name, size}] in graph order: inputs `<name>_in`, outputs `<name>_out`, shape (B, size)
  onnx                       file, sha256, bytes, opset, inputs and outputs (names), precision ("float32" | "int8")
  source                     checkpoint (file name), checkpoint_sha256 (of its bytes), stage, val_loss, datasets,
                             training_seeds ({ranges: [{task, first, count, source}], complete}), recipe ({model,
                             seed, sha256} or null), commit (the training's), exported_by ({version, commit})
  verification               the closed-loop check export ran: task, preset, seeds, episodes, steps, successes,
                             max_action_diff (ONNX Runtime vs PyTorch), tolerance
  quantization               null, or for an int8 bundle: method, max_action_diff (int8 vs PyTorch on the recorded
                             steps), episodes, seeds, success_rate_float, success_rate_int8, success_difference
  evaluation                 null, or the evaluation found beside the checkpoint (results.json whose pilot is this
                             checkpoint): source, task, episodes per suite, first seed, suites [{suite, episodes,
                             successes, success_rate, success_interval}]
  manifest_sha256            the sha256 of all the fields above as canonical JSON (sorted keys, no spaces;
                             navigator.onboard.bundle.manifest_checksum): a runtime refuses a policy.json changed after
                             export
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from navigator import __version__
from navigator.evaluation.groups import checkpoint_recipe
from navigator.errors import refuse_if_denied
from navigator.evaluation.seeds import training_seeds
from navigator.onboard.bundle import ACTION_FIELDS, FORMAT, GRAPH_NAME, SCHEMA_VERSION
from policies.policy import Policy
from sim_envs.description import EnvDescription

ACTION_UNITS = ("m/s", "m/s", "m/s", "rad/s")


def build_manifest(policy: Policy, metadata: dict[str, Any], checkpoint: Path, checkpoint_sha256: str,
                   description: EnvDescription, graph: dict[str, Any], exporter_commit: str | None,
                   evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """policy.json before verification: `graph` is the `onnx` section (`graph_record`); `verification` and
    `quantization` are added by the pipeline."""
    seeds = training_seeds(metadata)
    recipe = checkpoint_recipe(metadata)
    return {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT,
        "model": policy.config.model,
        "policy_config": policy.config.to_dict(),
        "parameter_counts": policy.parameter_counts(),
        "task": description.task,
        "airframe": description.airframe,
        "image": policy.config.image.to_dict(),
        "camera": description.camera.to_dict(),
        "rate_hz": description.camera.rate_hz,
        "dt": description.dt,
        "action": {"fields": list(ACTION_FIELDS), "units": list(ACTION_UNITS),
                   "frame": "heading-frame FLU (x forward, y left, z up, yaw counter-clockwise), normalised to "
                            "[-1, 1]: multiply by action_limits"},
        "action_limits": asdict(description.action_limits),
        "state_fields": list(description.state_fields),
        "hidden": [{"name": name, "size": shape[1]} for name, shape in policy.hidden_shapes().items()],
        "onnx": graph,
        "source": {
            "checkpoint": checkpoint.name,
            "checkpoint_sha256": checkpoint_sha256,
            "stage": metadata.get("stage"),
            "val_loss": metadata.get("val_loss"),
            "datasets": list(metadata.get("data") or []),
            "training_seeds": {"ranges": [asdict(r) for r in seeds.ranges], "complete": seeds.complete},
            "recipe": None if recipe is None else asdict(recipe),
            "commit": metadata.get("commit"),
            "exported_by": {"version": __version__, "commit": exporter_commit},
        },
        "verification": None,
        "quantization": None,
        "evaluation": evaluation,
    }


def graph_record(data: bytes, sha256: str, opset: int, inputs: tuple[str, ...], outputs: tuple[str, ...],
                 precision: str) -> dict[str, Any]:
    """The manifest's `onnx` section for serialised graph `data`."""
    return {"file": GRAPH_NAME, "sha256": sha256, "bytes": len(data), "opset": opset, "inputs": list(inputs),
            "outputs": list(outputs), "precision": precision}


def find_evaluation(folders: list[Path], checkpoint_sha256: str) -> dict[str, Any] | None:
    """The summary of the first `navigator eval` results.json in `folders` (each folder itself, then its
    subfolders) that evaluated the checkpoint of sha256 `checkpoint_sha256`; None if there is none."""
    candidates = [path for folder in folders if folder.is_dir()
                  for path in (folder / "results.json", *sorted(folder.glob("*/results.json"))) if path.is_file()]
    for path in candidates:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            pilot = next((p["spec"] for p in results["pilots"] if p.get("checkpoint_sha256") == checkpoint_sha256),
                         None)
            if pilot is None:
                continue
            settings = results["settings"]
            return {"source": _shown(path), "task": settings["task"], "episodes": settings["episodes"],
                    "seed": settings["seed"],
                    "suites": [{key: s[key] for key in ("suite", "episodes", "successes", "success_rate",
                                                        "success_interval")}
                               for s in results["summaries"] if s["pilot"] == pilot]}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            refuse_if_denied(error)
            continue  # not an evaluation's results: not this checkpoint's summary
    return None


def _shown(path: Path) -> str:
    """`path` relative to the working folder when it is inside it (a committed bundle names no one's home)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
