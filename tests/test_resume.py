"""Resume means resume: a run continues only with the settings it recorded, a new run never lands on an old one or
on the user's files, extending is explicit and recorded, and a failed new run leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from navigator.cli import main
from navigator.config import load_config
from navigator.dataset import DatasetWriter, check_dataset
from navigator.dataset.synthetic import synthetic_episode
from navigator.errors import UserError
from navigator.training.config import TrainConfig
from navigator.training.pipeline import Hooks, run_recipe


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four short synthetic episodes at 32x24: training on them takes well under a second per epoch."""
    writer = DatasetWriter.create(tmp_path_factory.mktemp("resume") / "ds", image_size=(24, 32), recipe={})
    for seed in range(4):
        writer.write(synthetic_episode(seed, frames=12, height=24, width=32))
    return writer.path


def settings(data: Path, out: Path, **changes) -> TrainConfig:
    values = {"data": [str(data)], "out": str(out), "epochs": 2, "batch_size": 4, "window": 8, "stride": 4,
              "feature_size": 8, "head_size": 8, "model": "gru", **changes}
    return load_config(TrainConfig, None, values)


class Interrupt(Exception):
    pass


class StopAfterEpoch(Hooks):
    """Raises after epoch `epoch`'s checkpoints are written, as a Ctrl-C or a crash there would."""

    def __init__(self, epoch: int = 1) -> None:
        self.stop = epoch

    def epoch(self, report) -> None:
        if report.epoch == self.stop:
            raise Interrupt


def interrupted_run(data: Path, out: Path, epoch: int = 1, **changes) -> None:
    with pytest.raises(Interrupt):
        run_recipe(settings(data, out, **changes), resume=False, hooks=StopAfterEpoch(epoch))


def saved_epoch(out: Path) -> int:
    return torch.load(out / "last.pt", weights_only=True)["epoch"]


def test_resume_with_other_settings_names_each_difference_and_trains_nothing(data, tmp_path):
    out = tmp_path / "run"
    interrupted_run(data, out)
    with pytest.raises(UserError) as caught:
        run_recipe(settings(data, out, batch_size=8, lr=0.001), resume=True, hooks=Hooks())
    message = str(caught.value)
    assert "batch_size: run has 4, you gave 8" in message and "lr: run has 0.003, you gave 0.001" in message
    assert "epochs" not in message and "--extend" not in message
    assert saved_epoch(out) == 1
    # Settings that cannot change the result may differ; the run then finishes as recorded.
    assert run_recipe(settings(data, out, threads=1, cache_mb=1), resume=True, hooks=Hooks()) == out / "best.pt"
    assert saved_epoch(out) == 2
    assert json.loads((out / "run.json").read_text())["config"]["batch_size"] == 4


def test_a_new_run_refuses_any_run_state_even_before_progress_exists(data, tmp_path, capsys):
    out = tmp_path / "run"
    interrupted_run(data, out)
    assert not (out / "progress.json").exists()
    with pytest.raises(UserError, match="already holds a training run .*pass --resume"):
        run_recipe(settings(data, out), resume=False, hooks=Hooks())
    assert saved_epoch(out) == 1
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "last.pt").write_bytes((out / "last.pt").read_bytes())
    with pytest.raises(UserError, match=r"already holds a training run \(last.pt\)"):
        run_recipe(settings(data, lone), resume=False, hooks=Hooks())
    # Nor can it be resumed: nothing records the settings it was started with.
    with pytest.raises(UserError, match="without a record of its settings"):
        run_recipe(settings(data, lone), resume=True, hooks=Hooks())


