"""`navigator train`: behaviour cloning and DAgger from recorded demonstrations, end to end."""

import json
import shutil
import time

import pytest
import torch

from navigator.cli import main
from navigator.config import load_config
from navigator.json_fields import with_checksum
from navigator.training.augment import AUGMENT_VERSION
from navigator.training.config import TrainConfig
from navigator.training.pipeline import Hooks, run_recipe
from navigator.dataset import Dataset
from policies.checkpoint import load_checkpoint
from records_support import edited_copy

FAST = ["--epochs", "2", "--batch-size", "4"]


@pytest.fixture(scope="session")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "summer"
    assert main(["collect", "--out", str(out), "--episodes", "6", "--max-seconds", "3", "--workers", "1"]) == 0
    return out


def train(*args):
    return main(["train", *args])


def weights(path):
    policy, metadata = load_checkpoint(path)
    return policy.state_dict(), metadata


def test_training_lowers_the_loss_and_writes_a_loadable_policy(demos, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "4", "--batch-size", "4") == 0
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    state = torch.load(out / "best.pt", weights_only=True)  # safe format: tensors and plain data only
    assert state["format"] == "liquid-navigator/policy-checkpoint"
    policy, metadata = load_checkpoint(out / "best.pt")
    assert metadata["data"] == [str(demos)] and metadata["normalisation"]["frames"] > 0
    assert metadata["parameter_counts"] == policy.parameter_counts()
    assert 15_000 < metadata["parameter_counts"]["head"] < 25_000
    assert metadata["airframe"] == "x500" and metadata["camera"]["width"] == 64
    assert (out / "tensorboard").is_dir() and any((out / "tensorboard").iterdir())
    printed = capsys.readouterr().out
    assert "head" in printed and "CNN" in printed and "parameters" in printed
    # The worlds it trained on, so that an evaluation can refuse them (the demos flew seeds 0-5).
    assert metadata["training_seeds"] == [{"task": "fly-to-target", "first": 0, "count": 6, "source": str(demos)}]
    assert main(["eval", "--pilot", str(out / "best.pt"), "--seed", "3", "--episodes", "1",
                 "--out", str(tmp_path / "report")]) == 2
    assert "seeds 0-5" in capsys.readouterr().err and not (tmp_path / "report").exists()


def test_same_seed_same_result(demos, tmp_path):
    for name in ("a", "b"):
        assert train("--data", str(demos), "--out", str(tmp_path / name), *FAST) == 0
    a, _ = weights(tmp_path / "a" / "best.pt")
    b, _ = weights(tmp_path / "b" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


class Interrupt(Exception):
    pass


class StopAfterFirstEpoch(Hooks):
    def epoch(self, report):
        raise Interrupt  # as a Ctrl-C or a crash right after epoch 1's checkpoint


def test_resume_gives_the_same_result_as_an_uninterrupted_run(demos, tmp_path):
    args = ["--data", str(demos), "--epochs", "3", "--batch-size", "4"]
    assert train(*args, "--out", str(tmp_path / "straight")) == 0
    interrupted = tmp_path / "interrupted"
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(interrupted), "epochs": 3,
                                             "batch_size": 4})
    with pytest.raises(Interrupt):
        run_recipe(config, resume=False, hooks=StopAfterFirstEpoch())
    assert torch.load(interrupted / "last.pt", weights_only=True)["epoch"] == 1
    assert train(*args, "--out", str(interrupted), "--resume") == 0
    a, _ = weights(tmp_path / "straight" / "best.pt")
    b, _ = weights(interrupted / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [[(e["train_loss"], e["val_loss"]) for e in json.loads((folder / "history.json").read_text())]
              for folder in (tmp_path / "straight", interrupted)]
    assert losses[0] == losses[1]


def test_dagger_round_adds_expert_labelled_rollouts_of_the_policy(demos, tmp_path):
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{demos}]\nout: {out}\nepochs: 1\nbatch_size: 4\n"
                      f"dagger: {{rounds: 1, episodes: 2, epochs: 1}}\n")
    assert train("--config", str(recipe)) == 0
    rollouts = Dataset.open(out / "dagger" / "round-1")
    assert len(rollouts.entries) == 2
    episode = rollouts.read(rollouts.entries[0])
    assert episode.metadata["pilot"] == str(out / "best.pt")  # the policy flew
    assert episode.metadata["labeller"] == "expert"  # and the expert labelled what it flew
    _, metadata = weights(out / "best.pt")
    assert metadata["stage"] == "dagger-1" and str(out / "dagger" / "round-1") in metadata["data"]
    assert json.loads((out / "progress.json").read_text())["completed"] == ["train", "dagger-1"]


