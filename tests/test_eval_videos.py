"""`navigator eval --videos K`: the first K failed episodes of each suite and pilot are flown again, filmed, and
linked from the report; successes are never filmed, and a resumed evaluation does not film again."""

import dataclasses
import json

from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.pipeline import Hooks, evaluate
from navigator.evaluation.settings import EpisodeKey, EvalSettings
from navigator.evaluation.videos import failures_to_film, pilot_file_name, video_path

# One second: the expert reaches no target, so every episode fails (and filming stays cheap).
SHORT = EvalSettings(pilots=("expert",), suites=("summer", "night"), episodes=3, seed=100_000, max_seconds=1.0)


class Filmed(Hooks):
    def __init__(self) -> None:
        self.episodes: list[tuple[str, int]] = []

    def filmed(self, record) -> None:
        self.episodes.append((record.suite, record.seed))


def _record(seed: int, success: bool) -> EpisodeRecord:
    return EpisodeRecord(pilot="expert", suite="summer", seed=seed, ending="success" if success else "collision",
                         success=success, steps=1, time=1.0, path_length=1.0, final_distance=1.0,
                         start=(0.0, 0.0, 1.0), target=(5.0, 0.0, 1.0), path_xy=((0.0, 0.0),))


def test_only_failures_are_chosen_lowest_seeds_first():
    settings = dataclasses.replace(SHORT, episodes=5)
    outcomes = {100_000: True, 100_001: False, 100_002: True, 100_003: False, 100_004: False}
    records = {EpisodeKey(suite, 0, seed): _record(seed, success if suite == 0 else False)
               for suite in range(2) for seed, success in outcomes.items()}
    assert [(k.suite, k.seed) for k in failures_to_film(settings, records, 2)] == [
        (0, 100_001), (0, 100_003), (1, 100_000), (1, 100_001)]
    assert [k.seed for k in failures_to_film(settings, records, 10) if k.suite == 0] == [100_001, 100_003, 100_004]
    assert failures_to_film(settings, records, 0) == []


def test_video_names_keep_checkpoints_apart(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "best.pt").write_bytes(b"")
    settings = EvalSettings(pilots=("expert", str(tmp_path / "a" / "best.pt"), str(tmp_path / "b" / "best.pt")))
    assert [pilot_file_name(settings, i) for i in range(3)] == ["expert", "p1-a-best", "p2-b-best"]
    assert video_path(tmp_path, settings, EpisodeKey(1, 2, 7)) == tmp_path / "videos" / "autumn" / "p2-b-best-7.mp4"


def test_failures_are_filmed_once_and_linked(tmp_path):
    out = tmp_path / "report"
    hooks = Filmed()
    evaluate(out, SHORT, workers=2, hooks=hooks, videos=2)
    assert sorted(hooks.episodes) == [("night", 100_000), ("night", 100_001), ("summer", 100_000), ("summer", 100_001)]
    videos = sorted(p.relative_to(out).as_posix() for p in (out / "videos").rglob("*"))
    assert videos == ["videos/night", "videos/night/expert-100000.mp4", "videos/night/expert-100001.mp4",
                      "videos/summer", "videos/summer/expert-100000.mp4", "videos/summer/expert-100001.mp4"]
    first = out / "videos" / "summer" / "expert-100000.mp4"
    assert first.read_bytes()[4:8] == b"ftyp"  # an mp4
    report = (out / "report.md").read_text()
    assert "[videos/summer/expert-100001.mp4](videos/summer/expert-100001.mp4)" in report

    stamp = first.stat().st_mtime_ns
    hooks = Filmed()
    evaluate(out, SHORT, workers=1, resume=True, hooks=hooks, videos=3)  # one more per suite, the rest kept
    assert sorted(hooks.episodes) == [("night", 100_002), ("summer", 100_002)]
    assert first.stat().st_mtime_ns == stamp
    hooks = Filmed()
    evaluate(out, SHORT, workers=1, resume=True, hooks=hooks, videos=None)  # without --videos: the videos stay linked
    assert hooks.episodes == [] and "videos/night/expert-100002.mp4" in (out / "report.md").read_text()


def test_a_resumed_evaluation_films_as_many_failures_as_it_was_started_with(tmp_path, capsys):
    """`eval --out X --resume` takes every setting from eval.json: an evaluation stopped before filming (here: its
    videos removed, as if it was stopped before they were made) films them when resumed without --videos."""
    from navigator.cli import main

    out = tmp_path / "report"
    args = ["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "2", "--max-seconds", "1", "--workers",
            "1", "--out", str(out)]
    assert main([*args, "--videos", "1"]) == 0
    filmed = sorted(p.name for p in (out / "videos" / "summer").iterdir())
    assert filmed == ["expert-100000.mp4"]
    for video in (out / "videos" / "summer").iterdir():
        video.unlink()
    assert main(["eval", "--out", str(out), "--resume"]) == 0
    assert sorted(p.name for p in (out / "videos" / "summer").iterdir()) == filmed
    # Fewer given: none filmed, the video kept and linked, and the folder still records the one it holds.
    assert main(["eval", "--out", str(out), "--resume", "--videos", "0"]) == 0
    assert "videos/summer/expert-100000.mp4" in (out / "report.md").read_text()
    assert json.loads((out / "eval.json").read_text())["videos"] == 1


class StopAfterFirstVideo(Filmed):
    def filmed(self, record) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the other worker is still filming


def test_an_evaluation_stopped_while_filming_leaves_no_temporary_video(tmp_path):
    """Ctrl-C ends the worker pool, and a worker stopped mid-video cannot remove its temporary file: the evaluation
    removes what a writer no longer running left, on its way out and whenever it films again; a temporary file whose
    writer still runs is left to it."""
    import subprocess
    import sys

    import pytest

    from navigator.dataset.atomic import temporary_name

    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt):
        evaluate(out, SHORT, workers=2, hooks=StopAfterFirstVideo(), videos=2)
    assert not [p for p in (out / "videos").rglob("*") if p.name.startswith(".")]
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(finished.stdout)  # a process that has ended
    orphan = (out / "videos" / "night" / f".expert-100001.mp4.{gone}-0123abcd.tmp")
    orphan.write_bytes(b"partial")
    live = temporary_name(out / "videos" / "night" / "expert-100001.mp4")  # this process's: still being written
    live.write_bytes(b"partial")
    evaluate(out, SHORT, workers=1, resume=True, hooks=Filmed(), videos=2)
    assert not orphan.exists() and live.exists()
    assert sorted(p.name for p in (out / "videos" / "night").glob("*.mp4")) == ["expert-100000.mp4",
                                                                                "expert-100001.mp4"]
