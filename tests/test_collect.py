"""`navigator collect`: demonstrations recorded into the dataset format, deterministic, parallel and resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from signals_support import default_sigint

from navigator.cli import main
from navigator.dataset import Dataset, check_dataset, read_manifest
from navigator.dataset.schema import ENDINGS as DATASET_ENDINGS
from sim_envs.tasks.base import ENDINGS as TASK_ENDINGS

SHORT = ["--max-seconds", "2"]  # short episodes keep the suite fast; they end in timeout


def collect(*args):
    return main(["collect", *args])


def checksums(path):
    return {e.file: e.sha256 for e in read_manifest(path).episodes}


def test_every_task_ending_can_be_stored():
    assert set(TASK_ENDINGS) == set(DATASET_ENDINGS)


def test_records_every_field_of_the_contract(tmp_path):
    out = tmp_path / "ds"
    assert collect("--out", str(out), "--episodes", "1", "--seed", "2", "--workers", "1") == 0
    dataset = Dataset.open(out)
    episode = dataset.read(dataset.entries[0])
    frames = episode.frames
    assert frames > 30 and episode.images.shape == (frames, 48, 64, 3)
    assert episode.state.shape == (frames, 7) and episode.dt.shape == (frames,)
    assert np.allclose(episode.dt, 1 / 30) and np.all(np.diff(episode.timestamp) > 0)
    # DART: what was flown differs from the clean label, and both stay within the normalised range.
    assert not np.array_equal(episode.action_label, episode.action_executed)
    assert np.abs(episode.action_executed).max() <= 1.0
    for name in ("position", "velocity", "yaw", "target_position", "target_distance"):
        assert len(episode.privileged[name]) == frames
    meta = episode.metadata
    assert (meta["task"], meta["preset"], meta["seed"], meta["airframe"]) == ("fly-to-target", "summer", 2, "x500")
    assert meta["outcome"]["ending"] == "success" and meta["camera"]["width"] == 64
    assert meta["dart_noise_std"] == 0.1 and meta["software_version"]


def test_recovery_noise_fades_at_the_target_to_the_share_asked(tmp_path):
    """By default the noise is gone within 1 m of the target, where the expert holds; `dart_near_target` keeps that
    share of it there, and the episode says so."""
    executed_near = {}
    for share in (0.0, 0.5):
        config = tmp_path / f"near-{share}.yaml"
        config.write_text(f"parts: [{{task: fly-to-target, preset: summer, episodes: 1}}]\nseed: 2\n"
                          f"dart_near_target: {share}\n")
        out = tmp_path / f"ds-{share}"
        assert collect("--config", str(config), "--out", str(out), "--workers", "1") == 0
        dataset = Dataset.open(out)
        episode = dataset.read(dataset.entries[0])
        near = episode.privileged["target_distance"] < 1.0
        assert near.sum() > 10 and episode.metadata["dart_near_target"] == share
        executed_near[share] = np.abs(episode.action_executed[near] - episode.action_label[near]).max()
        assert check_dataset(out).sound
    assert executed_near[0.0] == 0.0 and executed_near[0.5] > 0.01


def test_same_recipe_same_checksums_whatever_the_worker_count(tmp_path):
    args = ["--episodes", "3", "--preset", "noise", *SHORT]
    assert collect("--out", str(tmp_path / "one"), "--workers", "1", *args) == 0
    assert collect("--out", str(tmp_path / "two"), "--workers", "2", *args) == 0
    assert checksums(tmp_path / "one") == checksums(tmp_path / "two")
    assert len(checksums(tmp_path / "one")) == 3


def test_mixed_recipe_from_yaml(tmp_path):
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text("parts:\n  - {task: fly-to-target, preset: summer, episodes: 1}\n"
                      "  - {task: follow, preset: winter, episodes: 1}\nmax_seconds: 1\nworkers: 1\n")
    assert collect("--config", str(recipe), "--out", str(tmp_path / "ds")) == 0
    manifest = read_manifest(tmp_path / "ds")
    assert {(e.task, e.preset) for e in manifest.episodes} == {("fly-to-target", "summer"), ("follow", "winter")}
    assert manifest.recipe["parts"][1]["task"] == "follow"


@pytest.mark.parametrize("flags, said", [(["--preset", "winter"], "--preset describes one part"),
                                         (["--episodes", "1"], "--episodes describes one part"),
                                         (["--task", "hike", "--preset", "night"], "--task and --preset describe one "
                                                                                    "part")])
def test_a_part_flag_never_silently_replaces_the_parts_of_a_recipe(tmp_path, capsys, monkeypatch, flags, said):
    monkeypatch.setenv("COLUMNS", "1000")
    recipe = Path(__file__).resolve().parents[1] / "launch" / "collect" / "mixed.yaml"
    out = tmp_path / "ds"
    assert collect("--config", str(recipe), "--out", str(out), *flags, "--workers", "1") == 2
    error = capsys.readouterr().err
    assert said in error and f"--config {recipe} has 3 parts" in error and "drop --config" in error
    assert not out.exists()


def test_shipped_mixed_recipe_is_valid():
    from navigator.collect import CollectConfig
    from navigator.config import load_config

    # Names are validated (and normalised) when the config is built.
    config = load_config(CollectConfig, Path(__file__).resolve().parents[1] / "launch" / "collect" / "mixed.yaml")
    assert {part.task for part in config.parts} == {"fly-to-target", "hike", "follow"}


def test_dropped_failures_are_marked_not_stored(tmp_path, capsys):
    out = tmp_path / "ds"
    assert collect("--out", str(out), "--episodes", "2", "--drop-failed", "--workers", "1", *SHORT) == 0
    manifest = read_manifest(out)
    assert manifest.episodes == () and [d.ending for d in manifest.dropped] == ["timeout", "timeout"]
    assert check_dataset(out).sound
    # A resumed collection does not fly dropped episodes again.
    assert collect("--out", str(out), "--episodes", "2", "--drop-failed", "--workers", "1", "--resume", *SHORT) == 0
    assert "flew 0 this run" in capsys.readouterr().out
    # Its success rate is of the episodes flown, the dropped ones counted: 0 of 2, not 0 of none.
    assert main(["data", "info", str(out)]) == 0
    assert "0 episodes, 0 frames, 0.0 min simulated, success 0% of those flown" in capsys.readouterr().out


def test_success_rate_counts_dropped_failures():
    """With --drop-failed every kept episode is a success: the rate is of the episodes flown."""
    from navigator.dataset.summary import GroupSummary

    assert GroupSummary("fly-to-target", "summer", episodes=3, successes=3, dropped=1).success_rate == 0.75
    assert GroupSummary("fly-to-target", "summer").success_rate is None


def test_kill_minus_nine_then_resume(tmp_path):
    out = tmp_path / "ds"
    command = [sys.executable, "-m", "navigator.cli", "collect", "--out", str(out), "--episodes", "6",
               "--workers", "1", "--max-seconds", "3"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (out / "manifest.json").exists() and len(json.loads((out / "manifest.json").read_text())["episodes"]) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted = read_manifest(out)
    assert 2 <= len(interrupted.episodes) < 6
    assert check_dataset(out).sound  # partial files are at most warnings, never episodes
    for entry in interrupted.episodes:
        Dataset.open(out).read(entry)  # every finished episode is readable and matches its checksum
    assert subprocess.run([*command, "--resume"], capture_output=True).returncode == 0
    resumed = checksums(out)
    assert len(resumed) == 6
    assert subprocess.run([*command[:5], str(tmp_path / "fresh"), *command[6:]], capture_output=True).returncode == 0
    assert resumed == checksums(tmp_path / "fresh")  # an interrupted and resumed run gives the same dataset
    assert not [p for p in (out / "episodes").iterdir() if not p.name.endswith(".npz")]


@pytest.mark.parametrize("args, message", [
    (["--task", "race"], "unknown task 'race'"),
    (["--preset", "summer+spring"], "unknown preset 'spring'"),
    (["--airframe", "f450"], "unknown airframe 'f450'"),
    (["--episodes", "0"], "--episodes must be in [1, 1000000], got 0"),
    (["--dart-noise", "-1"], "--dart-noise must be in [0, 1], got -1.0"),
])
def test_bad_input_is_a_clear_error(tmp_path, args, message, capsys):
    assert collect("--out", str(tmp_path / "ds"), *args) == 2
    assert message in capsys.readouterr().err


def test_existing_dataset_needs_resume_and_resume_needs_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert collect("--out", str(out), "--resume", *SHORT) == 2
    assert "no dataset to continue" in capsys.readouterr().err
    assert collect("--out", str(out), "--episodes", "1", "--workers", "1", *SHORT) == 0
    assert collect("--out", str(out), "--episodes", "1", *SHORT) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert collect("--out", str(out), "--episodes", "1", "--preset", "winter", "--resume", *SHORT) == 2
    assert "--preset: dataset has 'summer', you gave 'winter'; drop the flags that differ" in capsys.readouterr().err
    # Only the episode count differs: the message says so, and how to extend the dataset instead.
    assert collect("--out", str(out), "--episodes", "2", "--workers", "1", "--resume", *SHORT) == 2
    error = capsys.readouterr().err
    assert "--episodes: dataset has 1, you gave 2" in error and "pass --extend" in error
    assert len(read_manifest(out).episodes) == 1
    # A damaged manifest, then none: each refusal says where to go from there (not back to the other refusal).
    manifest = out / "manifest.json"
    manifest.write_text('{"format": ')
    assert collect("--out", str(out), "--resume", *SHORT) == 2
    assert "it is cut short" in (error := capsys.readouterr().err) and "restore it from a copy" in error
    manifest.unlink()
    assert collect("--out", str(out), "--resume", *SHORT) == 2
    assert "holds files but no manifest.json" in (error := capsys.readouterr().err) and "new --out" in error


def short_config(episodes: int, **changes):
    from navigator.collect import CollectConfig
    from navigator.config import load_config

    return load_config(CollectConfig, None, {"parts": [{"episodes": episodes}], "max_seconds": 1.0, "workers": 1,
                                             **changes})


def test_extending_a_dataset_is_explicit_and_recorded(tmp_path):
    from navigator.collect import collect as collect_into, open_for_collection
    from navigator.errors import UserError

    out = tmp_path / "ds"
    collect_into(out, short_config(1), open_for_collection(out, short_config(1), resume=False)[0])
    with pytest.raises(UserError, match="other settings differ from the dataset's: seed: dataset has 0, you gave 5"):
        open_for_collection(out, short_config(2, seed=5), resume=True, extend=True)
    with pytest.raises(UserError, match="--extend needs more episodes than .* is set to"):
        open_for_collection(out, short_config(1), resume=True, extend=True)
    writer, _ = open_for_collection(out, short_config(2), resume=True, extend=True)
    collect_into(out, short_config(2), writer)
    manifest = read_manifest(out)
    assert [e.seed for e in manifest.episodes] == [0, 1] and manifest.recipe["parts"][0]["episodes"] == 2
    assert manifest.recipe["extensions"] == [{"parts[0].episodes": {"from": 1, "to": 2}}]
    assert check_dataset(out).sound
    # The extended dataset resumes with its new counts (nothing left to fly).
    writer, _ = open_for_collection(out, short_config(2), resume=True)
    assert writer.missing(short_config(2).keys()) == []


def test_a_collection_that_fails_before_its_first_episode_leaves_no_folder(tmp_path):
    from navigator.collect import collect as collect_into, open_for_collection
    from navigator.errors import UserError

    damaged = tmp_path / "policy.pt"
    damaged.write_bytes(b"")
    config = short_config(1, pilot=str(damaged))  # found only when the first episode starts
    for out in (tmp_path / "new" / "ds", tmp_path / "mine"):
        if out.name == "mine":
            out.mkdir()
        writer, _ = open_for_collection(out, config, resume=False)
        with pytest.raises(UserError, match=r"policy.pt is not a liquid-navigator checkpoint \(empty file\)"):
            collect_into(out, config, writer)
        assert not (tmp_path / "new").exists() if out.name == "ds" else (out.is_dir() and not any(out.iterdir()))


def test_ctrl_c_stops_every_worker_quietly_and_the_dataset_resumes(tmp_path):
    out = tmp_path / "ds"
    command = [sys.executable, "-m", "navigator.cli", "collect", "--out", str(out), "--episodes", "8",
               "--workers", "2", "--max-seconds", "2"]
    # Its own session, so that the signal can go to its whole process group, as a terminal's Ctrl-C does; with
    # Ctrl-C's default action even where the test runner was started with SIGINT ignored (a `&` job of a script).
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "manifest.json").exists() and json.loads((out / "manifest.json").read_text())["episodes"]:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130, error
    assert "Traceback" not in error and "KeyboardInterrupt" not in error
    assert error.strip().splitlines()[-1] == ("navigator collect: interrupted; rerun the same command with --resume "
                                              "to continue")
    assert 1 <= len(read_manifest(out).episodes) < 8 and check_dataset(out).sound
    assert subprocess.run([*command, "--resume"], capture_output=True).returncode == 0
    assert len(read_manifest(out).episodes) == 8


def dataset_bytes(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_resume_re_flies_exactly_a_missing_episode_file(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--out", str(out), "--episodes", "3", "--workers", "1", *SHORT]
    assert collect(*args) == 0
    uninterrupted = dataset_bytes(out)
    (out / "episodes" / "fly-to-target__summer__seed00000001.npz").unlink()
    capsys.readouterr()
    assert collect(*args, "--resume") == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "resume: re-flying 1 episode whose file is missing: fly-to-target/summer seed 1" in printed
    assert "flew 1 this run" in printed
    assert dataset_bytes(out) == uninterrupted  # the same dataset as if nothing had happened


def test_resume_sets_an_unreadable_stray_episode_file_aside_once(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--out", str(out), "--episodes", "2", "--workers", "1", *SHORT]
    assert collect(*args) == 0
    uninterrupted = dataset_bytes(out)
    stray = out / "episodes" / "stray.npz"
    stray.write_bytes(b"not an episode")
    capsys.readouterr()
    assert collect(*args, "--resume") == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "resume: set aside stray.npz as stray.npz.damaged: " in printed
    assert not stray.exists() and (out / "episodes" / "stray.npz.damaged").read_bytes() == b"not an episode"
    assert collect(*args, "--resume") == 0  # said once: the file is no longer read as an episode
    assert "stray" not in capsys.readouterr().out
    assert {path: data for path, data in dataset_bytes(out).items() if "stray" not in str(path)} == uninterrupted


def test_resume_and_extend_set_a_damaged_episode_file_aside_and_fly_it_again(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--out", str(out), "--workers", "1", *SHORT]
    assert collect(*args, "--episodes", "2") == 0
    uninterrupted = dataset_bytes(out)
    episodes = out / "episodes"
    for seed, extra in ((0, ["--resume", "--episodes", "2"]), (1, ["--extend", "--episodes", "3"])):
        name = f"fly-to-target__summer__seed{seed:08d}.npz"
        damaged = bytearray((episodes / name).read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        (episodes / name).write_bytes(bytes(damaged))
        assert not check_dataset(out).sound
        capsys.readouterr()
        assert collect(*args, *extra) == 0
        printed = " ".join(capsys.readouterr().out.split())
        assert (f"resume: re-flying 1 episode whose file is damaged: fly-to-target/summer seed {seed} (sha256 "
                f"differs from the manifest's; set aside as {name}.damaged)") in printed
        assert (episodes / f"{name}.damaged").read_bytes() == bytes(damaged)  # the user's bytes are kept
        assert (episodes / name).read_bytes() == uninterrupted[Path("episodes") / name]
        assert check_dataset(out).sound
    assert [e.seed for e in read_manifest(out).episodes] == [0, 1, 2]


def test_extending_a_dataset_of_several_parts_says_how(tmp_path, capsys):
    import yaml

    recipe = tmp_path / "mixed.yaml"
    recipe.write_text("parts:\n  - {preset: summer, episodes: 1}\n  - {preset: winter, episodes: 1}\n"
                      "max_seconds: 1\nworkers: 1\n")
    out = tmp_path / "ds"
    assert collect("--config", str(recipe), "--out", str(out)) == 0
    capsys.readouterr()
    assert collect("--out", str(out), "--extend", "--episodes", "2") == 2  # would replace both parts by one
    error = " ".join(capsys.readouterr().err.split())
    assert "it has 2 parts and --episodes would replace them all by one" in error
    assert "raise parts[i].episodes there" in error and "drop --config" not in error
    # Following the advice extends it.
    recorded = dict(read_manifest(out).recipe)
    recorded.pop("extensions", None)
    recorded["parts"][1]["episodes"] = 2
    grown = tmp_path / "grown.yaml"
    grown.write_text(yaml.safe_dump(recorded))
    assert collect("--config", str(grown), "--out", str(out), "--extend") == 0
    assert [(e.preset, e.seed) for e in read_manifest(out).episodes] == [("summer", 0), ("winter", 0), ("winter", 1)]
    # With a --config, the advice is about that file, never about the --episodes the user did not give, and a part
    # given fewer episodes is named.
    for parts, said in (("[1, 2]", "--extend needs more episodes"),
                        ("[2, 1]", "--extend only raises episodes: parts[1].episodes: dataset has 2, you gave 1")):
        counts = yaml.safe_load(parts)
        grown.write_text(yaml.safe_dump({**recorded, "parts": [{**part, "episodes": count} for part, count in zip(
            recorded["parts"], counts)]}))
        capsys.readouterr()
        assert collect("--config", str(grown), "--out", str(out), "--extend") == 2
        error = " ".join(capsys.readouterr().err.split())
        assert said in error and "in your --config, keep its parts in their order and raise parts[i].episodes" \
            in error and "--episodes would" not in error and "give a larger --episodes" not in error, error


def test_a_recorded_name_in_another_spelling_is_not_a_changed_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "ds"
    assert collect("--out", str(out), "--episodes", "1", *SHORT) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["recipe"]["parts"][0].update(task="Fly to target", preset="Summer")
    manifest["recipe"]["parts"][0]["episodes"] = 2
    del manifest["sha256"], manifest["manifest_version"]  # as a manifest written before checksums (which an edit by
    # hand would no longer match)
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert collect("--out", str(out), "--resume", "--workers", "1") == 0, capsys.readouterr().err
    assert [entry.seed for entry in read_manifest(out).episodes] == [0, 1]


def test_more_episodes_are_not_flown_with_other_settings_than_the_dataset_s(tmp_path, capsys):
    """A manifest whose recipe does not say its airframe (written without it, or edited) was extended with the
    default's: x500 episodes added to a cf2x dataset."""
    out = tmp_path / "ds"
    assert collect("--out", str(out), "--episodes", "1", "--airframe", "cf2x", "--max-seconds", "1") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("sha256", "manifest_version"):  # as a release before checksums wrote it
        manifest.pop(name)
    manifest["recipe"].pop("airframe")
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert collect("--out", str(out), "--extend", "--episodes", "2") == 2
    error = capsys.readouterr().err
    assert (f"--extend: {out}'s episodes were flown with airframe \"cf2x\", and this collection would fly \"x500\"" in
            error and "collect the new episodes into a new --out" in error), error
    assert (out / "manifest.json").read_bytes() == before and len(list((out / "episodes").iterdir())) == 1
