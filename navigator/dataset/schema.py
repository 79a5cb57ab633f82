"""The episode contract in one place: field names, dtypes, shapes, required metadata, and the checks that apply them.

The writer, the reader and `navigator data check` all validate through `episode_problems`, so a file the writer
accepts is exactly a file the reader and the checker accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from navigator.json_fields import show

FORMAT_NAME = "liquid-navigator-demonstrations"
SCHEMA_VERSION = 1
ACTION_CONVENTION = "flu-heading-normalised-v1"
ENDINGS = ("success", "collision", "out_of_bounds", "flipped", "lost", "timeout", "physics_error")
STATE_NAMES = ("vx", "vy", "vz", "roll", "pitch", "yaw_rate", "height")
ACTION_NAMES = ("vx", "vy", "vz", "yaw_rate")
# Normalised actions are clipped to [-1, 1]; the slack admits float32 rounding of values computed at the limit.
ACTION_BOUND = 1.0 + 1e-5


@dataclass(frozen=True)
class FieldSpec:
    """dtypes allowed for one per-frame array and its shape after the leading T axis (None: any size)."""

    dtypes: tuple[np.dtype, ...]
    tail: tuple[int | None, ...]

    def describe(self) -> str:
        shape = "(" + ", ".join(["T", *("any" if d is None else str(d) for d in self.tail)]) + ")"
        return f"{'/'.join(d.name for d in self.dtypes)} {shape}"


F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
FIELDS: dict[str, FieldSpec] = {
    "images": FieldSpec((np.dtype(np.uint8),), (None, None, 3)),
    "state": FieldSpec((F32,), (len(STATE_NAMES),)),
    "action_label": FieldSpec((F32,), (len(ACTION_NAMES),)),
    "action_executed": FieldSpec((F32,), (len(ACTION_NAMES),)),
    "dt": FieldSpec((F32,), ()),
    "timestamp": FieldSpec((F64,), ()),
}
# The privileged quantities every task provides for metrics; tasks may add more (any float array with leading T).
REQUIRED_PRIVILEGED: dict[str, FieldSpec] = {
    "position": FieldSpec((F32, F64), (3,)),
    "velocity": FieldSpec((F32, F64), (3,)),
    "yaw": FieldSpec((F32, F64), ()),
    "target_position": FieldSpec((F32, F64), (3,)),
    "target_distance": FieldSpec((F32, F64), ()),
}
EXTRA_PRIVILEGED = FieldSpec((F32, F64), ())  # dtype rule for extras; their tail shape is free
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+.")


def _shape_problem(name: str, array: np.ndarray, spec: FieldSpec, frames: int, check_tail: bool = True) -> str | None:
    if array.dtype not in spec.dtypes:
        return f"{name} has dtype {array.dtype}, expected {spec.describe()}"
    if array.ndim == 0 or array.shape[0] != frames:
        return f"{name} has shape {array.shape}, expected {frames} frames (the length of images)"
    if check_tail:
        tail = array.shape[1:]
        if len(tail) != len(spec.tail) or any(want is not None and got != want
                                              for got, want in zip(tail, spec.tail, strict=True)):
            return f"{name} has shape {array.shape}, expected {spec.describe()}"
    return None


def check_name(kind: str, value: Any) -> str | None:
    """A task or preset name must be a non-empty string usable in a file name."""
    if not isinstance(value, str) or not value or not set(value) <= NAME_CHARS or value.startswith("."):
        return f"metadata {kind} must be a non-empty name of letters, digits and _-+. (got {show(value)})"
    return None


def metadata_problems(metadata: Any) -> list[str]:
    """What is wrong with an episode's metadata (the keys the manifest, merging and metrics rely on)."""
    if not isinstance(metadata, Mapping):
        return [f"metadata must be a mapping, got {type(metadata).__name__}"]
    names = (check_name("task", metadata.get("task")), check_name("preset", metadata.get("preset")))
    problems = [problem for problem in names if problem]
    seed = metadata.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(f"metadata seed must be a non-negative integer (got {show(seed)})")
    convention = metadata.get("action_convention")
    if not isinstance(convention, str) or not convention:
        problems.append(f"metadata action_convention must be a non-empty string (got {show(convention)})")
    camera = metadata.get("camera")
    if not isinstance(camera, Mapping) or not all(isinstance(camera.get(k), int) for k in ("width", "height")):
        problems.append("metadata camera must hold integer width and height")
    outcome = metadata.get("outcome")
    if not isinstance(outcome, Mapping):
        problems.append("metadata outcome must be a mapping with ending and success")
    else:
        if outcome.get("ending") not in ENDINGS:
            problems.append(f"metadata outcome.ending must be one of {', '.join(ENDINGS)} "
                            f"(got {show(outcome.get('ending'))})")
        if not isinstance(outcome.get("success"), bool):
            problems.append(f"metadata outcome.success must be true or false (got {show(outcome.get('success'))})")
    return problems