def test_resume_needs_a_run(data, tmp_path):
    for out in (tmp_path / "missing", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        with pytest.raises(UserError, match="holds no training run to continue; drop --resume"):
            run_recipe(settings(data, out), resume=True, hooks=Hooks())
        assert not out.exists() or not any(out.iterdir())
    with pytest.raises(UserError, match="holds no training run to continue; drop --extend"):
        run_recipe(settings(data, tmp_path / "missing", epochs=3), resume=True, hooks=Hooks(), extend=True)


def test_out_that_is_a_file_or_a_folder_of_other_files_is_never_touched(data, tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"jpeg")
    with pytest.raises(UserError, match="is a file, not a run folder"):
        run_recipe(settings(data, file), resume=False, hooks=Hooks())
    with pytest.raises(UserError, match=r"is not empty \(a.jpg\) and holds no training run"):
        run_recipe(settings(data, folder), resume=False, hooks=Hooks())
    assert file.read_text() == "mine" and [p.name for p in folder.iterdir()] == ["a.jpg"]


def test_finished_run_resumes_nothing_and_extends_only_when_asked(data, tmp_path):
    out = tmp_path / "run"
    run_recipe(settings(data, out), resume=False, hooks=Hooks())
    with pytest.raises(UserError, match=r"is finished \(all 2 epochs trained\): nothing to resume"):
        run_recipe(settings(data, out), resume=True, hooks=Hooks())
    with pytest.raises(UserError, match="epochs: run has 2, you gave 3; .*to add epochs pass --extend"):
        run_recipe(settings(data, out, epochs=3), resume=True, hooks=Hooks())
    with pytest.raises(UserError, match="other settings differ from the run's: seed: run has 0, you gave 1"):
        run_recipe(settings(data, out, epochs=3, seed=1), resume=True, hooks=Hooks(), extend=True)
    with pytest.raises(UserError, match=r"needs more epochs than .* is set to \(2\); give a larger --epochs than 2"):
        run_recipe(settings(data, out), resume=True, hooks=Hooks(), extend=True)
    assert saved_epoch(out) == 2

    run_recipe(settings(data, out, epochs=3), resume=False, hooks=Hooks(), extend=True)
    assert saved_epoch(out) == 3
    assert [e["epoch"] for e in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["epochs"] == 3
    assert record["extensions"] == [{"epochs": {"from": 2, "to": 3}, "after_epoch": 2}]
    # The extended run now resumes (and is finished) with its new length.
    with pytest.raises(UserError, match=r"is finished \(all 3 epochs trained\)"):
        run_recipe(settings(data, out, epochs=3), resume=True, hooks=Hooks())


def test_a_new_run_that_fails_before_its_first_epoch_leaves_no_folder(data, tmp_path):
    empty = DatasetWriter.create(tmp_path / "empty-ds", image_size=(24, 32), recipe={}).path
    out = tmp_path / "runs" / "new"
    with pytest.raises(UserError, match="holds no episodes"):
        run_recipe(settings(empty, out), resume=False, hooks=Hooks())
    assert not out.exists() and (tmp_path / "runs").exists() is False
    existing = tmp_path / "made-by-user"
    existing.mkdir()
    with pytest.raises(UserError, match="holds no episodes"):
        run_recipe(settings(empty, existing), resume=False, hooks=Hooks())
    assert existing.is_dir() and not any(existing.iterdir())  # the user's folder stays, as empty as it was
    with pytest.raises(Interrupt):  # interrupted as the first epoch ends: that epoch is kept, to resume
        run_recipe(settings(data, out), resume=False, hooks=StopAfterEpoch(1))
    assert saved_epoch(out) == 1


def test_damaged_best_checkpoint_at_the_end_of_a_resumed_run(data, tmp_path, capsys):
    out = tmp_path / "run"
    interrupted_run(data, out, epoch=2)  # all epochs trained, the stage not yet marked complete
    (out / "best.pt").write_bytes(b"")
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "4", "--model", "gru"]
    config = tmp_path / "recipe.yaml"
    config.write_text("window: 8\nstride: 4\nfeature_size: 8\nhead_size: 8\n")
    assert main([*args, "--config", str(config), "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{out / 'best.pt'} is not a liquid-navigator checkpoint (empty file)" in error
    assert "Traceback" not in error


def test_damaged_training_state_is_a_clear_error(data, tmp_path):
    out = tmp_path / "run"
    interrupted_run(data, out)
    (out / "last.pt").write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(UserError, match=r"last.pt is not a liquid-navigator training state \(not a PyTorch file\): "
                                        r"it cannot be resumed"):
        run_recipe(settings(data, out), resume=True, hooks=Hooks())


def test_ltc_trains_on_data_with_zero_and_huge_dt_that_check_accepts(tmp_path):
    # dt = 0 (a repeated frame) and huge gaps are valid data: check accepts them, so training must handle them.
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe={})
    for seed in range(3):
        episode = synthetic_episode(seed, frames=12, height=24, width=32)
        episode.dt[::3] = 0.0
        episode.dt[5] = 1e6
        episode.timestamp[:] = np.cumsum(episode.dt, dtype=np.float64)
        writer.write(episode)
    writer.write(synthetic_episode(7, frames=3, height=24, width=32))  # shorter than a window: padded with dt 0
    assert check_dataset(writer.path).sound
    out = tmp_path / "run"
    run_recipe(settings(writer.path, out, model="ltc-ncp", head_size=None), resume=False, hooks=Hooks())
    history = json.loads((out / "history.json").read_text())
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["val_loss"]) for e in history)


