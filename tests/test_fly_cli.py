"""`navigator fly` end to end, as a user runs it."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from navigator.cli import main
from onboard_support import resealed
from records_support import edited_copy


def fly_json(capsys, *args):
    assert main(["fly", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_reports_every_episode_and_a_summary(capsys):
    document = fly_json(capsys, "--episodes", "2", "--seed", "3", "--pilot", "expert")
    assert [e["seed"] for e in document["episodes"]] == [3, 4]
    assert document["summary"]["episodes"] == 2
    assert document["summary"]["success_rate"] == 1.0
    assert document["config"]["scenario"]["preset"] == "summer"


def test_same_seed_same_result(capsys):
    args = ("--episodes", "1", "--seed", "8", "--preset", "wind", "--max-seconds", "4")
    assert fly_json(capsys, *args)["episodes"] == fly_json(capsys, *args)["episodes"]


def test_table_output(capsys, tmp_path):
    from navigator.pilots import pretrained_checkpoint

    assert main(["fly", "--episodes", "1", "--task", "hike", "--max-seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert "hike · summer · x500 · pilot pretrained" in out and "timeout" in out and "success rate 0%" in out
    # A long pilot path is printed whole, on one line, where it can be copied from (not a file: nothing wraps).
    pilot = tmp_path / ("a-long-folder-name-" * 4) / "best.pt"
    pilot.parent.mkdir()
    shutil.copy(pretrained_checkpoint("hike"), pilot)
    assert main(["fly", "--episodes", "1", "--task", "hike", "--max-seconds", "1", "--pilot", str(pilot)]) == 0
    assert f"hike · summer · x500 · pilot {pilot}" in capsys.readouterr().out.splitlines()


def test_shipped_policy_is_the_default_pilot_and_reaches_the_target(capsys):
    """A regression test of the shipped weights and everything between them and the world (preprocessing, the
    policy's step, the action convention): these held-out seeds are ones it flies successfully."""
    document = fly_json(capsys, "--episodes", "2", "--seed", "5000")
    assert document["config"]["pilot"] == "pretrained"
    assert [e["ending"] for e in document["episodes"]] == ["success", "success"]


def test_video_has_onboard_beside_chase_view(tmp_path, capsys):
    path = tmp_path / "flight.mp4"
    document = fly_json(capsys, "--episodes", "1", "--max-seconds", "1", "--video", str(path))
    assert document["video"] == str(path)
    capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = capture.read()
    capture.release()
    assert ok and frames == 30
    assert frame.shape == (240, 320 + 320, 3)
    assert list(tmp_path.iterdir()) == [path]  # no partial file left behind


def test_config_file_and_flags(tmp_path, capsys):
    config = tmp_path / "winter.yaml"
    config.write_text("scenario:\n  preset: winter\n  airframe: cf2x\nepisodes: 1\n")
    document = fly_json(capsys, "--config", str(config), "--max-seconds", "1", "--pilot", "expert")
    assert document["config"]["scenario"]["preset"] == "winter"
    assert document["config"]["scenario"]["airframe"] == "cf2x"


@pytest.mark.parametrize("args, message", [
    (["--preset", "spring"], "unknown preset 'spring'; valid presets are: summer"),
    (["--task", "race"], "unknown task 'race'; valid tasks are: fly-to-target, hike, follow"),
    (["--airframe", "f450"], "unknown airframe 'f450'; valid airframes are: x500, cf2x"),
    (["--pilot", "robot"], "unknown pilot 'robot'"),
    (["--episodes", "0"], "--episodes must be in [1, 1000000], got 0"),
    (["--video", "out.avi"], "must end in .mp4"),
])
def test_bad_input_is_a_clear_error(args, message, capsys):
    assert main(["fly", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_policy_flies_only_the_airframe_it_was_trained_on(capsys):
    assert main(["fly", "--airframe", "cf2x", "--episodes", "1"]) == 2
    assert "was trained on the x500 airframe, not cf2x" in capsys.readouterr().err


def test_malformed_config_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("scenario:\n  preset: [winter\n")
    assert main(["fly", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "is not valid YAML: " in error and "(line 3, column 1)" in error  # PyYAML's report, in one line
    assert len(error.strip().splitlines()) == 1


def test_gui_without_a_display_says_how_to_fix_it(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["fly", "--gui"]) == 2
    assert "xvfb-run" in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "navigator.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "fly" in result.stdout and "data" in result.stdout


def assert_contains(recorded, given, where: str) -> None:
    """Every value of `given` (nested dicts and lists of them) equals the one `recorded` holds at the same place."""
    if isinstance(given, dict):
        for key, value in given.items():
            assert_contains(recorded[key], value, f"{where}.{key}")
    elif isinstance(given, list):
        assert len(recorded) == len(given), where
        for index, (a, b) in enumerate(zip(recorded, given)):
            assert_contains(a, b, f"{where}[{index}]")
    else:
        assert recorded == given, f"{where}: checkpoint has {recorded!r}, recipe {given!r}"


@pytest.mark.parametrize("task", ["fly-to-target", "hike", "follow"])
def test_a_policy_is_shipped_for_every_task_and_records_where_it_came_from(task):
    from navigator.pilots import pretrained_checkpoint
    from policies.checkpoint import load_checkpoint

    policy, metadata = load_checkpoint(pretrained_checkpoint(task))
    assert policy.config.model == "cfc-ncp" and policy.config.image.normalisation == "per_frame"
    assert metadata["parameter_counts"]["head"] == 20_272
    # Trained by the shipped recipe: every setting it names is what the checkpoint records (the output folder and
    # thread count cannot change what a run computes, so they may differ), and it is the recipe's last stage.
    recipe = yaml.safe_load((Path(__file__).parents[1] / "launch" / "train" / f"{task.replace('-', '_')}.yaml"
                             ).read_text())
    rounds = recipe.get("dagger", {}).get("rounds", 0)
    assert metadata["airframe"] == "x500" and metadata["stage"] == (f"dagger-{rounds}" if rounds else "train")
    for name in set(recipe) - {"out", "threads"}:
        assert_contains(metadata["train_config"][name], recipe[name], name)
    # Demonstrations of this task only, all in the training scenery: no held-out preset was ever trained on.
    assert {seeds["task"] for seeds in metadata["training_seeds"]} == {task}
    assert {part["preset"] for part in metadata["train_config"]["collect"]["parts"]} == {"summer"}


@pytest.mark.parametrize("task", ["fly-to-target", "hike", "follow"])
def test_pretrained_is_the_policy_of_the_task(task):
    import gymnasium

    import sim_envs
    from navigator.pilots import make_pilot

    env = gymnasium.make(sim_envs.task_id(task))
    try:
        assert make_pilot("pretrained", env).name.endswith(f"{task}-cfc-ncp.pt")
    finally:
        env.close()


def test_video_replaces_a_file_only_with_overwrite(tmp_path, capsys):
    path = tmp_path / "flight.mp4"
    path.write_text("an older flight the user keeps\n")
    args = ["fly", "--pilot", "expert", "--episodes", "1", "--max-seconds", "0.3", "--video", str(path)]
    assert main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert path.read_text() == "an older flight the user keeps\n"
    assert main([*args, "--overwrite"]) == 0
    assert cv2.VideoCapture(str(path)).isOpened() and sorted(tmp_path.iterdir()) == [path]


def test_a_policy_flies_only_the_task_it_was_trained_on(capsys):
    from navigator.pilots import pretrained_checkpoint

    assert main(["fly", "--task", "hike", "--pilot", str(pretrained_checkpoint("follow")), "--episodes", "1"]) == 2
    assert "was trained on follow demonstrations, not hike; use it with --task follow, or" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--episodes", "1", "--episodes", "2"], ["--seed=3", "--seed", "4"],
                                  ["--json", "--json"]])
def test_an_option_given_twice_is_refused_in_one_line(args, capsys):
    assert main(["fly", *args]) == 2
    error = capsys.readouterr().err
    assert "given 2 times; give it once (see 'navigator fly --help')" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--overwrite"], "--overwrite lets --video replace an existing file, and no --video was given"),
    (["--video", ""], "--video: empty value; give a value, or omit --video"),
])
def test_flags_that_would_do_nothing_are_refused_in_one_line(args, message, capsys):
    assert main(["fly", "--episodes", "1", *args]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.splitlines()) == 1


def test_flying_a_policy_on_its_training_worlds_is_allowed_with_a_warning(monkeypatch, capsys):
    """eval, export and explain refuse a policy's training worlds; fly, for watching, flies them and says so."""
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["fly", "--episodes", "2", "--seed", "598", "--max-seconds", "0.3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: these are worlds the pilot trained on, so success on them says little about the others: pilot " \
           "pretrained was trained on fly-to-target seeds 0-599" in captured.err
    assert "this flight would fly seeds 598-599 of them" in captured.err
    assert len(json.loads(captured.out)["episodes"]) == 2
    assert main(["fly", "--episodes", "1", "--seed", "600", "--max-seconds", "0.3"]) == 0  # the next world: unseen
    assert "warning" not in capsys.readouterr().err


def test_a_pilot_that_does_not_record_its_training_worlds_is_flown_with_a_warning(tmp_path, monkeypatch, capsys):
    # A bundle whose policy.json keeps no record of its training (source: null) cannot be checked for its worlds.
    monkeypatch.setenv("COLUMNS", "1000")
    bundle = edited_copy(Path(__file__).resolve().parent.parent / "policies" / "pretrained" / "bundles" /
                         "fly-to-target", tmp_path / "bundle", "policy.json", resealed(lambda manifest: manifest.update(
                             source=None)))
    assert main(["fly", "--pilot", str(bundle), "--episodes", "1", "--max-seconds", "0.3"]) == 0
    printed = capsys.readouterr()
    # On stderr, apart from the results on stdout (which a user may redirect to a file).
    assert f"warning: pilot {bundle} does not record every world it was trained on" in printed.err
    assert "warning" not in printed.out


def test_a_policy_of_several_tasks_is_offered_each_of_them():
    """Trained on fly-to-target and follow demonstrations, a policy was offered only the first of its tasks."""
    from navigator.errors import UserError
    from navigator.pilots import check_scenario
    from sim_envs import make_env

    env = make_env("hike")
    try:
        with pytest.raises(UserError, match="use it with --task fly-to-target or --task follow, or train a policy "
                                            "for hike") as refused:
            check_scenario("runs/two/best.pt", env, "scenario.camera", {}, None, ["fly-to-target", "follow"])
    finally:
        env.close()
    # raised in an evaluation worker, it reaches the parent whole: differences and advice apart, as explain needs
    copy = pickle.loads(pickle.dumps(refused.value))
    assert (str(copy), copy.differences, copy.advice) == (str(refused.value), refused.value.differences,
                                                          refused.value.advice)
    assert copy.differences == ["runs/two/best.pt was trained on fly-to-target and follow demonstrations, not hike"]
