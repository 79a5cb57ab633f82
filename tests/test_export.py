"""`navigator export` end to end: the shipped fly-to-target policy to a bundle, checked by onnx, verified against
PyTorch, read by the torch-free runtime (which refuses damaged bundles), flown by `navigator fly` and `navigator
eval`; int8 quantization; refusals before any work."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from navigator.cli import main
from navigator.errors import UserError
from navigator.onboard.bundle import SCHEMA_VERSION, BundleError, BundlePolicy, load_bundle, sealed
from navigator.pilots import pretrained_checkpoint
from onboard_support import resealed
from records_support import edited_copy

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The shipped fly-to-target policy exported with one verification episode (a few seconds)."""
    out = tmp_path_factory.mktemp("bundles") / "fly-to-target"
    assert main(["export", "--checkpoint", "pretrained", "--out", str(out), "--verify-episodes", "1"]) == 0
    return out


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def test_bundle_holds_a_clean_single_file_graph_with_a_dynamic_batch(bundle):
    assert sorted(p.name for p in bundle.iterdir()) == ["policy.json", "policy.onnx"]
    model = onnx.load(bundle / "policy.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    session = ort.InferenceSession(str(bundle / "policy.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"image": np.zeros((3, 48, 64, 3), np.uint8), "state": np.zeros((3, 7), np.float32),
             "dt": np.full(3, 1 / 30, np.float32), "h_in": np.zeros((3, 70), np.float32)}
    action, hidden = session.run(["action", "h_out"], feeds)
    assert action.shape == (3, 4) and hidden.shape == (3, 70)