def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe={})
    for seed in range(4):
        writer.write(synthetic_episode(seed, frames=12, height=24, width=32))
    out = tmp_path / "run"
    interrupted_run(writer.path, out)
    DatasetWriter.open(writer.path).write(synthetic_episode(9, frames=12, height=24, width=32))  # collect --extend
    for extend, epochs in ((False, 2), (True, 3)):
        with pytest.raises(UserError) as caught:
            run_recipe(settings(writer.path, out, epochs=epochs), resume=True, hooks=Hooks(), extend=extend)
        assert (f"{writer.path} changed since this run started (5 episodes now, 4 then): resume needs the same data; "
                f"start a new run in another --out") in str(caught.value)
    assert saved_epoch(out) == 1 and json.loads((out / "run.json").read_text())["extensions"] == []


def _without_flying_dagger(tmp_path: Path, monkeypatch) -> DatasetWriter:
    """A dataset of 4 synthetic episodes to train on; each DAgger round's roll-outs, without flying, a dataset of two
    synthetic episodes."""
    from navigator.training import pipeline

    def fake_collect(out: Path, config, hooks) -> None:
        writer = DatasetWriter.create(out, image_size=(24, 32), recipe={})
        for seed in (20, 21):
            writer.write(synthetic_episode(seed, frames=12, height=24, width=32))

    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe={})
    for seed in range(4):
        writer.write(synthetic_episode(seed, frames=12, height=24, width=32))
    monkeypatch.setattr(pipeline, "_collect_into", fake_collect)
    return writer


def test_resume_refuses_a_changed_dagger_round(tmp_path, monkeypatch):
    writer = _without_flying_dagger(tmp_path, monkeypatch)
    out = tmp_path / "run"
    recipe = {"dagger": {"rounds": 1, "episodes": 2, "epochs": 2}}
    interrupted_run(writer.path, out, **recipe)  # in the first training: only the recipe's data is recorded
    record = json.loads((out / "run.json").read_text())
    assert set(record["datasets"]["data"]) == {str(writer.path)} and record["datasets"]["dagger"] == {}
    with pytest.raises(Interrupt):  # the first training finishes; interrupted in the round's first epoch
        run_recipe(settings(writer.path, out, **recipe), resume=True, hooks=StopAfterEpoch(1))
    assert torch.load(out / "last.pt", weights_only=True)["stage"] == "dagger-1"
    round_data = out / "dagger" / "round-1"
    assert json.loads((out / "run.json").read_text())["datasets"]["dagger"]["round-1"]["episodes"] == 2
    DatasetWriter.open(round_data).write(synthetic_episode(22, frames=12, height=24, width=32))
    with pytest.raises(UserError, match=r"round-1 changed since this run started \(3 episodes now, 2 then\)"):
        run_recipe(settings(writer.path, out, **recipe), resume=True, hooks=Hooks())