@pytest.mark.parametrize("model", ["lstm", "mlp"])
def test_baselines_train_from_the_cli(demos, tmp_path, model):
    assert train("--data", str(demos), "--out", str(tmp_path / model), "--model", model, *FAST) == 0
    policy, _ = load_checkpoint(tmp_path / model / "best.pt")
    assert policy.config.model == model


class PoisonAfterFirstEpoch(Hooks):
    """Makes the weights NaN after epoch 1's checkpoints are written, as a diverging optimiser would."""

    def __init__(self, policy_holder):
        self.policy_holder = policy_holder

    def epoch(self, report):
        with torch.no_grad():
            for parameter in self.policy_holder["policy"].parameters():
                parameter.fill_(float("nan"))


def test_nan_loss_stops_with_a_diagnosis_and_keeps_the_last_good_checkpoint(demos, tmp_path, monkeypatch):
    import navigator.training.loop as loop

    holder = {}
    original = loop.new_policy
    monkeypatch.setattr(loop, "new_policy", lambda *a: holder.setdefault("policy", original(*a)))
    out = tmp_path / "run"
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(out), "epochs": 3, "batch_size": 4})
    with pytest.raises(loop.TrainingDiverged, match=r"loss became nan at epoch 2, batch 1.*--lr"):
        run_recipe(config, resume=False, hooks=PoisonAfterFirstEpoch(holder))
    policy, metadata = load_checkpoint(out / "best.pt")
    assert metadata["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1


def test_a_learning_rate_that_diverges_is_reported(demos, tmp_path, capsys):
    assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--lr", "1e30", *FAST) == 2
    assert "--lr" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--model", "transformer"], "unknown model 'transformer'; valid models are: cfc-ncp"),
    (["--epochs", "0"], "--epochs must be in [1, 100000], got 0"),
    (["--epochs", "99999999999999999999"], "--epochs must be in [1, 100000], got 99999999999999999999"),
])
def test_bad_settings_are_clear_errors(demos, tmp_path, args, message, capsys):
    assert train("--data", str(demos), "--out", str(tmp_path / "run"), *args) == 2
    assert message in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert train("--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert train("--out", str(tmp_path / "run")) == 2
    assert "no training data" in capsys.readouterr().err


def test_a_dataset_recorded_before_a_setting_existed_is_the_recipe_s_own(demos, tmp_path, capsys):
    """A manifest written before a collection setting existed lacks it; its episodes flew that setting's default,
    so a recipe that leaves the setting at its default collected them, and trains on them."""
    import shutil

    from navigator.dataset.manifest import read_manifest, write_manifest

    older = tmp_path / "older"
    shutil.copytree(demos, older)
    manifest = read_manifest(older)
    del manifest.recipe["dart_time_constant"]  # as if recorded before the setting existed (its default, 0.5, flew)
    write_manifest(older, manifest)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{older}]\nepochs: 1\nwindow: 8\nstride: 8\n"
                      f"collect: {{parts: [{{episodes: 6}}], max_seconds: 3.0}}\n")
    assert train("--config", str(recipe), "--out", str(tmp_path / "run")) == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "best.pt").exists()
    # A setting that differs is still named, with both values.
    manifest.recipe["dart_noise"] = 0.2
    write_manifest(older, manifest)
    assert train("--config", str(recipe), "--out", str(tmp_path / "again")) == 2
    assert "(collect.dart_noise: the dataset has 0.2, the recipe has 0.1)" in capsys.readouterr().err


