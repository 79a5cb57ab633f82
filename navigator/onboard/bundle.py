"""An exported policy bundle, read and flown without torch: `load_bundle` checks it, `BundlePolicy` steps it through
ONNX Runtime with its hidden state carried between steps.

A bundle is a folder that `navigator export` writes: `policy.onnx` (the single-step graph of `policies.PolicyStep`,
weights inside) and `policy.json` (its manifest; `SCHEMA_VERSION` below, fields in `navigator/export/manifest.py`).
Nothing of a bundle runs before all of it is checked: the manifest's schema version and fields, its agreement with
itself (camera and image input, policy_config's image spec, rate and dt), the sha256 of the graph's bytes (the bytes
checked are the bytes run: they are read once), and the graph's inputs and outputs (names, element types, shapes)
against what the manifest says; any disagreement is a `BundleError` naming the file, the problem and the fix. Names
of tasks and airframes are the simulator's, checked where the simulator is (`navigator.pilots.check_scenario`).

Imports numpy, onnxruntime, json, hashlib, `navigator.json_fields` and `policies.preprocessing` only: this module
runs on a companion computer that has neither torch nor the simulator.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from navigator.errors import UserError, refuse_if_denied
from navigator.json_fields import field_problems, read_problem, show
from policies.preprocessing import ImageSpec

SCHEMA_VERSION = 1
FORMAT = "liquid-navigator/policy-bundle"
MANIFEST_NAME = "policy.json"
GRAPH_NAME = "policy.onnx"
STATE_FIELDS = ("vx", "vy", "vz", "roll", "pitch", "yaw_rate", "height")
ACTION_FIELDS = ("vx", "vy", "vz", "yaw_rate")
# Keys a manifest of this schema version must have (more may follow, e.g. the verification record).
REQUIRED_KEYS = ("schema_version", "format", "model", "task", "airframe", "image", "camera", "action_limits",
                 "state_fields", "rate_hz", "dt", "hidden", "onnx", "manifest_sha256")
# policy.json's checksum of its own content (`manifest_checksum`): the action limits scale every command, so a manifest
# changed after export (by hand, or by a copy fault) must never fly.
MANIFEST_CHECKSUM = "manifest_sha256"
_ADVICE = "export the bundle again with navigator export"


class BundleError(UserError):
    """A bundle that cannot be flown: missing files, another schema version, a changed graph, a manifest that does
    not describe its graph."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """The sha256 of a manifest's content without its own `manifest_sha256`, as canonical JSON (sorted keys, no
    spaces, every number as a float), so that how the file is written (indentation, key order, 3 or 3.0) does not
    count, only what it says."""
    content = {key: value for key, value in manifest.items() if key != MANIFEST_CHECKSUM}
    return _sha256(json.dumps(_numbers_as_floats(content), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode())


def _numbers_as_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _numbers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(item) for item in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object hook: a key given twice would let the file say one value to a reader and fly another."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"it gives {', '.join(map(show, repeated))} twice")
    return dict(pairs)


def sealed(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with its `manifest_sha256`, as export writes it."""
    return {**manifest, MANIFEST_CHECKSUM: manifest_checksum(manifest)}


