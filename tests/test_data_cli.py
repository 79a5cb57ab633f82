"""`navigator data` through the CLI entry point: output, exit codes and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from navigator.cli import main
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    writer = DatasetWriter.create(tmp_path_factory.mktemp("cli") / "ds", image_size=(48, 64), recipe={})
    for seed in range(3):
        writer.write(synthetic_episode(seed, frames=24, preset="summer" if seed < 2 else "winter+wind"))
    return writer.path


def test_info_table_and_json(dataset, capsys):
    assert main(["data", "info", str(dataset)]) == 0
    text = capsys.readouterr().out
    assert "3 episodes, 72 frames" in text and "winter+wind" in text and "yaw_rate" in text
    assert main(["data", "info", str(dataset), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["episodes"], document["frames"]) == (3, 72)
    assert [(g["preset"], g["episodes"]) for g in document["groups"]] == [("summer", 2), ("winter+wind", 1)]
    assert [c["name"] for c in document["action_label"]] == ["vx", "vy", "vz", "yaw_rate"]
    assert all(-1 <= c["min"] <= c["mean"] <= c["max"] <= 1 for c in document["action_executed"])


def test_check_exit_codes_and_all_problems(dataset, tmp_path, capsys):
    assert main(["data", "check", str(dataset)]) == 0
    assert "3 episodes checked, 0 errors, 0 warnings: sound" in capsys.readouterr().out
    broken = tmp_path / "broken"
    writer = DatasetWriter.create(broken, image_size=(48, 64), recipe={})
    entries = [writer.write(synthetic_episode(seed, frames=6)) for seed in range(3)]
    for entry in entries[:2]:
        (broken / "episodes" / entry.file).write_bytes(b"junk")
    assert main(["data", "check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert all(f"{broken}/episodes/{e.file}: sha256" in out for e in entries[:2]) and "NOT sound" in out
    assert main(["data", "check", str(broken), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)[0]
    assert not report["sound"] and len(report["problems"]) == 2


def test_preview_sheet_and_video(dataset, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["data", "preview", str(dataset), "--out", str(sheet), "--episodes", "2"]) == 0
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 2 * 48 * 3 and image.shape[1] == 8 * 64 * 3
    video = tmp_path / "clip.mp4"
    assert main(["data", "preview", str(dataset), "--out", str(video), "--episodes", "2"]) == 0
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 48 and capture.read()[1].shape == (48 * 6, 64 * 6, 3)
    capture.release()
    assert main(["data", "preview", str(dataset), "--out", str(tmp_path / "x.gif")]) == 2
    assert f"--out {tmp_path / 'x.gif'} must end in .png or .mp4" in capsys.readouterr().err


def test_preview_says_when_the_dataset_holds_fewer_episodes_than_asked(dataset, tmp_path, capsys):
    assert main(["data", "preview", str(dataset), "--out", str(tmp_path / "two.png"), "--episodes", "2"]) == 0
    assert capsys.readouterr().out.startswith("preview of 2 episodes written to")
    assert main(["data", "preview", str(dataset), "--out", str(tmp_path / "all.png"), "--episodes", "10"]) == 0
    assert "preview of 3 episodes (every one there is; --episodes asked for 10) written to" in capsys.readouterr().out


def test_export_robomimic(dataset, tmp_path, capsys):
    out = tmp_path / "demos.hdf5"
    assert main(["data", "export", str(dataset), "--format", "robomimic", "--out", str(out)]) == 0
    assert "3 episodes exported" in capsys.readouterr().out and out.stat().st_size > 0


def test_bad_input_gives_a_clean_named_error(dataset, tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such dataset folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "info", str(tmp_path / "empty")]) == 2
    assert "manifest.json: manifest is missing" in capsys.readouterr().err
    # check too: a folder with nothing of a dataset is bad input (2), like a missing one, not an unsound dataset (1)
    assert main(["data", "check", str(tmp_path / "empty")]) == 2
    assert "empty: is not a dataset folder (it holds no manifest.json and no episode files)" in capsys.readouterr().err
    small = DatasetWriter.create(tmp_path / "small", image_size=(24, 32), recipe={})
    small.write(synthetic_episode(0, frames=4, height=24, width=32))
    assert main(["data", "info", str(dataset), str(small.path)]) == 2
    err = capsys.readouterr().err
    assert "different image sizes" in err and str(dataset) in err and str(small.path) in err and "Traceback" not in err


@pytest.mark.parametrize("action, name", [(["export", "--format", "robomimic"], "demos.hdf5"),
                                          (["preview", "--episodes", "1"], "sheet.png")])
def test_a_file_of_the_users_is_replaced_only_with_overwrite(dataset, tmp_path, capsys, action, name):
    out = tmp_path / name
    out.write_text("keep me\n")
    command = ["data", action[0], str(dataset), *action[1:], "--out", str(out)]
    assert main(command) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main([*command, "--overwrite"]) == 0
    assert out.read_bytes() != b"keep me\n" and sorted(tmp_path.iterdir()) == [out]


def test_info_is_not_cut_at_80_columns_when_piped(tmp_path, capsys):
    preset = "winter+wind+night+distractors+occlusion+noise"
    writer = DatasetWriter.create(tmp_path / "long", image_size=(48, 64), recipe={})
    writer.write(synthetic_episode(0, frames=6, preset=preset))
    assert main(["data", "info", str(writer.path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if preset in line)  # whole, on one line
    assert "…" not in out and len(row) > 80


@pytest.mark.parametrize("action", [["info"], ["check"], ["export", "--format", "robomimic", "--out", "demos.hdf5"]])
def test_the_same_dataset_twice_is_refused(dataset, tmp_path, capsys, monkeypatch, action):
    monkeypatch.chdir(tmp_path)
    assert main(["data", action[0], str(dataset), f"{dataset}/", *action[1:]]) == 2
    assert f"{dataset} is given twice: give each dataset once" in capsys.readouterr().err
    assert not (tmp_path / "demos.hdf5").exists()


def test_an_incomplete_dataset_is_sound_but_named_so(tmp_path, capsys):
    recipe = {"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 5}], "seed": 0}
    writer = DatasetWriter.create(tmp_path / "part", image_size=(48, 64), recipe=recipe)
    for seed in range(2):
        writer.write(synthetic_episode(seed, frames=6))
    assert main(["data", "check", str(writer.path)]) == 0
    out = capsys.readouterr().out
    assert "incomplete: 2 of 5 episodes flown" in out and "missing fly-to-target/summer seeds 2-4" in out
    assert f"navigator collect --out {writer.path} --resume" in out and "1 warning: sound" in out
    assert main(["data", "info", str(writer.path)]) == 0
    assert "2 of 5 episodes (incomplete)" in capsys.readouterr().out
    assert main(["data", "info", str(writer.path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["episodes"], document["expected_episodes"], list(document["incomplete"])) == (
        2, 5, [str(writer.path)])
    out = tmp_path / "part.h5"
    assert main(["data", "export", str(writer.path), "--format", "robomimic", "--out", str(out)]) == 0
    assert "incomplete: 2 of 5 episodes flown" in capsys.readouterr().err and out.exists()


def test_check_of_an_edited_manifest_lists_each_problem_in_the_users_terms(dataset, tmp_path, capsys):
    edited = tmp_path / "edited"
    writer = DatasetWriter.create(edited, image_size=(48, 64), recipe={})
    for seed in range(2):
        writer.write(synthetic_episode(seed, frames=6))
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["episodes"][0].update(success=True, ending="success", frames=999)
    manifest["episodes"][1]["success"] = "yes"
    manifest["image_width"] = -3
    (edited / "manifest.json").write_text(json.dumps(manifest))
    assert main(["data", "check", str(edited)]) == 1
    out = capsys.readouterr().out
    assert "5 errors" in out and "image_width must be a positive integer" in out and "(got -3)" in out
    assert 'success must be true or false (got "yes")' in out and "lists frames 999" in out
    assert "lists success true but the episode file records false" in out
    assert "EpisodeKey" not in out and "camera size" not in out


def test_a_hand_edited_manifest_is_refused_by_every_reader(dataset, tmp_path, capsys):
    """A manifest that no longer matches its checksum lists what its episodes may not be (here a held-out preset
    renamed to the training one): nothing reads it, nothing is written, and `data check` says what differs."""
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(dataset, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["episodes"][2]["preset"] = "summer"
    (edited / "manifest.json").write_text(json.dumps(manifest))
    outputs = {"preview": tmp_path / "sheet.png", "export": tmp_path / "demos.hdf5", "train": tmp_path / "run"}
    for command in (["data", "info", str(edited)],
                    ["data", "preview", str(edited), "--out", str(outputs["preview"])],
                    ["data", "export", str(edited), "--format", "robomimic", "--out", str(outputs["export"])],
                    ["train", "--data", str(edited), "--out", str(outputs["train"]), "--epochs", "1"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert f"{edited / 'manifest.json'}: it does not match its sha256: it was edited by hand or damaged" in err
        assert "restore it from a copy of the dataset" in err and f"navigator data check {edited}" in err
    assert not any(path.exists() for path in outputs.values())
    assert main(["data", "check", str(edited)]) == 1
    out = capsys.readouterr().out
    assert "does not match its sha256" in out
    assert 'lists preset "summer" but the episode file records "winter+wind"' in out
    assert "navigator data check" not in out


def test_a_file_is_not_taken_for_a_dataset_folder(dataset, capsys):
    for action in ("check", "info"):
        assert main(["data", action, str(dataset / "manifest.json")]) == 2
        err = capsys.readouterr().err
        assert f"{dataset / 'manifest.json'}: is a file, not a dataset folder" in err and f"({dataset})" in err


def test_export_writes_hdf5_files_only(dataset, tmp_path, capsys):
    out = tmp_path / "demos.txt"
    assert main(["data", "export", str(dataset), "--format", "robomimic", "--out", str(out)]) == 2
    assert f"--out {out} must end in .hdf5 or .h5" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("recipe, problem", [
    ({"parts": [], "seed": 0}, "must hold at least one part"),
    ({"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 0}]}, "parts[0].episodes"),
    ({"parts": [{"task": "fly-to-target", "preset": "sumer", "episodes": 2}]}, "sumer"),
    ({"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 2}], "colour": 1}, "colour"),
    ({"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": "2"}]}, "whole number, got \"2\""),
])
def test_check_warns_of_a_recipe_that_collect_resume_would_refuse(tmp_path, capsys, recipe, problem):
    """`data check` reads a recorded recipe as `collect --resume` does, so it never calls a dataset continuable that
    resume refuses; the episodes themselves stay sound, so it is a warning."""
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe=recipe)
    writer.write(synthetic_episode(0, frames=6))
    assert main(["data", "check", str(writer.path)]) == 0
    out = capsys.readouterr().out
    assert "cannot be continued by `navigator collect --resume`" in out and problem in out, out
    assert ": sound" in out and "YAML" not in out  # a manifest is JSON navigator wrote
    assert main(["collect", "--out", str(writer.path), "--resume"]) == 2
    assert problem in capsys.readouterr().err


def test_check_accepts_the_recipe_collect_writes(tmp_path, capsys):
    from navigator.collect import CollectConfig

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe=CollectConfig().recipe())
    writer.write(synthetic_episode(0, frames=6))
    main(["data", "check", str(writer.path)])
    assert "cannot be continued" not in capsys.readouterr().out


def test_check_warns_of_episodes_its_recipe_does_not_ask_for(tmp_path, capsys):
    recipe = {"parts": [{"task": "fly-to-target", "preset": "winter", "episodes": 2}], "seed": 0}
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe=recipe)
    for seed in range(2):
        writer.write(synthetic_episode(seed, frames=6))  # summer episodes, in a dataset whose recipe says winter
    assert main(["data", "check", str(writer.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 episodes it holds are not in its recipe (the first fly-to-target/summer seed 0)" in out


def test_data_check_runs_without_the_simulator(tmp_path):
    """The dataset tools read datasets on an install without pybullet, gymnasium or torch (DESIGN.md); reading a
    recipe as collect does needs the simulator, and is left out there, as collect --resume cannot run there either."""
    import subprocess
    import sys

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={"parts": [], "seed": 0})
    writer.write(synthetic_episode(0, frames=6))
    path = writer.path
    del writer  # its lock goes with it: the dataset is no longer being written
    script = ("import sys\nfor name in ('gymnasium', 'pybullet', 'torch'):\n    sys.modules[name] = None\n"
              "from navigator.cli import main\nsys.exit(main(['data', 'check', sys.argv[1]]))\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 episode checked, 0 errors" in done.stdout and "sound" in done.stdout


@pytest.mark.parametrize("action", ["check", "info", "preview"])
def test_another_commands_folder_is_a_wrong_argument_for_every_data_action(tmp_path, capsys, action):
    """An evaluation's folder given for a dataset: exit 2 with what it holds (check exited 1, 'NOT sound')."""
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "eval.json").write_text("{}")
    out = ["--out", str(tmp_path / "sheet.png")] if action == "preview" else []
    assert main(["data", action, str(folder), *out]) == 2
    error = capsys.readouterr().err
    assert f"{folder}" in error and len(error.strip().splitlines()) == 1
    if action == "check":
        assert f"{folder} holds an evaluation (eval.json), not a dataset" in error