def test_a_recipe_that_would_collect_into_another_dataset_is_refused_before_any_work(demos, tmp_path, capsys):
    # The demos were collected with 6 episodes of 3 s; this recipe's collect section asks for 8 without a limit.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{demos}]\ncollect: {{parts: [{{episodes: 8}}]}}\n")
    before = (demos / "manifest.json").read_bytes()
    assert train("--config", str(recipe), "--out", str(tmp_path / "run")) == 2
    error = capsys.readouterr().err
    assert (f"{demos} already holds a dataset collected with other settings than the recipe's collect section "
            f"(collect.max_seconds: the dataset has 3.0, the recipe leaves it unset; collect.parts[0].episodes: the "
            f"dataset has 6, "
            f"the recipe has 8): give the recipe's data a new folder") in error
    assert len(error.strip().splitlines()) == 1 and "--resume" not in error
    assert not (tmp_path / "run").exists() and (demos / "manifest.json").read_bytes() == before


def test_resuming_with_another_model_is_a_clear_error(demos, tmp_path, capsys):
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(tmp_path / "run"), "epochs": 3,
                                             "batch_size": 4})
    with pytest.raises(Interrupt):
        run_recipe(config, resume=False, hooks=StopAfterFirstEpoch())
    assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--epochs", "3", "--model", "gru",
                 "--resume") == 2
    assert "model: run has 'cfc-ncp', you gave 'gru'" in capsys.readouterr().err


def test_episode_files_changed_since_they_were_recorded_are_refused_before_any_work(demos, tmp_path, capsys,
                                                                                     monkeypatch):
    # Training reads a few arrays of each file, without its checksum: two episode files swapped (each a valid
    # episode, of the same length) would train on labels that are not the manifest's. Every file's sha256 is checked
    # first; the error's way out (collect --resume) records them again, and training then runs.
    monkeypatch.setenv("COLUMNS", "1000")
    data = tmp_path / "demos"
    shutil.copytree(demos, data)
    first, second = [Dataset.open(data).episode_path(entry) for entry in Dataset.open(data).entries[:2]]
    swapped = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(swapped)
    out = tmp_path / "run"
    assert train("--data", str(data), "--out", str(out), *FAST) == 2
    error = capsys.readouterr().err
    assert f"{first}: sha256" in error and "differs from" in error and len(error.strip().splitlines()) == 1
    assert f"`navigator collect --out {data} --resume` records them again" in error and not out.exists()
    assert main(["collect", "--out", str(data), "--resume", "--workers", "1"]) == 0
    assert train("--data", str(data), "--out", str(out), *FAST) == 0


@pytest.mark.parametrize("record, said", [(b"\xff\xfe{", "run.json cannot be read"),
                                          (b'{"a": 1}', "run.json is not a liquid-navigator/training-run version 1 "
                                                        "or 2 training run record")])
@pytest.mark.parametrize("flag", [["--resume"], ["--extend", "--epochs", "5"]])
def test_a_damaged_run_record_is_said_as_such_not_as_missing_data(demos, tmp_path, capsys, monkeypatch, record, said,
                                                                   flag):
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_bytes(record)
    assert train("--out", str(out), *flag) == 2
    error = capsys.readouterr().err
    assert said in error and "start the run over in another --out" in error and "--data" not in error


@pytest.mark.parametrize("progress", ['{"completed": "x"}', '[]', '{"completed": [1]}'])
def test_a_damaged_progress_record_is_refused_before_any_work(demos, tmp_path, capsys, monkeypatch, progress):
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    (out / "progress.json").write_text(progress)
    before = (out / "last.pt").read_bytes()
    for flag in (["--extend", "--epochs", "2"], ["--resume"]):
        capsys.readouterr()
        assert train("--out", str(out), *flag) == 2
        error = capsys.readouterr().err
        assert "progress.json is damaged" in error and "start the run over in another --out" in error
    assert (out / "last.pt").read_bytes() == before


