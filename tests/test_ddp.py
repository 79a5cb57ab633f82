"""`navigator train` under torchrun: DistributedDataParallel over gloo on loopback, against one process.

A real 2-process group trains a small policy on synthetic episodes (some shorter than a window, so that the ranks'
valid steps differ, and a last batch of one window, so that one rank trains a stand-in). It is started with
`--nproc 2`, one of its processes is killed after an epoch is saved, and the run is resumed under `torchrun` itself
and, separately, by one process. Every result is compared with one process training the same global batches.

Tolerance: the processes add up partial sums in another order than one process does, and AdamW divides by the root
of tiny second moments, which magnifies that rounding in a few weights: after a few epochs the largest difference
seen is about 4e-5 (1e-6 for nearly all weights), against 2e-2 when each process normalised the loss by its own
valid steps. ATOL sits between, ten times above the rounding.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from signals_support import default_sigint
from processes_support import process_fields
import torch
import yaml

from navigator.cli import main
from navigator.config import load_config
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode
from navigator.training import distributed, launcher
from navigator.workers import usable_cpus
from navigator.training.config import TrainConfig
from navigator.training.pipeline import Hooks, check_recipe, run_recipe

ATOL = 5e-4
EPOCHS = 3
# Episode lengths: three shorter than the 8-frame window (padded, masked). With batch_size 6 the 85 training windows
# make 14 full batches and a last one of 1 window, which rank 1's share leaves empty.
FRAMES = (5, 40, 6, 47, 54, 3, 61, 68, 75, 82, 7, 89)
RECIPE = {"window": 8, "stride": 4, "batch_size": 6, "epochs": EPOCHS, "threads": 1, "feature_size": 8,
          "val_fraction": 0.25, "cache_mb": 64}
RUN_FILES = {"run.json", "progress.json", "last.pt", "best.pt", "history.json", "tensorboard"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    writer = DatasetWriter.create(root / "data", image_size=(24, 32), recipe={"synthetic": True})
    for seed, frames in enumerate(FRAMES):
        writer.write(synthetic_episode(seed, frames=frames, height=24, width=32))
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "data": [str(root / "data")]}))
    return path


def policy_weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["policy"]


class EveryEpoch(Hooks):
    """The weights last.pt holds after each epoch (it is saved before the epoch's hook runs)."""

    def __init__(self, out: Path) -> None:
        self.out, self.weights = out, {}

    def epoch(self, report) -> None:
        self.weights[report.epoch] = policy_weights(self.out / "last.pt")


@pytest.fixture(scope="module")
def one_process(recipe, tmp_path_factory):
    """The reference: one process, the same recipe; its weights after every epoch and its history."""
    out = tmp_path_factory.mktemp("one") / "run"
    config = load_config(TrainConfig, recipe, {"out": str(out)})
    hooks = EveryEpoch(out)
    run_recipe(config, resume=False, hooks=hooks)
    return hooks.weights, json.loads((out / "history.json").read_text()), out


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[name].double() - b[name].double()).abs().max()) for name in a)


def process_of_rank(marker: str, rank: int) -> int | None:
    """The pid of the training process of `rank` among those whose environment holds `marker`."""
    for pid, environment in process_fields("environ"):
        if marker.encode() in environment and f"RANK={rank}".encode() in environment:
            return pid
    return None