def session_options(threads: int = 1) -> ort.SessionOptions:
    """ONNX Runtime options for one policy on a small computer: `threads` intra-op threads, no inter-op pool, all
    graph optimisations."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class Bundle:
    """A checked bundle (made by `load_bundle`). `manifest`: policy.json as read; `image_spec`: the ImageSpec the
    policy was trained with (camera in, policy image out); `action_limits`: float32 (4,) [vx, vy, vz m/s, yaw_rate
    rad/s], the scale of the normalised action; `dt`: seconds per step at the trained rate `rate_hz`;
    `hidden`: ((name, size), ...) in graph order; `graph`: the checked bytes of policy.onnx."""

    def __init__(self, path: Path, manifest: dict[str, Any], graph: bytes, image_spec: ImageSpec) -> None:
        self.path = path
        self.manifest = manifest
        self.graph = graph
        self.image_spec = image_spec
        limits = manifest["action_limits"]
        self.action_limits = np.array([limits[name] for name in ACTION_FIELDS], np.float32)
        self.dt = float(manifest["dt"])
        self.rate_hz = float(manifest["rate_hz"])
        self.task = str(manifest["task"])
        self.airframe = str(manifest["airframe"])
        self.camera = dict(manifest["camera"])
        self.camera_tilt_deg = float(self.camera["tilt_deg"])
        self.hidden = tuple((str(h["name"]), int(h["size"])) for h in manifest["hidden"])

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("image", "state", "dt", *(f"{name}_in" for name, _ in self.hidden))

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("action", *(f"{name}_out" for name, _ in self.hidden))

    def check_hfov(self, hfov_deg: float) -> None:
        """UserError, before a camera is opened, for a horizontal field of view narrower than the policy's trained
        view: no camera of that view can give it (the rest needs the camera's size: `image_spec_for`)."""
        trained = self.image_spec.output_hfov_deg
        if hfov_deg < trained:
            raise UserError(f"a camera with {hfov_deg:g} deg of horizontal field of view cannot give the policy of "
                            f"{self.path} its trained {trained:g} deg view; use a camera at least that wide, or set "
                            f"its field of view correctly (--camera-fov)")

    def image_spec_for(self, width: int, height: int, hfov_deg: float) -> ImageSpec:
        """The preprocessing from an actual camera (width x height pixels, horizontal field of view `hfov_deg`) to
        the policy's input: a centred crop to the trained field of view, resized to the trained size, normalised as
        trained. UserError when the camera cannot give that view (narrower, or too little vertical view)."""
        trained = self.image_spec
        try:
            return ImageSpec(input_height=int(height), input_width=int(width), input_hfov_deg=float(hfov_deg),
                             output_height=trained.output_height, output_width=trained.output_width,
                             output_hfov_deg=trained.output_hfov_deg, mean=trained.mean, std=trained.std,
                             normalisation=trained.normalisation)
        except ValueError as error:
            raise UserError(f"a {width}x{height} camera with {hfov_deg} deg of horizontal field of view cannot give "
                            f"the policy of {self.path} its trained {trained.output_hfov_deg} deg view at "
                            f"{trained.output_width}x{trained.output_height} ({error}); use a camera at least that "
                            f"wide, or set its field of view correctly") from None


def _manifest_path(path: Path) -> Path:
    return path if path.name == MANIFEST_NAME else path / MANIFEST_NAME


def load_bundle(path: str | Path) -> Bundle:
    """Read and check the bundle in folder `path` (or its policy.json). Raises BundleError for a missing file, a
    manifest that is not this schema version or lacks fields, a graph whose sha256 differs from the manifest's,
    graph inputs/outputs that disagree with the manifest, or a manifest that contradicts itself (`_contradictions`);
    nothing of the graph runs before these checks pass."""
    manifest_path = _manifest_path(Path(path))
    folder = manifest_path.parent

    def fail(problem: str, advice: str = _ADVICE) -> BundleError:
        return BundleError(f"bundle {folder}: {problem}; {advice}")

    if Path(path).is_file() and Path(path).name != MANIFEST_NAME:
        raise BundleError(f"bundle {path} is a file, not a bundle folder; " + (
            f"a policy checkpoint is exported to one first: navigator export --checkpoint {shlex.quote(str(path))} "
            f"--out bundles/NAME" if Path(path).suffix == ".pt" else "give the folder navigator export wrote"))
    if not folder.is_dir():
        raise fail("no such folder", "give the folder navigator export wrote (or its policy.json)")
    if manifest_path.is_dir():
        raise fail(f"its {MANIFEST_NAME} is a folder, not a file")
    if not manifest_path.is_file():
        raise fail(f"no {MANIFEST_NAME} in it", "give the folder navigator export wrote")
    try:  # utf-8-sig: an editor's byte-order mark is no change of content
        manifest = json.loads(manifest_path.read_text(encoding="utf-8-sig"), object_pairs_hook=_refuse_duplicate_keys)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        refuse_if_denied(error)
        problem = read_problem(error) if isinstance(error, (OSError, UnicodeDecodeError, json.JSONDecodeError)) \
            else str(error)
        raise fail(f"{MANIFEST_NAME} cannot be read ({problem})") from None
    if not isinstance(manifest, dict):
        raise fail(f"{MANIFEST_NAME} is not a liquid-navigator bundle manifest (it holds {show(manifest)}, not a "
                   f"mapping of fields)")
    if manifest.get("format") != FORMAT:
        raise fail(f"{MANIFEST_NAME} is not a liquid-navigator bundle manifest (format {show(manifest.get('format'))}, "
                   f"expected {show(FORMAT)})")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise fail(f"{MANIFEST_NAME} has schema version {show(manifest.get('schema_version'))}, and this runtime reads "
                   f"version {SCHEMA_VERSION}", "export it again with this version of navigator export, or run the "
                                                "runtime version that matches the bundle")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise fail(f"{MANIFEST_NAME} lacks {', '.join(missing)}")
    problems = _field_problems(manifest)
    if problems:
        raise fail(f"{MANIFEST_NAME} has unusable fields: {'; '.join(problems)}")
    try:
        image_spec = ImageSpec.from_dict(manifest["image"])
        contradictions = _contradictions(manifest, image_spec)
    except ValueError as error:  # ImageSpec's own checks (ranges, unknown keys), which name the field
        raise fail(f"{MANIFEST_NAME} has an unusable image specification ({error})") from None
    if manifest[MANIFEST_CHECKSUM] != manifest_checksum(manifest):  # after the fields: a damaged one is named first
        raise fail(f"{MANIFEST_NAME} was changed after export (its content no longer matches its {MANIFEST_CHECKSUM})",
                   "export the bundle again with navigator export; to fly slower, lower or closer on the drone, set "
                   "limits and the geofence in the onboard runtime's config (launch/onboard.yaml), which apply on top "
                   "of the bundle's")

    graph_path = folder / manifest["onnx"]["file"]
    if graph_path.parent != folder:
        raise fail(f"{MANIFEST_NAME} names a graph outside the bundle ({show(manifest['onnx']['file'])})")
    try:
        graph = graph_path.read_bytes()
    except OSError as error:
        refuse_if_denied(error)
        raise fail(f"cannot read {graph_path.name} ({error.strerror or error})") from None
    digest = _sha256(graph)
    if digest != manifest["onnx"]["sha256"]:
        raise fail(f"the sha256 of {graph_path.name} ({digest[:12]}...) differs from the one {MANIFEST_NAME} "
                   f"records ({str(manifest['onnx']['sha256'])[:12]}...): the graph changed after export (a copy "
                   f"error, or another graph put in its place)")
    bundle = Bundle(folder, manifest, graph, image_spec)
    try:
        session = ort.InferenceSession(graph, session_options(1), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for a graph it cannot load
        raise fail(f"ONNX Runtime cannot load {graph_path.name} ({str(error).splitlines()[0]})") from None
    problems = _interface_problems(bundle, session)
    if problems:
        raise fail(f"{graph_path.name} does not match {MANIFEST_NAME}: {'; '.join(problems)}")
    # After the graph's check: the graph is the authority on the output size, the manifest's self-agreement on the rest.
    if contradictions:
        raise fail(f"{MANIFEST_NAME} contradicts itself (edited after export?): {'; '.join(contradictions)}")
    return bundle


def _image_fields(section: str) -> tuple[tuple[str, str], ...]:
    """The kinds of an ImageSpec's fields in section `section` (each optional: the spec has defaults)."""
    kinds = {"input_height": "positive integer", "input_width": "positive integer", "output_height": "positive integer",
             "output_width": "positive integer", "input_hfov_deg": "positive number",
             "output_hfov_deg": "positive number", "mean": "list", "std": "list", "normalisation": "text"}
    return (*((f"{section}.{name}", f"optional {kind}") for name, kind in kinds.items()),
            (f"{section}.mean[]", "number"), (f"{section}.std[]", "positive number"))


# Every manifest field the runtime reads, with its kind (navigator.json_fields), checked before any is used.
MANIFEST_FIELDS = (
    ("model", "text"), ("task", "text"), ("airframe", "text"), ("image", "mapping"), *_image_fields("image"),
    ("camera", "mapping"), *((f"camera.{name}", "positive number") for name in ("width", "height", "fov_deg",
                                                                              "rate_hz")),
    ("camera.tilt_deg", "number"), ("action_limits", "mapping"),
    *((f"action_limits.{name}", "positive number") for name in ACTION_FIELDS), ("state_fields", "list"),
    ("state_fields[]", "text"), ("rate_hz", "positive number"), ("dt", "positive number"), ("hidden", "list"),
    ("hidden[]", "mapping"), ("hidden[].name", "text"), ("hidden[].size", "positive integer"), ("onnx", "mapping"),
    ("onnx.file", "text"), ("onnx.sha256", "text"), ("manifest_sha256", "text"),
    ("policy_config", "optional mapping or null"),
    ("policy_config.image", "optional mapping or null"), *_image_fields("policy_config.image"),
)


def _field_problems(manifest: dict[str, Any]) -> list[str]:
    """Every field of the wrong kind, each named by its path; then a state that is not this runtime's."""
    problems = field_problems(manifest, MANIFEST_FIELDS)
    if not problems and tuple(manifest["state_fields"]) != STATE_FIELDS:
        problems.append(f"state_fields {manifest['state_fields']} are not this runtime's {list(STATE_FIELDS)}")
    return problems


def _contradictions(manifest: dict[str, Any], image_spec: ImageSpec) -> list[str]:
    """Where the manifest disagrees with itself (an empty list: nowhere). Export writes the camera the policy was
    trained with, the image spec whose input is that camera, the same spec inside policy_config, and rate_hz = 1/dt;
    the graph itself fixes only the spec's output size (checked against the session), so an edited camera or input
    size shows here, before a frame of the wrong shape reaches the crop."""
    camera = manifest["camera"]
    problems = [f"camera.{name} {camera[name]} but image.{key} {getattr(image_spec, key)}"
                for name, key in (("width", "input_width"), ("height", "input_height"), ("fov_deg", "input_hfov_deg"))
                if not math.isclose(float(camera[name]), float(getattr(image_spec, key)), rel_tol=1e-9)]
    if not math.isclose(float(camera["rate_hz"]), float(manifest["rate_hz"]), rel_tol=1e-9):
        problems.append(f"camera.rate_hz {camera['rate_hz']} but rate_hz {manifest['rate_hz']}")
    if not math.isclose(float(manifest["dt"]) * float(manifest["rate_hz"]), 1.0, rel_tol=1e-6):
        problems.append(f"dt {manifest['dt']} is not 1/rate_hz (rate_hz {manifest['rate_hz']})")
    config = manifest.get("policy_config")  # not required: a bundle written by hand may leave it out
    if isinstance(config, dict) and config.get("image") is not None:
        trained = ImageSpec.from_dict(config["image"])
        problems.extend(f"image.{f.name} {getattr(image_spec, f.name)} but policy_config.image.{f.name} "
                        f"{getattr(trained, f.name)}" for f in fields(ImageSpec)
                        if getattr(image_spec, f.name) != getattr(trained, f.name))
    return problems


def expected_interface(bundle: Bundle) -> tuple[list[tuple[str, str, tuple[int | None, ...]]], ...]:
    """(inputs, outputs) the manifest implies, each [(name, element type, shape with None for the batch)]."""
    spec = bundle.image_spec
    hidden = [(size,) for _, size in bundle.hidden]
    inputs = [("image", "tensor(uint8)", (None, spec.output_height, spec.output_width, 3)),
              ("state", "tensor(float)", (None, len(STATE_FIELDS))), ("dt", "tensor(float)", (None,)),
              *((name, "tensor(float)", (None, *shape)) for name, shape in zip(bundle.input_names[3:], hidden))]
    outputs = [("action", "tensor(float)", (None, len(ACTION_FIELDS))),
               *((name, "tensor(float)", (None, *shape)) for name, shape in zip(bundle.output_names[1:], hidden))]
    return inputs, outputs


def _interface_problems(bundle: Bundle, session: ort.InferenceSession) -> list[str]:
    """What differs between the session's inputs/outputs and the manifest's (an empty list: they agree). The batch
    axis must be dynamic (a name, not a number)."""

    def describe(args: Any) -> list[tuple[str, str, tuple[int | None, ...]]]:
        return [(a.name, a.type, tuple(d if isinstance(d, int) else None for d in a.shape)) for a in args]

    def batch_is_dynamic(args: Any) -> bool:
        return all(a.shape and not isinstance(a.shape[0], int) for a in args)

    expected_inputs, expected_outputs = expected_interface(bundle)
    problems = []
    for what, got, expected, args in (("inputs", describe(session.get_inputs()), expected_inputs,
                                       session.get_inputs()),
                                      ("outputs", describe(session.get_outputs()), expected_outputs,
                                       session.get_outputs())):
        if got != expected:
            problems.append(f"graph {what} {_listing(got)}, manifest implies {_listing(expected)}")
        elif not batch_is_dynamic(args):
            problems.append(f"graph {what} have a fixed batch size")
    return problems


def _listing(args: list[tuple[str, str, tuple[int | None, ...]]]) -> str:
    return ", ".join(f"{name} {kind.removeprefix('tensor(').rstrip(')')}"
                     f"({', '.join('B' if d is None else str(d) for d in shape)})" for name, kind, shape in args)


class BundlePolicy:
    """A bundle's policy stepped one frame at a time through ONNX Runtime (batch 1), its hidden state fed back.
    `threads`: ONNX Runtime intra-op threads. One warm-up run happens here, so the first real step is not slow."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        self.bundle = bundle
        self._session = ort.InferenceSession(bundle.graph, session_options(threads),
                                             providers=["CPUExecutionProvider"])
        spec = bundle.image_spec
        self._image_shape = (spec.output_height, spec.output_width, 3)
        self._input_names = bundle.input_names
        self._output_names = list(bundle.output_names)
        self._dt = np.zeros(1, np.float32)
        self.reset()
        self.step(np.zeros(self._image_shape, np.uint8), np.zeros(len(STATE_FIELDS), np.float32), bundle.dt)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: the hidden state back to zeros."""
        self._hidden = [np.zeros((1, size), np.float32) for _, size in self.bundle.hidden]

    def step(self, image: np.ndarray, state: np.ndarray, dt: float) -> np.ndarray:
        """image uint8 (H, W, 3) RGB at the trained output size (`bundle.image_spec.output_*`, already cropped and
        resized), state float32 (7,) as `STATE_FIELDS`, dt seconds since the previous step -> action float32 (4,)
        normalised to [-1, 1] (times `bundle.action_limits` for m/s and rad/s). ValueError for a wrong shape."""
        if image.shape != self._image_shape or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image of shape {self._image_shape}, got {image.dtype} {image.shape}")
        state = np.asarray(state, np.float32)
        if state.shape != (len(STATE_FIELDS),):
            raise ValueError(f"expected a state of shape ({len(STATE_FIELDS)},), got {state.shape}")
        self._dt[0] = dt
        feeds = dict(zip(self._input_names, (image[None], state[None], self._dt, *self._hidden)))
        action, *self._hidden = self._session.run(self._output_names, feeds)
        return action[0]