@pytest.fixture(scope="module")
def finished_run(demos, tmp_path_factory):
    """A finished one-epoch run (copied by each test that damages it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    return out


@pytest.mark.parametrize("edit, problem", [
    (lambda record: record.update(world_sizes=None), "world_sizes must be a list (got null)"),
    (lambda record: record.update(world_sizes="abc"), 'world_sizes must be a list (got "abc")'),
    (lambda record: record.update(datasets=None), "datasets must be a mapping of names to values (got null)"),
    (lambda record: next(iter(record["datasets"]["data"].values())).update(episodes="6"),
     'episodes must be a whole number, 0 or more (got "6")'),
    (lambda record: record["datasets"].update(data=[]), "datasets.data must be a mapping of names to values (got [])"),
    (lambda record: record.update(augment_version="2"), 'augment_version must be a whole number above 0 (got "2")'),
])
def test_a_damaged_field_of_the_run_record_is_named_and_nothing_is_written(finished_run, tmp_path, capsys,
                                                                           monkeypatch, edit, problem):
    """Every field of run.json that continuing a run reads is checked before any is used or rewritten: never a
    traceback after the record was half updated, never a damaged fingerprint read as "no data recorded"."""
    monkeypatch.setenv("COLUMNS", "1000")
    out = edited_copy(finished_run, tmp_path / "run", "run.json", edit)
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    for flag in (["--extend", "--epochs", "2"], ["--resume"]):
        capsys.readouterr()
        assert train("--out", str(out), *flag) == 2
        error = capsys.readouterr().err
        assert "run.json is damaged" in error and problem in error and "Traceback" not in error, error
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before


def _as_written_before_augment_versions(record):
    """A run record as a release before checksums and augmentation versions wrote it."""
    for name in ("sha256", "augment_version"):
        record.pop(name)
    record["version"] = 1


@pytest.mark.parametrize("edit", [_as_written_before_augment_versions,
                                  lambda record: record.update(augment_version=1, sha256=with_checksum(
                                      {k: v for k, v in record.items() if k != "sha256"} | {"augment_version": 1}
                                  )["sha256"])])
def test_a_run_started_with_other_augmentation_numbers_is_not_continued(finished_run, tmp_path, capsys, edit):
    """Continuing would train its remaining epochs on differently augmented images than it started with."""
    assert json.loads((finished_run / "run.json").read_text())["augment_version"] == AUGMENT_VERSION
    out = edited_copy(finished_run, tmp_path / "run", "run.json", edit)
    for flag in (["--extend", "--epochs", "2"], ["--resume"]):
        if flag == ["--resume"]:  # as if interrupted in its epoch: a finished run has nothing to resume
            (out / "progress.json").write_text(json.dumps({"completed": []}))
        capsys.readouterr()
        assert train("--out", str(out), *flag) == 2
        error = capsys.readouterr().err
        assert (f"was started with training augmentation version 1, and this liquid-navigator augments with version "
                f"{AUGMENT_VERSION}") in error and "start the run over in another --out" in error, error


def test_a_run_whose_resume_state_was_deleted_is_not_silently_started_over(demos, tmp_path, capsys):
    """Without last.pt, --resume trained the stage again from epoch 1 and overwrote the best.pt it had saved."""
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "3", "--batch-size", "4") == 0
    _, best = weights(out / "best.pt")
    assert best["epoch"] >= 2  # the same seed, the same epochs: always so
    (out / "progress.json").write_text(json.dumps({"completed": []}))  # as if interrupted in its last epoch
    (out / "last.pt").unlink()
    before = (out / "best.pt").read_bytes()
    assert train("--out", str(out), "--resume") == 2
    error = capsys.readouterr().err
    assert (f"--resume: {out / 'best.pt'} holds epoch {best['epoch']} of the run's train, but {out / 'last.pt'} is "
            f"missing: the state a resume continues from was deleted or replaced") in error, error
    assert (out / "best.pt").read_bytes() == before
    # Extending a finished run continues from last.pt too: without it, it trained the run again from epoch 1.
    (out / "progress.json").write_text(json.dumps({"completed": ["train"]}))
    assert train("--out", str(out), "--extend", "--epochs", "4") == 2
    assert f"--extend: {out / 'last.pt'} is missing, and extending continues from it" in capsys.readouterr().err
    assert (out / "best.pt").read_bytes() == before


@pytest.mark.parametrize("name", ["history.json", "progress.json", "last.pt"])
def test_a_folder_where_an_interrupted_run_keeps_a_file_is_refused_and_never_made(demos, tmp_path, capsys,
                                                                                  monkeypatch, name):
    """Another command cannot put its output where the run writes its own files, written yet or not; a folder put
    there by hand is named when the run is continued."""
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "run"
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(out), "epochs": 3, "batch_size": 4})
    with pytest.raises(Interrupt):
        run_recipe(config, resume=False, hooks=StopAfterFirstEpoch())
    (out / name).unlink(missing_ok=True)
    assert main(["eval", "--pilot", "expert", "--episodes", "1", "--suites", "summer", "--out", str(out / name)]) == 2
    assert f"is where the training run in {out} writes" in capsys.readouterr().err and not (out / name).exists()
    (out / name).mkdir()
    assert train("--out", str(out), "--resume") == 2
    error = capsys.readouterr().err
    assert f"{out / name} is a folder where the training run in {out} keeps" in error
    assert f"move it out of {out}, then continue" in error


def test_a_run_folder_given_as_pilot_points_at_its_policy(demos, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    capsys.readouterr()
    assert main(["fly", "--pilot", str(out), "--episodes", "1"]) == 2
    assert f"is a training run's folder; give its policy: {out / 'best.pt'}" in capsys.readouterr().err


def test_existing_run_needs_resume(demos, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1") == 2
    assert "pass --resume" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error_when_flown(tmp_path, capsys):
    corrupt = tmp_path / "policy.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert main(["fly", "--pilot", str(corrupt), "--episodes", "1"]) == 2
    assert f"{corrupt} is not a liquid-navigator checkpoint (not a PyTorch file)" in capsys.readouterr().err


def test_policy_trained_on_another_camera_is_refused(demos, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", str(demos), "--out", str(out), "--epochs", "1", "--batch-size", "4") == 0
    config = tmp_path / "wide.yaml"
    config.write_text("scenario:\n  camera: {width: 96, height: 72}\nepisodes: 1\n")
    assert main(["fly", "--config", str(config), "--pilot", str(out / "best.pt")]) == 2
    assert ("was trained with another camera: width 64 (this scenario has 96), height 48 (this scenario has 72); "
            "fly it with the camera it was trained on, set in a YAML file given with --config: scenario: {camera: "
            "{width: 64, height: 48}}") in capsys.readouterr().err


def tiny_checkpoint(path, camera=None, huge=False):
    """A checkpoint of a small MLP policy for 64x48 images, as `navigator train` would write it, without training:
    `camera` is what its metadata records; `huge`: finite weights of +-1e38, whose products overflow to NaN."""
    from policies import PolicyConfig, build_policy, checkpoint_bytes

    policy = build_policy(PolicyConfig(model="mlp", head_size=8))
    if huge:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in policy.parameters():
                signs = torch.rand(parameter.shape, generator=generator) < 0.5
                parameter.copy_(torch.where(signs, -1e38, 1e38))
    camera = camera or {"width": 64, "height": 48, "fov_deg": 80.0, "tilt_deg": 0.0, "rate_hz": 30}
    path.write_bytes(checkpoint_bytes(policy, {"airframe": "x500", "camera": camera}))
    return path


def test_every_camera_setting_the_checkpoint_records_must_match(tmp_path, capsys):
    pilot = tiny_checkpoint(tmp_path / "narrow.pt", {"width": 64, "height": 48, "fov_deg": 60.0, "tilt_deg": 0.0,
                                                     "rate_hz": 15})
    config = tmp_path / "wide.yaml"
    config.write_text("scenario:\n  camera: {fov_deg: 120, tilt_deg: 30, rate_hz: 60}\nepisodes: 1\n")
    assert main(["fly", "--config", str(config), "--pilot", str(pilot), "--airframe", "cf2x"]) == 2
    error = capsys.readouterr().err
    assert (f"{pilot} was trained with another camera: fov_deg 60.0 (this scenario has 120.0), tilt_deg 0.0 (this "
            f"scenario has 30.0), rate_hz 15 (this scenario has 60); fly it with the camera it was trained on, set in "
            f"a YAML file given with --config: scenario: {{camera: {{fov_deg: 60.0, tilt_deg: 0.0, rate_hz: 15}}}}; "
            f"and {pilot} was trained on the x500 airframe, not cf2x") in error
    # eval's --config sets the camera at the top level, and its message says so.
    config.write_text("camera: {fov_deg: 120, tilt_deg: 30, rate_hz: 60}\n")
    assert main(["eval", "--config", str(config), "--pilot", str(pilot), "--episodes", "1", "--suites", "summer",
                 "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert "given with --config: camera: {fov_deg: 60.0, tilt_deg: 0.0, rate_hz: 15}" in error
    assert not (tmp_path / "report").exists()


def test_a_policy_whose_action_is_not_finite_stops_the_flight_with_a_clear_error(tmp_path, capsys):
    pilot = tiny_checkpoint(tmp_path / "overflowing.pt", huge=True)  # loads: every weight is finite
    assert main(["fly", "--json", "--pilot", str(pilot), "--episodes", "1", "--max-seconds", "0.5"]) == 2
    captured = capsys.readouterr()
    assert (f"{pilot} produced a non-finite action at t=0.00s; the policy is unusable: retrain it or pick another "
            f"checkpoint") in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_training_state_given_as_pilot_points_at_the_policy(tmp_path, capsys):
    from navigator.training.loop import RESUME_FORMAT

    out = tmp_path / "run"
    out.mkdir()
    torch.save({"format": RESUME_FORMAT, "stage": "train", "epoch": 1}, out / "last.pt")
    assert main(["fly", "--pilot", str(out / "last.pt"), "--episodes", "1"]) == 2
    assert (f"{out / 'last.pt'} is a training state, not a policy (what navigator train --resume continues from): "
            f"use the run's policy, {out / 'best.pt'}") in capsys.readouterr().err


def test_training_on_a_collection_that_stopped_early_warns(tmp_path, capsys):
    from navigator.dataset import DatasetWriter
    from navigator.dataset.synthetic import synthetic_episode

    recipe = {"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 3}], "seed": 0}
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe=recipe)
    for seed in (0, 1):  # seed 2 was never flown
        writer.write(synthetic_episode(seed, frames=40, height=48, width=64))
    assert train("--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--batch-size", "2") == 0
    printed = " ".join(capsys.readouterr().err.split())
    assert "warning" in printed and "incomplete: 2 of 3 episodes" in printed


def test_training_on_too_few_episodes_for_a_validation_split_warns(tmp_path, capsys):
    from navigator.dataset import DatasetWriter
    from navigator.dataset.synthetic import synthetic_episode

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={"synthetic": True})
    writer.write(synthetic_episode(0, frames=40))
    assert train("--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--epochs", "1") == 0
    output = capsys.readouterr()
    printed = " ".join(output.err.split())
    assert "warning" in printed and "the data holds 1 episode, too few to hold one out for validation" in printed
    assert "warning" not in output.out
    writer.write(synthetic_episode(1, frames=40))  # two: one is held out, and nothing is said
    assert train("--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run2"), "--epochs", "1") == 0
    assert "too few" not in capsys.readouterr().err


def test_more_threads_than_cores_train_with_the_cores_and_say_so(demos, tmp_path, capsys):
    import os

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{demos}]\nthreads: 1000\n")
    assert train("--config", str(recipe), "--out", str(tmp_path / "run"), *FAST) == 0
    printed = " ".join(capsys.readouterr().err.split())
    cores = len(os.sched_getaffinity(0))
    assert f"threads: 1000 is more than the {cores} CPU core{'s' * (cores != 1)} this process may use" in printed
    assert torch.get_num_threads() == cores


def test_batches_made_ahead_come_in_order_with_errors_in_their_place():
    from navigator.training.loop import prefetched

    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("episode 2 is damaged")

    items = prefetched(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="episode 2 is damaged"):
        next(items)


def test_a_training_that_stops_mid_epoch_stops_making_batches():
    import threading

    from navigator.training.loop import prefetched

    made = []

    def counting():
        for index in range(1000):
            made.append(index)
            yield index

    items = prefetched(counting(), depth=2)
    assert next(items) == 0
    items.close()  # as when the loss diverges: the batch in use, two ready and the one being made, no more
    assert len(made) <= 4
    assert not any(thread.name == "training-batches" for thread in threading.enumerate())


def test_a_ctrl_c_while_the_batch_thread_is_being_stopped_still_waits_for_it(ctrl_c_raises):
    """A Ctrl-C pending while the loop unwound (a torchrun process interrupted inside a collective) was raised inside
    the join of the batches' thread, which then outlived Python's end inside OpenCV: the process aborted ("FATAL:
    exception not rethrown", 1 Ctrl-C in 8)."""
    import os
    import signal
    import threading

    from navigator.training.loop import prefetched

    def slow():
        yield 0
        # The next item takes a while to make: the thread is busy when the consumer stops, for long enough that the
        # Ctrl-C lands while close() waits for it even on a loaded machine.
        time.sleep(3.0)
        yield 1

    items = prefetched(slow(), depth=1)
    assert next(items) == 0
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))  # arrives while close() joins the thread
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        items.close()
    timer.join()
    assert not any(thread.name == "training-batches" for thread in threading.enumerate())