def test_manifest_fields(bundle):
    manifest = json.loads((bundle / "policy.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert (manifest["model"], manifest["task"], manifest["airframe"]) == ("cfc-ncp", "fly-to-target", "x500")
    assert manifest["parameter_counts"] == {"cnn": 24600, "head": 20272, "total": 44872}
    assert manifest["image"]["normalisation"] == "per_frame" and manifest["image"]["output_width"] == 64
    assert manifest["camera"] == {"width": 64, "height": 48, "fov_deg": 80.0, "tilt_deg": 0.0, "rate_hz": 30}
    assert manifest["rate_hz"] == 30 and manifest["dt"] == pytest.approx(1 / 30)
    assert manifest["action_limits"]["yaw_rate"] == pytest.approx(np.pi / 2)
    assert manifest["state_fields"] == ["vx", "vy", "vz", "roll", "pitch", "yaw_rate", "height"]
    assert manifest["hidden"] == [{"name": "h", "size": 70}]
    assert manifest["onnx"]["sha256"] == hashlib.sha256((bundle / "policy.onnx").read_bytes()).hexdigest()
    assert manifest["onnx"]["precision"] == "float32" and manifest["quantization"] is None
    source = manifest["source"]
    assert source["checkpoint_sha256"] == hashlib.sha256(pretrained_checkpoint("fly-to-target").read_bytes()
                                                         ).hexdigest()
    assert source["datasets"][0] == "datasets/summer-fly-to-target-600-near-target" and source["commit"]
    assert source["training_seeds"]["ranges"][0] | {"source": None} == {"task": "fly-to-target", "first": 0,
                                                                         "count": 600, "source": None}
    verification = manifest["verification"]
    assert verification["episodes"] == 1 and verification["steps"] > 100
    assert verification["seeds"] == [100_000]
    assert 0 <= verification["max_action_diff"] <= 1e-4
    # The shipped policy's evaluation report, found by the checkpoint's sha256.
    assert manifest["evaluation"]["suites"][0]["suite"] == "summer"
    assert manifest["evaluation"]["suites"][0]["episodes"] == 200


def test_bundle_policy_steps_like_torch_with_irregular_dt(bundle):
    from policies.checkpoint import load_checkpoint

    policy, _ = load_checkpoint(pretrained_checkpoint("fly-to-target"))
    runtime = BundlePolicy(load_bundle(bundle))
    rng = np.random.default_rng(0)
    hidden = None
    for _ in range(20):
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        state = rng.normal(size=7).astype(np.float32)
        dt = float(rng.uniform(0.01, 0.08))
        with torch.no_grad():
            expected, hidden = policy.step(torch.from_numpy(image)[None], torch.from_numpy(state)[None], hidden, dt)
        np.testing.assert_allclose(runtime.step(image, state, dt), expected[0].numpy(), atol=1e-5, rtol=0)
    runtime.reset()  # a fresh episode: the same first action as a fresh torch hidden state
    with torch.no_grad():
        first, _ = policy.step(torch.from_numpy(image)[None], torch.from_numpy(state)[None], None, dt)
    np.testing.assert_allclose(runtime.step(image, state, dt), first[0].numpy(), atol=1e-5, rtol=0)


def test_image_spec_for_a_wider_camera(bundle):
    loaded = load_bundle(bundle / "policy.json")
    spec = loaded.image_spec_for(320, 240, 100.0)
    assert (spec.input_width, spec.output_width, spec.output_hfov_deg) == (320, 64, 80.0)
    assert spec.crop_box()[3] < 320  # cropped to the trained 80 degrees
    with pytest.raises(UserError, match="cannot give"):
        loaded.image_spec_for(320, 240, 60.0)


@pytest.mark.parametrize("damage, message, cli_message", [
    ("graph", "sha256 of policy.onnx", None),
    ("schema", "schema version 99", None),
    ("hidden size", "policy.onnx does not match policy.json: graph inputs", None),
    ("image size", "policy.onnx does not match policy.json: graph inputs image uint8(B, 48, 64, 3)", None),
    ("no manifest", "no policy.json", "is a folder without policy.json"),
    # Edits the graph cannot show (it fixes only the output size): the manifest then contradicts itself.
    ("camera and input height", "policy.json contradicts itself (edited after export?): image.input_height 96 but "
                                "policy_config.image.input_height 48", None),
    ("camera height", "camera.height 96 but image.input_height 48", None),
    ("camera fov", "camera.fov_deg 100.0 but image.input_hfov_deg 80.0", None),
    ("rate", "camera.rate_hz 15 but rate_hz 30", None),
    ("dt", "dt 0.1 is not 1/rate_hz (rate_hz 30)", None),
    # Fields of the wrong kind, named by their path (never Python's "string indices must be integers").
    ("camera text", 'policy.json has unusable fields: camera must be a mapping of names to values (got "abc")', None),
    ("hidden entry", 'hidden[0] must be a mapping of names to values (got "h")', None),
    ("several", 'image.mean[1] must be a number (got "a"); action_limits.vx must be a number above 0 (got -1); '
                'onnx.sha256 must be text (got 12)', None),
    ("dt text", 'dt must be a number above 0 (got "0.033")', None),
    ("trained image", 'policy_config.image.input_height must be a whole number above 0 (got "48")', None),
    ("a list", "policy.json is not a liquid-navigator bundle manifest (it holds [1, 2], not a mapping of fields)",
     None),
    # A manifest changed after export, however plausible the change: it scales every command (a speed limit of 9
    # m/s on a policy trained at 3 would fly three times as fast), so it never flies.
    ("limits edited", "policy.json was changed after export (its content no longer matches its manifest_sha256); "
                      "export the bundle again", None),
    ("no checksum", "policy.json lacks manifest_sha256", None),
])
def test_damaged_bundles_are_refused_before_anything_runs(bundle, tmp_path, capsys, damage, message, cli_message):
    # Every other damage is sealed with a new checksum, as a faulty exporter or a bundle made by hand would carry
    # one, so that the checks behind the checksum are reached.
    copy = copy_of(bundle, tmp_path)
    manifest = json.loads((copy / "policy.json").read_text())
    if damage == "graph":
        data = bytearray((copy / "policy.onnx").read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / "policy.onnx").write_bytes(bytes(data))
    elif damage == "schema":
        manifest["schema_version"] = 99
    elif damage == "hidden size":
        manifest["hidden"][0]["size"] = 71
    elif damage == "image size":
        manifest["image"] |= {"output_width": 80, "output_height": 60, "input_width": 80, "input_height": 60}
    elif damage == "camera and input height":
        manifest["image"]["input_height"] = manifest["camera"]["height"] = 96
    elif damage == "camera height":
        manifest["camera"]["height"] = 96
    elif damage == "camera fov":
        manifest["camera"]["fov_deg"] = 100.0
    elif damage == "rate":
        manifest["camera"]["rate_hz"] = 15
    elif damage == "dt":
        manifest["dt"] = 0.1
    elif damage == "camera text":
        manifest["camera"] = "abc"
    elif damage == "hidden entry":
        manifest["hidden"][0] = "h"
    elif damage == "several":
        manifest["action_limits"]["vx"], manifest["image"]["mean"][1], manifest["onnx"]["sha256"] = -1, "a", 12
    elif damage == "dt text":
        manifest["dt"] = "0.033"
    elif damage == "trained image":
        manifest["policy_config"]["image"]["input_height"] = "48"
    elif damage == "limits edited":
        manifest["action_limits"]["vx"] = 9.0
    elif damage == "no checksum":
        del manifest["manifest_sha256"]
    if damage not in ("limits edited", "no checksum"):
        manifest = sealed(manifest)
    if damage == "a list":
        manifest = [1, 2]
    if damage == "no manifest":
        (copy / "policy.json").unlink()
    else:
        (copy / "policy.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=re.escape(message)):
        load_bundle(copy)
    # The same one line from the CLI, exit 2, before any episode flies.
    assert main(["fly", "--pilot", str(copy), "--episodes", "1"]) == 2
    assert (cli_message or message) in capsys.readouterr().err


def test_fly_and_eval_take_a_bundle(bundle, tmp_path, capsys):
    assert main(["fly", "--json", "--pilot", str(bundle), "--episodes", "1", "--seed", "5000"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["config"]["pilot"] == str(bundle)
    assert document["episodes"][0]["ending"] == "success"
    # The same refusals as a checkpoint's, from policy.json: another task ...
    assert main(["fly", "--pilot", str(bundle / "policy.json"), "--task", "hike", "--episodes", "1"]) == 2
    assert "trained on fly-to-target demonstrations, not hike" in capsys.readouterr().err
    # ... and eval refuses seeds the exported checkpoint was trained on, from the bundle's record.
    assert main(["eval", "--pilot", str(bundle), "--suites", "summer", "--episodes", "2", "--seed", "599",
                 "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert "trained on fly-to-target seeds 0-599 (data in datasets/summer-fly-to-target-600-near-target)" in error
    assert "and this evaluation would fly seed 599 of them" in error


@pytest.mark.parametrize("edit, problem", [
    (lambda source: source.update(training_seeds="all"),
     'source.training_seeds must be a mapping of names to values (got "all")'),
    (lambda source: source["training_seeds"]["ranges"][0].update(first="0"),
     'source.training_seeds.ranges[0].first must be a whole number, 0 or more (got "0")'),
    (lambda source: source["training_seeds"].pop("complete"), "source.training_seeds.complete is missing"),
    (lambda source: source.update(recipe={"model": "cfc-ncp"}), "source.recipe.seed is missing"),
])
def test_eval_refuses_a_bundle_whose_training_record_is_damaged(bundle, tmp_path, capsys, edit, problem):
    """The record of the seeds a bundle was trained on guards every evaluation against flying them: damaged, it is
    named, never read as "no seeds known" and never a traceback."""
    copy = edited_copy(bundle, tmp_path / "copy", "policy.json", resealed(lambda manifest: edit(manifest["source"])))
    assert main(["eval", "--pilot", str(copy), "--suites", "summer", "--episodes", "1", "--seed", "5000",
                 "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert "policy.json's record of its training is damaged" in error and problem in error, error
    assert "Traceback" not in error and not (tmp_path / "report" / "results.json").exists()


@pytest.mark.parametrize("field, value, message", [
    ("task", "moonwalk", "records a task that no scenario has (unknown task 'moonwalk'; valid tasks are: "
                         "fly-to-target, hike, follow)"),
    ("airframe", "f450", "records an airframe that no scenario has (unknown airframe 'f450'"),
    ("camera rate", 7, "records a camera that no scenario has (rate_hz: 7 Hz does not divide the physics rate"),
])
def test_names_a_bundle_records_are_checked_before_any_advice_repeats_them(bundle, tmp_path, capsys, field, value,
                                                                           message):
    """The torch-free runtime cannot know the simulator's names; a pilot can, and never suggests one it would
    refuse (`--task moonwalk`)."""
    copy = copy_of(bundle, tmp_path)
    manifest = json.loads((copy / "policy.json").read_text())
    if field == "camera rate":  # consistent through the manifest, so only the simulator can refuse it
        manifest["camera"]["rate_hz"] = manifest["rate_hz"] = value
        manifest["dt"] = 1 / value
    else:
        manifest[field] = value
    (copy / "policy.json").write_text(json.dumps(sealed(manifest)))  # as a bundle made by hand would carry
    load_bundle(copy)
    for argv in (["fly", "--pilot", str(copy), "--episodes", "1"],
                 ["eval", "--pilot", str(copy), "--suites", "summer", "--episodes", "1", "--out", str(tmp_path / "e")]):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert message in error and f"--{field} {value}" not in error and "Traceback" not in error


def test_runtime_import_and_step_load_no_torch_or_simulator(bundle):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from navigator.onboard.bundle import BundlePolicy, load_bundle
        bundle = load_bundle({str(bundle)!r})
        policy = BundlePolicy(bundle)
        action = policy.step(np.zeros((48, 64, 3), np.uint8), np.zeros(7, np.float32), bundle.dt)
        assert action.shape == (4,) and np.isfinite(action).all()
        heavy = ("torch", "pybullet", "gymnasium", "sim_envs", "ncps")
        print(sorted(name for name in sys.modules if name.split(".")[0] in heavy))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_existing_out_bad_checkpoint_and_bad_options_are_refused_before_work(bundle, tmp_path, capsys):
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    cases = [
        (["--checkpoint", "pretrained", "--out", str(bundle)], "already holds a bundle; pass --overwrite"),
        (["--checkpoint", str(tmp_path / "gone.pt"), "--out", str(tmp_path / "b")], "gone.pt does not exist"),
        (["--checkpoint", str(not_a_checkpoint), "--out", str(tmp_path / "b")], "not a PyTorch file"),
        (["--checkpoint", "pretrained", "--task", "swim", "--out", str(tmp_path / "b")], "--task"),
        (["--checkpoint", "pretrained", "--out", str(tmp_path / "b"), "--verify-episodes", "0"],
         "--verify-episodes must be in [1, 100], got 0"),
        (["--checkpoint", "pretrained", "--out", str(tmp_path / "b"), "--seed", "150"],
         "trained on fly-to-target seeds 0-599 (data in datasets/summer-fly-to-target-600-near-target), and the "
         "export's verification flights would fly seeds 150-152 of them"),
    ]
    shipped = str(Path(__file__).resolve().parents[1] / "policies" / "pretrained" / "fly-to-target-cfc-ncp.pt")
    cases.append((["--checkpoint", shipped, "--task", "hike", "--out", str(tmp_path / "b")],
                  "was trained on fly-to-target demonstrations, not hike"))
    for args, message in cases:
        assert main(["export", *args]) == 2, args
        printed = capsys.readouterr()
        assert message in printed.err and "exporting" not in printed.out, args  # refused before any stage began
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pt"]  # nothing written


def test_an_empty_folder_is_taken_as_out_without_overwrite(tmp_path, capsys):
    out = tmp_path / "bundle"
    out.mkdir()  # as every command takes one (made ahead by the user, say)
    assert main(["export", "--checkpoint", "pretrained", "--out", str(out), "--verify-episodes", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["policy.json", "policy.onnx"]


def test_overwrite_never_deletes_what_the_user_put_in_the_bundle_folder(bundle, tmp_path, capsys):
    copy = copy_of(bundle, tmp_path)
    (copy / "notes.txt").write_text("my flight notes\n")
    (copy / "plots").mkdir()
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    assert main(["export", "--checkpoint", "pretrained", "--out", str(copy), "--verify-episodes", "1",
                 "--overwrite"]) == 2
    error = capsys.readouterr().err
    assert f"--out {copy} holds files that are not the bundle's (notes.txt, plots)" in error
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before and (copy / "plots").is_dir()
    # A policy.json of the user's own is no bundle either.
    other = tmp_path / "other"
    other.mkdir()
    (other / "policy.json").write_text('{"policy": "mine"}')
    assert main(["export", "--checkpoint", "pretrained", "--out", str(other), "--overwrite"]) == 2
    assert "is not a bundle (no policy.json written by navigator export;" in capsys.readouterr().err
    assert (other / "policy.json").read_text() == '{"policy": "mine"}'


@pytest.mark.parametrize("out", ["", ".", "./"])
def test_an_out_that_is_the_current_folder_is_refused_before_work(bundle, tmp_path, monkeypatch, capsys, out):
    """Run inside a bundle folder: the bundle cannot be renamed into place as the folder one stands in."""
    copy = copy_of(bundle, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    monkeypatch.chdir(copy)
    for overwrite in ([], ["--overwrite"]):
        assert main(["export", "--checkpoint", "pretrained", "--out", out, "--verify-episodes", "1",
                     *overwrite]) == 2
        error = capsys.readouterr().err
        expected = "--out must name the bundle" if out else "--out: empty value"
        assert expected in error and "already exists" not in error
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_failed_verification_leaves_nothing(tmp_path, capsys, monkeypatch):
    from navigator.export import pipeline

    monkeypatch.setattr(pipeline, "TOLERANCE", 0.0)  # no float graph matches PyTorch to the last bit
    out = tmp_path / "bundles" / "strict"
    assert main(["export", "--checkpoint", "pretrained", "--out", str(out), "--verify-episodes", "1"]) == 1
    assert "differ from PyTorch's by up to" in capsys.readouterr().err
    assert list((tmp_path / "bundles").iterdir()) == []  # neither the bundle nor its staging folder


def test_int8_replaces_with_overwrite_and_reports_its_cost(bundle, tmp_path, capsys):
    out = copy_of(bundle, tmp_path)
    assert main(["export", "--checkpoint", "pretrained", "--out", str(out), "--verify-episodes", "1",
                 "--quantize", "int8", "--overwrite"]) == 0
    console = capsys.readouterr().out
    assert "int8: largest action difference vs PyTorch" in console
    manifest = json.loads((out / "policy.json").read_text())
    quantization = manifest["quantization"]
    assert manifest["onnx"]["precision"] == "int8" and manifest["onnx"]["bytes"] < 0.6 * (bundle / "policy.onnx"
                                                                                           ).stat().st_size
    assert 0 < quantization["max_action_diff"] < 0.2
    assert quantization["episodes"] == 1 and quantization["success_difference"] == (
        quantization["success_rate_int8"] - quantization["success_rate_float"])
    onnx.checker.check_model(onnx.load(out / "policy.onnx"), full_check=True)
    assert np.isfinite(BundlePolicy(load_bundle(out)).step(np.zeros((48, 64, 3), np.uint8), np.zeros(7, np.float32),
                                                           1 / 30)).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no staging or displaced folder left


def test_nothing_else_is_written_into_an_exported_bundle(bundle, tmp_path, capsys, monkeypatch):
    """A bundle holds its graph and manifest only (export --overwrite refuses a folder with more): other commands'
    outputs are refused inside it."""
    monkeypatch.setenv("COLUMNS", "1000")
    copy = copy_of(bundle, tmp_path)
    for argv in (["eval", "--pilot", "expert", "--episodes", "1", "--out", str(copy / "ev")],
                 ["fly", "--pilot", "expert", "--episodes", "1", "--video", str(copy / "flight.mp4")]):
        assert main(argv) == 2
        assert f"is inside the exported bundle {copy}, which holds only policy.json and policy.onnx" in (
            capsys.readouterr().err)
    assert sorted(p.name for p in copy.iterdir()) == ["policy.json", "policy.onnx"]


def test_how_policy_json_is_written_is_no_change_but_a_repeated_key_or_a_folder_is_refused(bundle, tmp_path, capsys):
    # Indentation, key order, 3 for 3.0 and an editor's byte-order mark change nothing the file says: accepted.
    text = (bundle / "policy.json").read_text()
    manifest = json.loads(text)
    rewritten = {key: manifest[key] for key in reversed(manifest)}
    rewritten["action_limits"] = {**manifest["action_limits"], "vx": int(manifest["action_limits"]["vx"])}
    copy = copy_of(bundle, tmp_path)
    (copy / "policy.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rewritten).encode())
    assert load_bundle(copy).action_limits[0] == manifest["action_limits"]["vx"]
    # A key given twice: a reader sees the first, JSON takes the last.
    doubled = text.replace('"vx": ', '"vx": 9.0, "vx": ', 1)
    (copy / "policy.json").write_text(doubled)
    with pytest.raises(BundleError, match='policy.json cannot be read \\(it gives "vx" twice\\)'):
        load_bundle(copy)
    (copy / "policy.json").unlink()
    (copy / "policy.json").mkdir()
    with pytest.raises(BundleError, match="its policy.json is a folder, not a file"):
        load_bundle(copy)
    assert main(["fly", "--pilot", str(copy), "--episodes", "1"]) == 2
    assert "its policy.json is a folder, not a file; export the bundle again" in capsys.readouterr().err


def test_a_file_given_as_a_bundle_is_named_a_file(tmp_path):
    # Not "no such folder": the file is there. A checkpoint is pointed at navigator export.
    (tmp_path / "clip.avi").write_bytes(b"x")
    shutil.copy(pretrained_checkpoint("fly-to-target"), tmp_path / "my run.pt")
    with pytest.raises(BundleError, match="clip.avi is a file, not a bundle folder; give the folder navigator export"):
        load_bundle(tmp_path / "clip.avi")
    advice = f"a policy checkpoint is exported to one first: navigator export --checkpoint '{tmp_path}/my run.pt'"
    with pytest.raises(BundleError, match=re.escape(f"is a file, not a bundle folder; {advice}")):
        load_bundle(tmp_path / "my run.pt")
