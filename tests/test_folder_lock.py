"""One writer per output folder (navigator/folder_lock.py): a command that would write a dataset, a training run, an
evaluation or a comparison another process is writing is refused in one line, exit 2, before it reads or writes
anything; the lock goes with the process that held it, however it ended, and is re-entrant within a process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from navigator.cli import main
from navigator.errors import UserError
from navigator.folder_lock import FolderLock

ROOT = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time; from pathlib import Path; from navigator.folder_lock import FolderLock; "
        "lock = FolderLock(Path(sys.argv[1]), 'folder'); print('held', flush=True); time.sleep(600)")


class Holder:
    """Another process holding the lock of `folder`, as a running navigator command does."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A finished dataset, training run, evaluation and (the record of) a comparison."""
    root = tmp_path_factory.mktemp("locked")
    data = root / "data"
    assert main(["collect", "--out", str(data), "--episodes", "2", "--max-seconds", "1", "--workers", "1"]) == 0
    run = root / "run"
    recipe = root / "recipe.yaml"
    recipe.write_text(f"data: [{data}]\nout: {run}\nepochs: 1\nbatch_size: 2\nwindow: 8\nstride: 8\n")
    assert main(["train", "--config", str(recipe)]) == 0
    report = root / "eval"
    assert main(["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "1", "--max-seconds", "1",
                 "--workers", "1", "--out", str(report)]) == 0
    comparison = root / "comparison"
    comparison.mkdir()
    (comparison / "compare.json").write_text(json.dumps({"format": "liquid-navigator/comparison-run"}))
    return {"data": data, "run": run, "eval": report, "comparison": comparison}


COMMANDS = {
    "data": (["collect", "--out", "{data}", "--episodes", "3", "--max-seconds", "1", "--workers", "1", "--extend"],
             "another navigator process is writing this dataset"),
    "run": (["train", "--out", "{run}", "--epochs", "2", "--extend"],
            "another navigator process is writing this training run"),
    "eval": (["eval", "--out", "{eval}", "--resume"], "another navigator process is writing this evaluation"),
    "comparison": (["compare", "--config", "launch/compare/fly_to_target.yaml", "--out", "{comparison}", "--resume"],
                   "another navigator process is writing this comparison"),
}


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_a_folder_another_process_writes_is_refused_before_anything_changes(folders, kind, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    folder = folders[kind]
    argv, message = COMMANDS[kind]
    argv = [part.format(**folders) for part in argv]
    before = snapshot(folder)
    holder = Holder(folder)
    try:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"{folder} is in use: {message}; wait for it to end" in error and len(error.strip().splitlines()) == 1
        assert snapshot(folder) == before
    finally:
        holder.kill()
    # The holder was killed, as a crash would: the kernel dropped its lock, and the folder is this process's now.
    with FolderLock(folder, kind):
        pass


FRESH_STARTS = {
    "data": ["collect", "--out", "{data}", "--episodes", "3", "--max-seconds", "1", "--workers", "1"],
    "run": ["train", "--data", "{data}", "--out", "{run}", "--epochs", "1"],
    "eval": ["eval", "--pilot", "expert", "--out", "{eval}"],
    "comparison": ["compare", "--config", "launch/compare/fly_to_target.yaml", "--out", "{comparison}"],
}


@pytest.mark.parametrize("kind", sorted(FRESH_STARTS))
def test_a_second_start_into_a_folder_being_written_says_it_is_in_use(folders, kind, capsys, monkeypatch):
    # The same command started twice: the second finds the first's files, and advising --resume would only be
    # refused in turn while the first runs.
    monkeypatch.chdir(ROOT)
    folder = folders[kind]
    argv = [part.format(**folders) for part in FRESH_STARTS[kind]]
    before = snapshot(folder)
    holder = Holder(folder)
    try:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"{folder} is in use: {COMMANDS[kind][1]}; wait for it to end" in error, error
        assert "--resume" not in error and len(error.strip().splitlines()) == 1
        assert snapshot(folder) == before
    finally:
        holder.kill()


def test_a_dataset_still_being_collected_is_not_read_in_part(folders, tmp_path, capsys):
    holder = Holder(folders["data"])  # as a collection adding episodes to it
    try:
        for argv in (["train", "--data", str(folders["data"]), "--out", str(tmp_path / "run"), "--epochs", "1"],
                     ["data", "info", str(folders["data"])],
                     ["data", "check", str(folders["data"])]):  # never "sound" with advice the writer would refuse
            assert main(argv) == 2
            error = capsys.readouterr().err
            assert f"{folders['data']} is in use: another navigator process is writing this dataset" in error
        assert not (tmp_path / "run").exists()
    finally:
        holder.kill()
    assert main(["data", "info", str(folders["data"])]) == 0  # read as usual once the writer ended
    assert main(["data", "check", str(folders["data"])]) in (0, 1)  # checked as usual: a verdict, not a refusal


def test_the_lock_is_reentrant_in_a_process_and_released_by_its_last_holder(tmp_path):
    outer = FolderLock(tmp_path, "dataset")
    with FolderLock(tmp_path / ".", "dataset"):  # the same folder by another name: this process holds it already
        pass
    holder = None
    try:
        with pytest.raises(subprocess.CalledProcessError):  # still held by `outer`
            subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"), str(tmp_path)], cwd=ROOT,
                           check=True, capture_output=True, timeout=60)
        outer.release()
        holder = Holder(tmp_path)  # released: another process takes it
        with pytest.raises(UserError, match="is in use"):
            FolderLock(tmp_path, "dataset")
    finally:
        if holder is not None:
            holder.kill()


RACES = {  # where each command first checks that its new --out is empty, and that command started into it
    "eval": ("navigator.evaluation.pipeline.check_folder",
             ["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "1", "--max-seconds", "1",
              "--workers", "1", "--out", "{out}"], "evaluation"),
    "run": ("navigator.training.pipeline._check_new", ["train", "--data", "{data}", "--out", "{out}", "--epochs", "1"],
            "training run"),
}


@pytest.mark.parametrize("finished", [False, True], ids=["still writing", "finished"])
@pytest.mark.parametrize("kind", sorted(RACES))
def test_two_starts_into_one_new_folder_leave_it_to_the_first(folders, kind, finished, tmp_path, capsys,
                                                               monkeypatch):
    """Two commands started at once into one new --out both find it missing; the other takes it first, between
    this one's check and its first write. This one is refused, and writes nothing there, whether the other still
    writes (its lock is held) or has already finished (the folder is no longer empty)."""
    target, argv, what = RACES[kind]
    out = tmp_path / "new" / "out"
    module, name = target.rsplit(".", 1)
    check = getattr(__import__(module, fromlist=[name]), name)
    holders = []

    def the_other_starts_meanwhile(*args, **kwargs):
        result = check(*args, **kwargs)
        if not holders:  # the first check only: the other command begins right after it
            out.mkdir(parents=True)
            (out / "theirs.json").write_text("{}")
            holders.append(None if finished else Holder(out))
        return result

    monkeypatch.setattr(target, the_other_starts_meanwhile)
    try:
        assert main([part.format(out=out, **folders) for part in argv]) == 2
    finally:
        for holder in holders:
            if holder is not None:
                holder.kill()
    error = capsys.readouterr().err
    if finished:
        assert f"{out} " in error and "is not empty" in error, error
    else:
        assert f"{out} is in use: another navigator process is writing this {what}" in error, error
    assert len(error.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["theirs.json"]  # nothing of this command's