def test_a_finished_run_past_its_dagger_rounds_is_not_told_to_extend(tmp_path, monkeypatch):
    """--extend adds epochs before the DAgger rounds only: a finished DAgger run was told to pass it, and --extend
    then refused."""
    writer = _without_flying_dagger(tmp_path, monkeypatch)
    out = tmp_path / "run"
    recipe = {"dagger": {"rounds": 1, "episodes": 2, "epochs": 1}}
    run_recipe(settings(writer.path, out, **recipe), resume=False, hooks=Hooks())
    with pytest.raises(UserError) as caught:
        run_recipe(settings(writer.path, out, **recipe), resume=True, hooks=Hooks())
    assert "is finished (all 2 epochs trained and 1 DAgger round): nothing to resume; more epochs cannot be added " \
           "after its DAgger rounds; to train longer, start a new run with a larger --epochs in another --out" \
           in str(caught.value) and "pass --extend" not in str(caught.value)
    with pytest.raises(UserError) as caught:
        run_recipe(settings(writer.path, out, **{**recipe, "epochs": 3}), resume=True, hooks=Hooks())
    assert "epochs: run has 2, you gave 3" in str(caught.value) and "--extend" not in str(caught.value)
    with pytest.raises(UserError, match="has begun its DAgger rounds after its 2 training epochs"):
        run_recipe(settings(writer.path, out, **{**recipe, "epochs": 3}), resume=True, hooks=Hooks(), extend=True)


def _stage_completed(out: Path) -> bool:
    progress = out / "progress.json"
    return progress.exists() and "train" in json.loads(progress.read_text())["completed"]


def test_a_non_finite_validation_loss_stops_the_run_and_keeps_the_last_good_state(data, tmp_path, monkeypatch, capsys):
    from navigator.training import loop

    losses = iter([0.5, float("nan")])
    monkeypatch.setattr(loop, "evaluate", lambda *args: next(losses))
    out = tmp_path / "run"
    with pytest.raises(loop.TrainingDiverged) as caught:
        run_recipe(settings(data, out, epochs=3), resume=False, hooks=Hooks())
    assert str(caught.value).startswith(f"the validation loss became nan after epoch 2; training stopped and "
                                        f"{out / 'last.pt'} keeps the last good state (train, epoch 1). Try a lower "
                                        f"--lr")
    assert saved_epoch(out) == 1 and not _stage_completed(out)
    assert torch.load(out / "best.pt", weights_only=True)["metadata"]["epoch"] == 1
    assert not (out / "history.json").exists() or "NaN" not in (out / "history.json").read_text()

    # Diverged in the first epoch of a new run: nothing is kept, and the CLI says so in one line.
    monkeypatch.setattr(loop, "evaluate", lambda *args: float("inf"))
    fresh = tmp_path / "fresh"
    config = tmp_path / "recipe.yaml"
    config.write_text("window: 8\nstride: 4\nfeature_size: 8\nhead_size: 8\nmodel: gru\n")
    assert main(["train", "--config", str(config), "--data", str(data), "--out", str(fresh), "--epochs", "2",
                 "--batch-size", "4"]) == 2
    error = capsys.readouterr().err
    assert "the validation loss became inf after epoch 1; training stopped and no epoch of it was saved" in error
    assert "Traceback" not in error and not fresh.exists()


def test_a_damaged_training_state_is_refused_by_its_checksum(data, tmp_path):
    out = tmp_path / "run"
    interrupted_run(data, out)
    state = torch.load(out / "last.pt", weights_only=True)
    weight = next(t for t in state["policy"].values() if t.numel() > 16)
    raw = bytearray((out / "last.pt").read_bytes())
    at = raw.find(bytes(weight.untyped_storage().tolist()[:16]))
    assert at > 0
    raw[at + 3] ^= 0x40  # one flipped bit: the first float of a weight becomes huge (or tiny)
    (out / "last.pt").write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"last.pt is damaged \(its checksum does not match its content.*\): it "
                                        r"cannot be resumed"):
        run_recipe(settings(data, out), resume=True, hooks=Hooks())


def test_a_differing_list_or_mapping_is_shown_as_json_not_python():
    from navigator.resume import Difference

    said = Difference("parts", [{"task": "hike", "episodes": 2}], [{"task": "follow", "episodes": 2}, {}]).describe(
        "the dataset")
    assert said == ('parts: the dataset has [{"task": "hike", "episodes": 2}], you gave [{"task": "follow", '
                    '"episodes": 2}, {}]')
    assert Difference("model", "cfc-ncp", "gru").describe("run") == "model: run has 'cfc-ncp', you gave 'gru'"