def episode_problems(arrays: Mapping[str, np.ndarray], privileged: Mapping[str, np.ndarray],
                     metadata: Any) -> list[str]:
    """Every way in which these arrays and metadata break the episode contract (empty when they keep it)."""
    problems: list[str] = []
    missing = [name for name in FIELDS if name not in arrays]
    problems += [f"array {name} is missing" for name in missing]
    unknown = sorted(set(arrays) - set(FIELDS))
    problems += [f"unexpected array {name} (extra quantities belong in privileged/)" for name in unknown]
    images = arrays.get("images")
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[0] < 1:
        if "images" not in missing:
            shape = getattr(images, "shape", None)
            problems.append(f"images has shape {shape}, expected (T, H, W, 3) with T >= 1")
        return problems + metadata_problems(metadata)
    frames = images.shape[0]
    for name, spec in FIELDS.items():
        if name in arrays:
            problem = _shape_problem(name, np.asarray(arrays[name]), spec, frames)
            problems += [problem] if problem else []
    for name, spec in REQUIRED_PRIVILEGED.items():
        if name not in privileged:
            problems.append(f"privileged/{name} is missing")
            continue
        problem = _shape_problem(f"privileged/{name}", np.asarray(privileged[name]), spec, frames)
        problems += [problem] if problem else []
    for name in sorted(set(privileged) - set(REQUIRED_PRIVILEGED)):
        if not name or not set(name) <= NAME_CHARS:
            problems.append(f"privileged name {name!r} must use letters, digits and _-+.")
            continue
        problem = _shape_problem(f"privileged/{name}", np.asarray(privileged[name]), EXTRA_PRIVILEGED, frames,
                                 check_tail=False)
        problems += [problem] if problem else []
    if problems:
        return problems + metadata_problems(metadata)
    problems += _value_problems(arrays)
    problems += metadata_problems(metadata)
    if not problems:
        camera = metadata["camera"]
        if (camera["height"], camera["width"]) != images.shape[1:3]:
            problems.append(f"metadata camera is {camera['width']}x{camera['height']} but images are "
                            f"{images.shape[2]}x{images.shape[1]} (width x height)")
    return problems


def _value_problems(arrays: Mapping[str, np.ndarray]) -> list[str]:
    # NaN or out-of-range labels silently poison training, so they are refused at write time and flagged by check.
    problems = []
    for name in ("state", "action_label", "action_executed", "dt", "timestamp"):
        if not np.all(np.isfinite(arrays[name])):
            problems.append(f"{name} holds NaN or infinite values")
    for name in ("action_label", "action_executed"):
        if np.any(np.abs(arrays[name]) > ACTION_BOUND):
            problems.append(f"{name} leaves [-1, 1] (actions are normalised by the airframe's limits)")
    if np.any(arrays["dt"] < 0):
        problems.append("dt holds negative values")
    if np.any(np.diff(arrays["timestamp"]) < 0):
        problems.append("timestamp goes backwards")
    return problems