def launched(recipe: Path, out: Path, temp: Path, token: str) -> subprocess.Popen:
    """`navigator train --nproc 2` into `out`, in a session of its own (as a terminal's foreground job), with `temp`
    as its temporary folder and `token` in its processes' environment."""
    temp.mkdir()
    return subprocess.Popen([sys.executable, "-m", "navigator", "train", "--config", str(recipe), "--out", str(out),
                             "--nproc", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NAVIGATOR_TEST_GROUP": token, "TMPDIR": str(temp)},
                            start_new_session=True, preexec_fn=default_sigint)


def torchrun_leftovers(temp: Path) -> list[str]:
    """What torchrun (its default log folder) or the launcher (its own) left in the temporary folder `temp`."""
    return sorted(p.name for p in temp.iterdir() if p.name.startswith(("torchelastic_", "navigator-torchrun-")))


@pytest.fixture(scope="module")
def interrupted(recipe, tmp_path_factory):
    """`navigator train --nproc 2`, whose rank 1 is killed once an epoch is saved: (run folder, exit status,
    output, seconds from the kill to the exit, what it left in its temporary folder)."""
    out = tmp_path_factory.mktemp("two") / "run"
    temp = out.parent / "temp"
    token = str(uuid.uuid4())  # inherited by torchrun's processes: how this group's rank 1 is found
    process = launched(recipe, out, temp, token)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        rank_1 = process_of_rank(f"NAVIGATOR_TEST_GROUP={token}", 1)
        assert rank_1 is not None and process.poll() is None, "the group ended before an epoch was saved"
        os.kill(rank_1, signal.SIGKILL)
        killed = time.monotonic()
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return out, process.returncode, output, time.monotonic() - killed, torchrun_leftovers(temp)


def test_a_killed_process_stops_the_group_with_a_clear_message(interrupted):
    _, status, output, seconds, _ = interrupted
    assert status == 2 and seconds < 60, output
    assert "training with 2 processes failed" in output and "SIGKILL" in output
    # Rank 0 says how to continue, whether its all-reduce failed first or torchrun stopped it.
    assert ("another training process stopped or could not be reached" in output
            or "interrupted; rerun the same command with --resume to continue" in output), output
    assert "[rank0]: Traceback" not in output, output  # in full: where it came from


def test_two_processes_train_like_one_with_the_same_global_batch(interrupted, one_process):
    out = interrupted[0]
    reference, history, _ = one_process
    state = torch.load(out / "last.pt", weights_only=True)
    assert 1 <= state["epoch"] < EPOCHS
    assert largest_difference(state["policy"], reference[state["epoch"]]) < ATOL
    for ours, theirs in zip(json.loads(state["history"]), history):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
    assert largest_difference(reference[1], reference[2]) > 20 * ATOL  # an epoch moves weights far beyond ATOL
    # Only rank 0 wrote: the run's files once, one TensorBoard writer.
    assert {p.name for p in out.iterdir()} <= RUN_FILES
    assert len(list((out / "tensorboard").iterdir())) == 1
    assert json.loads((out / "run.json").read_text())["world_sizes"] == [2]


def test_torchrun_leaves_no_folder_in_the_temporary_folder(interrupted):
    assert interrupted[4] == []


def test_ctrl_c_stops_the_group_with_one_line_and_keeps_the_saved_epochs(recipe, tmp_path):
    out = tmp_path / "run"
    process = launched(recipe, out, tmp_path / "temp", str(uuid.uuid4()))
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the group ended before an epoch was saved"
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: its foreground process group
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    assert output.count("interrupted; rerun the same command with --resume to continue") == 1, output
    assert "Traceback" not in output and "torch.distributed" not in output and "SIGTERM" not in output, output
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1
    assert torchrun_leftovers(tmp_path / "temp") == []


def test_torchrun_resumes_the_interrupted_run(interrupted, one_process, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(interrupted[0], out)
    logs = tmp_path / "logs"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "--log-dir", str(logs), "--redirects", "3", "-m", "navigator", "train", "--out", str(out),
                           "--resume"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    rank_logs = {path.parent.name + "/" + path.name: path.read_text() for path in logs.rglob("*.log")}
    assert "best policy" in rank_logs["0/stdout.log"]
    assert rank_logs["1/stdout.log"] == rank_logs["1/stderr.log"] == ""
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == EPOCHS
    assert largest_difference(policy_weights(out / "last.pt"), one_process[0][EPOCHS]) < ATOL
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert len(list((out / "tensorboard").iterdir())) == 2  # one writer per start, rank 0's
    assert json.loads((out / "run.json").read_text())["world_sizes"] == [2, 2]


def test_one_process_may_resume_a_run_of_two(interrupted, one_process, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(interrupted[0], out)
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert largest_difference(policy_weights(out / "last.pt"), one_process[0][EPOCHS]) < ATOL
    assert json.loads((out / "run.json").read_text())["world_sizes"] == [2, 1]


@pytest.fixture
def no_torchrun(monkeypatch):
    """Fail the test if the command starts torchrun: its refusals must come before."""
    def launch(*args, **kwargs):
        raise AssertionError(f"torchrun was started: {args}")

    monkeypatch.setattr(launcher, "launch", launch)


@pytest.mark.parametrize("flags, message", [
    (["--nproc", "2", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--nproc", str(os.cpu_count() + 1)], "more than the"),
    (["--nproc", "0"], "--nproc must be at least 1"),
    (["--nproc", "2", "--device", "cuda"], "not on --device cuda: drop --nproc to train on the GPU"),
])
def test_a_bad_setting_exits_2_before_any_process_starts(recipe, tmp_path, capsys, flags, message, no_torchrun):
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def refusal_before_torchrun(flags: list[str], capsys) -> str:
    """`navigator train FLAGS --nproc 2`, which must be refused here, before torchrun starts (the callers' tests
    take `no_torchrun`): the error."""
    assert main(["train", *flags, "--nproc", "2"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1, error
    return error


@pytest.mark.parametrize("flags, message", [
    (["--resume"], "is finished"),
    (["--extend"], "give a larger --epochs than 3 to extend it (the run is finished: nothing is left to resume)"),
    (["--extend", "--epochs", "2"], "--extend only raises epochs: the run has 3, you gave 2"),
])
def test_continuing_a_finished_run_is_refused_before_torchrun_starts(one_process, capsys, flags, message,
                                                                   no_torchrun):
    out = one_process[2]
    recorded = (out / "run.json").read_bytes()
    assert message in refusal_before_torchrun(["--out", str(out), *flags], capsys)
    assert (out / "run.json").read_bytes() == recorded


def test_a_changed_setting_is_refused_before_torchrun_starts(interrupted, tmp_path, capsys, no_torchrun):
    out = tmp_path / "run"
    shutil.copytree(interrupted[0], out)
    error = refusal_before_torchrun(["--out", str(out), "--resume", "--batch-size", "32"], capsys)
    assert "--batch-size: run has" in error  # named as typed
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == {
        p.name: p.read_bytes() for p in interrupted[0].iterdir() if p.is_file()}


def test_checking_a_recipe_writes_nothing(recipe, one_process):
    out = one_process[2]
    config = load_config(TrainConfig, recipe, {"out": str(out), "epochs": EPOCHS + 2})
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    check_recipe(config, resume=False, extend=True)  # an extension run_recipe would record
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("rank", [0, 1])
def test_too_many_torchrun_processes_are_refused_by_rank_0_alone(recipe, tmp_path, capsys, monkeypatch, rank):
    world = usable_cpus() + 1  # what torchrun --nproc-per-node WORLD sets for each of its processes
    for name, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world,
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": 29500}.items():
        monkeypatch.setenv(name, str(value))
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert ("more than the" in error) == (rank == 0), error
    assert (error == "") == (rank != 0)
    assert not (tmp_path / "run").exists()


def test_a_half_set_torchrun_environment_is_refused(recipe, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "half set" in error and "MASTER_ADDR, MASTER_PORT not" in error
    assert not (tmp_path / "run").exists()


def test_shares_of_a_batch_cover_it_once_in_order():
    for world in (1, 2, 3, 5):
        for size in range(12):
            groups = [distributed.Group(rank, world, store=None) for rank in range(world)]
            shares = [distributed.rows(group, size) for group in groups]
            assert [row for share in shares for row in share] == list(range(size))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