def test_a_path_spelled_another_way_is_the_same_setting(data, tmp_path, monkeypatch):
    # The data given as "ds" when the run started, and as "./ds/" on resume: one dataset, the run continues.
    from navigator.resume import differences

    monkeypatch.chdir(data.parent)
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_recipe(settings(Path(data.name), out), resume=False, hooks=StopAfterEpoch(1))
    assert run_recipe(settings(f"./{data.name}//", out), resume=True, hooks=Hooks()) == out / "best.pt"
    assert saved_epoch(out) == 2
    # The same folder by its absolute path: one dataset too (an extension, which reads the run's datasets again).
    assert run_recipe(settings(data, out, epochs=3), resume=True, extend=True, hooks=Hooks()) == out / "best.pt"
    assert saved_epoch(out) == 3
    assert differences({"data": ["datasets/night"]}, {"data": ["./datasets//night/"]}) == []
    assert differences({"data": [data.name]}, {"data": [str(data)]}) == []  # relative, absolute: one folder
    assert [d.name for d in differences({"data": ["datasets/night"]}, {"data": ["../datasets/night"]})] == ["data[0]"]
    assert [d.name for d in differences({"model": ""}, {"model": "."})] == ["model"]


def test_a_run_that_stops_early_says_so_then_and_on_resume(data, tmp_path):
    # A learning rate too small to move a float32 weight: the validation loss never improves after the first epoch.
    from navigator.commands.common import epoch_line

    class Reports(Hooks):
        def __init__(self) -> None:
            self.reports = []

        def epoch(self, report) -> None:
            self.reports.append(report)

    out, hooks = tmp_path / "run", Reports()
    run_recipe(settings(data, out, epochs=4, patience=1, lr=1e-30), resume=False, hooks=hooks)
    assert [(r.epoch, r.stops_early) for r in hooks.reports] == [(1, None), (2, 1)]
    assert "stopped early: no better validation loss for 1 epoch (patience)" in epoch_line(hooks.reports[-1])
    assert "stopped early" not in epoch_line(hooks.reports[0])
    assert "stops_early" not in json.loads((out / "history.json").read_text())[-1]
    with pytest.raises(UserError, match=r"is finished \(stopped early at epoch 2 of 4: no better validation loss for "
                                        r"1 epoch \(patience\)\): nothing to resume; more epochs would not run; start "
                                        r"a new run with a larger `patience:` in its --config recipe"):
        run_recipe(settings(data, out, epochs=4, patience=1, lr=1e-30), resume=True, hooks=Hooks())


def test_a_run_started_with_relative_paths_and_continued_from_another_folder_says_where_to_run_it(
        tmp_path, monkeypatch, capsys):
    """A run records its datasets as typed (`--data demos`), relative to the folder it was started in; continued from
    another one, the dataset is not found there, and the same dataset given by its absolute path differs from the
    record as text. Both refusals say why and what to do: run from the starting folder. (train and adapt alike.)"""
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.chdir(tmp_path)
    assert main(["collect", "--out", "demos", "--episodes", "2", "--max-seconds", "1", "--workers", "1", "--seed",
                 "20000"]) == 0  # worlds the shipped policy, adapted below, was not trained on
    assert main(["train", "--data", "demos", "--out", "run", "--epochs", "2", "--batch-size", "2"]) == 0
    assert main(["adapt", "--data", "demos", "--out", "adapted", "--epochs", "1", "--batch-size", "2"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    advice = (f"(a relative path is read from the folder the command runs in, {tmp_path / 'elsewhere'}: run it "
              f"from the folder the work was started in)")
    for argv in (["train", "--out", str(tmp_path / "run"), "--extend", "--epochs", "3"],
                 ["train", "--out", str(tmp_path / "run"), "--extend", "--epochs", "3", "--data",
                  str(tmp_path / "demos")],
                 ["adapt", "--out", str(tmp_path / "adapted"), "--resume"]):
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        error = captured.err
        assert advice in error and "Traceback" not in error and "extending" not in error + captured.out, argv
    monkeypatch.chdir(tmp_path)  # from where it started, the run continues
    assert main(["train", "--out", "run", "--extend", "--epochs", "3"]) == 0
    # best.pt, which an evaluation or a bundle may have been made from, may change under its path: said first, once
    # the extension is accepted (a refused one says only why).
    assert ("extending run: its best.pt is replaced whenever the longer training validates better; copy it first to "
            "keep the current one") in capsys.readouterr().err