@pytest.mark.parametrize("edit, problem", [
    (lambda progress: progress["completed"].append("bogus"), "progress.json is damaged (it lists 'bogus' as completed"),
])
def test_a_progress_record_listing_stages_the_run_has_not_is_refused(finished_run, tmp_path, capsys, monkeypatch,
                                                                     edit, problem):
    monkeypatch.setenv("COLUMNS", "1000")
    out = edited_copy(finished_run, tmp_path / "run", "progress.json", edit)
    assert train("--out", str(out), "--extend", "--epochs", "2") == 2
    assert problem in capsys.readouterr().err


def test_a_run_record_of_datasets_the_run_does_not_train_on_is_refused(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")

    def rename(record):
        data = record["datasets"]["data"]
        data["other"] = data.pop(next(iter(data)))

    out = edited_copy(finished_run, tmp_path / "run", "run.json", rename)
    assert train("--out", str(out), "--extend", "--epochs", "2") == 2
    assert "run.json cannot be continued from: it does not match its sha256" in capsys.readouterr().err
    # A record written before checksums: what it says is checked against the recipe.
    out = edited_copy(finished_run, tmp_path / "old", "run.json",
                      lambda record: (rename(record), record.pop("sha256"), record.update(version=1)))
    assert train("--out", str(out), "--extend", "--epochs", "2") == 2
    error = capsys.readouterr().err
    assert "run.json is damaged (its 'datasets' records other, which the run does not train on)" in error


@pytest.mark.parametrize("change, said", [
    ({"camera": {"width": 64, "height": 48, "fov_deg": 120.0, "tilt_deg": 30.0, "rate_hz": 30.0}},
     "was recorded with another camera than {first}: fov_deg 120.0 (not 90.0), tilt_deg 30.0 (not 0.0)"),
    ({"airframe": "cf2x"}, "was recorded on the cf2x airframe and {first} on the synthetic"),
])
def test_datasets_of_another_camera_or_airframe_are_not_trained_together(tmp_path, capsys, monkeypatch, change, said):
    """The checkpoint records one camera and airframe (the first dataset's): the other's frames and action scaling
    would be learnt as what they are not."""
    import dataclasses

    from navigator.dataset import DatasetWriter
    from navigator.dataset.synthetic import synthetic_episode

    monkeypatch.setenv("COLUMNS", "1000")
    folders = []
    for name, metadata in (("first", {}), ("other", change)):
        writer = DatasetWriter.create(tmp_path / name, image_size=(48, 64), recipe={})
        for seed in range(2):
            episode = synthetic_episode(seed + (10 if metadata else 0), frames=12)
            writer.write(dataclasses.replace(episode, metadata={**episode.metadata, **metadata}))
        folders.append(writer.path)
    out = tmp_path / "run"
    assert train("--data", str(folders[0]), "--data", str(folders[1]), "--out", str(out), "--epochs", "1") == 2
    error = capsys.readouterr().err
    assert f"--data: {folders[1]} " + said.format(first=folders[0]) in error and not out.exists()


def test_a_run_recorded_before_a_setting_existed_compares_as_that_setting_s_default():
    """run.json of a run started before a setting existed (`device`, `collect.dart_near_target`) lacks it; the run
    trained and collected with its default, so resuming it compares it as that default, and only where the record
    has the setting's section."""
    from navigator.collect import CollectConfig
    from navigator.config import to_dict
    from navigator.resume import differences
    from navigator.training.config import TrainConfig, with_added_settings

    config = TrainConfig(data=("d",), collect=CollectConfig())
    old = to_dict(config)
    del old["device"], old["collect"]["dart_near_target"]
    assert differences(with_added_settings(old), with_added_settings(to_dict(config))) == []
    assert "dart_near_target" not in old["collect"]  # the record read is left as it is
    assert with_added_settings({"collect": None})["collect"] is None
    changed = to_dict(TrainConfig(data=("d",), collect=CollectConfig(dart_near_target=0.5)))
    assert [d.name for d in differences(with_added_settings(old), changed)] == ["collect.dart_near_target"]