def test_exporting_an_incomplete_dataset_warns_on_stderr_and_keeps_stdout_to_the_result(tmp_path, capsys):
    """The warning goes where every warning goes (stderr, through print_warning): stdout is the result alone."""
    recipe = {"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 4}], "seed": 0, "workers": 1}
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe=recipe)
    for seed in (0, 1):
        writer.write(synthetic_episode(seed, frames=5, height=24, width=32))
    assert main(["data", "export", str(writer.path), "--format", "robomimic", "--out", str(tmp_path / "d.hdf5")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"2 episodes exported to {tmp_path / 'd.hdf5'} (robomimic): 1 in mask/valid, "
                                         f"1 in mask/train"]
    assert captured.err.startswith(f"warning: {writer.path}: ")


@pytest.mark.parametrize("fraction", ["0.1", "0.5", "0.99"])
def test_exporting_one_episode_keeps_it_for_training_and_says_validation_is_empty(tmp_path, capsys, fraction):
    """--val-fraction 0.5 or more put a single episode in mask/valid, leaving mask/train empty, without a word."""
    import h5py

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe={})
    writer.write(synthetic_episode(0, frames=5, height=24, width=32))
    out = tmp_path / "one.hdf5"
    assert main(["data", "export", str(writer.path), "--format", "robomimic", "--out", str(out),
                 "--val-fraction", fraction]) == 0
    assert "mask/valid is empty: one episode cannot be split" in capsys.readouterr().err
    with h5py.File(out) as handle:
        assert [name.decode() for name in handle["mask/train"][()]] == ["demo_0"] and len(handle["mask/valid"]) == 0
