"""Parallel collection, interruption by kill -9, and resuming: the manifest stays consistent throughout."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from navigator.dataset import ChecksumError, Dataset, DatasetWriter, EpisodeKey, check_dataset, write_episode
from navigator.dataset.synthetic import synthetic_episode

REPO = Path(__file__).resolve().parents[1]


def test_parallel_workers_write_files_and_the_parent_adds_them(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={"workers": 2})
    episodes = [synthetic_episode(seed, frames=12) for seed in range(4)]
    # spawn, as a collector would: a worker must not inherit the parent's simulator or torch state.
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for entry in pool.starmap(write_episode, [(writer.path, episode) for episode in episodes]):
            writer.add(entry)
    dataset = Dataset.open(writer.path)
    assert [e.seed for e in dataset.entries] == [0, 1, 2, 3]
    assert check_dataset(writer.path).problems == []


# The child writes three episodes, then a long one whose compression takes long enough for the parent to see its
# temporary file and kill the child in the middle of writing it.
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from navigator.dataset import DatasetWriter
    from navigator.dataset.synthetic import synthetic_episode

    writer = DatasetWriter.create(sys.argv[1], image_size=(48, 64), recipe={})
    for seed in range(3):
        writer.write(synthetic_episode(seed, frames=10))
    long = synthetic_episode(3, frames=10)
    frames = 3000
    rng = np.random.default_rng(0)
    long.images = rng.integers(0, 256, (frames, 48, 64, 3), dtype=np.uint8)
    for name in ("state", "action_label", "action_executed", "dt"):
        setattr(long, name, np.resize(getattr(long, name), (frames, *getattr(long, name).shape[1:])))
    long.timestamp = np.arange(frames) / 30.0
    long.privileged = {k: np.resize(v, (frames, *v.shape[1:])) for k, v in long.privileged.items()}
    print("writing", flush=True)
    writer.write(long)
    print("done", flush=True)
""")


def test_kill_9_mid_episode_leaves_a_consistent_resumable_dataset(tmp_path):
    root = tmp_path / "ds"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 30
        while not any(p.name.endswith(".tmp") for p in (root / "episodes").iterdir()):
            assert time.monotonic() < deadline and child.poll() is None, "the child never started its file"
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    dataset = Dataset.open(root)
    assert [e.seed for e in dataset.entries] == [0, 1, 2]
    assert all(dataset.read(entry).frames == 10 for entry in dataset.entries)
    report = check_dataset(root)
    assert report.sound and not report.errors
    assert [p.severity for p in report.problems] == ["warning"] and report.problems[0].file.endswith(".tmp")

    writer = DatasetWriter.open(root)
    wanted = [EpisodeKey("fly-to-target", "summer", seed) for seed in range(6)]
    recovery = writer.recover()
    assert recovery.adopted == [] and len(recovery.removed_temporaries) == 1
    assert [key.seed for key in writer.missing(wanted)] == [3, 4, 5]
    assert check_dataset(root).problems == []


def test_resume_adopts_a_complete_stray_file_and_rejects_a_broken_one(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})
    writer.write(synthetic_episode(0, frames=8))
    # Workers finished two files but the parent died before adding them to the manifest.
    stray = write_episode(writer.path, synthetic_episode(1, frames=8))
    broken = write_episode(writer.path, synthetic_episode(2, frames=8))
    broken_path = writer.path / "episodes" / broken.file
    broken_path.write_bytes(broken_path.read_bytes()[:-50])
    warnings = check_dataset(writer.path).warnings
    assert sorted(p.file for p in warnings) == sorted(f"episodes/{e.file}" for e in (stray, broken))
    assert all("not listed in the manifest" in p.message for p in warnings)

    writer = DatasetWriter.open(writer.path)
    recovery = writer.recover()
    assert recovery.adopted == [stray]
    assert [(name, aside) for name, _, aside in recovery.rejected] == [(broken.file, f"{broken.file}.damaged")]
    assert "cannot be read as an episode file" in recovery.rejected[0][1]
    assert not broken_path.exists() and (broken_path.parent / f"{broken.file}.damaged").is_file()  # kept, aside
    assert writer.completed() == {EpisodeKey("fly-to-target", "summer", s) for s in (0, 1)}
    assert [e.seed for e in Dataset.open(writer.path).entries] == [0, 1]


def test_add_refuses_a_file_changed_after_it_was_written(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})
    entry = write_episode(writer.path, synthetic_episode(0, frames=8))
    (writer.path / "episodes" / entry.file).write_bytes(b"not the same")
    with pytest.raises(ChecksumError, match="differs from"):
        writer.add(entry)
    assert Dataset.open(writer.path).entries == ()
