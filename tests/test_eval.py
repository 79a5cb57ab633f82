"""`navigator eval`: the Wilson interval, paired worlds across pilots, results that do not depend on the number of
workers, resume and its refusals, the results file's round trip and the command's bad-input errors."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from signals_support import default_sigint

from navigator.cli import main
from navigator.errors import UserError
from navigator.evaluation.pipeline import Hooks, evaluate
from navigator.evaluation.results import EvalResults
from navigator.evaluation.settings import EpisodeKey, EvalSettings
from navigator.evaluation.stats import wilson_interval
from records_support import edited_copy

SHIPPED = Path(__file__).resolve().parent.parent / "policies" / "pretrained"

# Long enough for the expert to reach most summer and winter targets (3-12 m away), short enough to stay cheap.
EXPERT = EvalSettings(pilots=("expert",), suites=("summer", "winter"), episodes=2, seed=100_000, max_seconds=8.0)


class Recorder(Hooks):
    """Remembers which episodes were flown, and what was said of damaged records."""

    def __init__(self) -> None:
        self.flown: list[tuple[str, str, int]] = []
        self.notes: list[str] = []  # what was said of damaged records

    def episode(self, record) -> None:
        self.flown.append((record.suite, record.pilot, record.seed))

    def damaged(self, note: str) -> None:
        self.notes.append(note)


@pytest.fixture(scope="module")
def expert_run(tmp_path_factory):
    """The expert in two suites, flown by one worker."""
    out = tmp_path_factory.mktemp("eval") / "one-worker"
    return out, evaluate(out, EXPERT, workers=1)


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory):
    """The expert and the shipped policy in the same worlds, through the command line (one worker: each process
    that flies the policy pays for importing torch)."""
    out = tmp_path_factory.mktemp("eval") / "paired"
    assert main(["eval", "--pilot", "expert", "--pilot", "pretrained", "--suites", "summer, night + wind",
                 "--episodes", "2", "--max-seconds", "1", "--workers", "1", "--out", str(out)]) == 0
    return out, EvalResults.from_dict(json.loads((out / "results.json").read_text()))


@pytest.mark.parametrize("successes, trials, expected", [
    # Computed apart from the code, from the counts form (k + z²/2 ± z·sqrt(k(n-k)/n + z²/4)) / (n + z²) with
    # z = 1.959964; 8/10 is also statsmodels' documented proportion_confint(8, 10, method="wilson").
    (8, 10, (0.4902, 0.9433)),
    (0, 10, (0.0, 0.2775)),  # upper = z^2 / (n + z^2) = 3.8415 / 13.8415
    (10, 10, (0.7225, 1.0)),
    (5, 10, (0.2366, 0.7634)),
    (1, 1, (0.2065, 1.0)),
    (37, 40, (0.8014, 0.9742)),
])
def test_wilson_interval_matches_known_values(successes, trials, expected):
    assert wilson_interval(successes, trials) == pytest.approx(expected, abs=5e-5)


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_pilots_meet_the_same_worlds(paired_run):
    out, results = paired_run
    assert results.settings.suites == ("summer", "night+wind")  # stored one way only
    by_pilot = {pilot: {(r.suite, r.seed): (r.start, r.target) for r in results.episodes if r.pilot == pilot}
                for pilot in ("expert", "pretrained")}
    assert len(by_pilot["expert"]) == 4 and by_pilot["expert"] == by_pilot["pretrained"]
    targets = {target for _, target in by_pilot["expert"].values()}
    assert len(targets) > 1  # different seeds are different worlds
    trajectories = {r.pilot: r.path_xy for r in results.episodes if (r.suite, r.seed) == ("summer", 100_000)}
    assert trajectories["expert"] != trajectories["pretrained"]  # the same world, flown by two pilots
    report = (out / "report.md").read_text()
    assert report.count("| `expert` |") == 2 and "## night+wind" in report
    for figure in ("success.png", "trajectories.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fly_flies_a_seed_exactly_as_eval_does(paired_run, capsys):
    """Same seed, same result, whichever command flies it: fly (in this process) and eval (in a worker process)."""
    _, results = paired_run
    capsys.readouterr()
    assert main(["fly", "--pilot", "pretrained", "--preset", "night + wind", "--seed", "100001", "--episodes", "1",
                 "--max-seconds", "1", "--json"]) == 0
    flown = json.loads(capsys.readouterr().out)["episodes"][0]
    evaluated = next(r for r in results.episodes if (r.pilot, r.suite, r.seed) == ("pretrained", "night+wind", 100_001))
    assert {key: flown[key] for key in ("ending", "steps", "time", "path_length", "final_distance")} == {
        "ending": evaluated.ending, "steps": evaluated.steps, "time": evaluated.time,
        "path_length": evaluated.path_length, "final_distance": evaluated.final_distance}


def test_results_round_trip_exactly(paired_run, expert_run):
    for out in (paired_run[0], expert_run[0]):
        document = json.loads((out / "results.json").read_text())
        results = EvalResults.from_dict(document)
        assert results.to_dict() == document
        assert EvalResults.from_dict(json.loads(json.dumps(results.to_dict()))) == results


def test_summary_of_the_expert(expert_run):
    _, results = expert_run
    for summary in results.summaries:
        records = [r for r in results.episodes if (r.suite, r.pilot) == (summary.suite, summary.pilot)]
        assert summary.episodes == 2 and sum(summary.endings.values()) == 2
        assert summary.successes == sum(r.success for r in records)
        assert summary.success_interval == pytest.approx(wilson_interval(summary.successes, 2), abs=1e-6)
    successes = [s for s in results.summaries if s.successes]
    assert successes, "the expert reaches some summer or winter target within 8 s"
    for summary in successes:
        assert 0.8 < summary.mean_path_efficiency <= 1.0  # the expert flies nearly straight at its target
        assert 2.0 < summary.mean_time_to_target <= 8.0


def test_workers_do_not_change_the_results(expert_run, tmp_path):
    out, _ = expert_run
    evaluate(tmp_path / "two-workers", EXPERT, workers=2)
    assert (tmp_path / "two-workers" / "results.json").read_bytes() == (out / "results.json").read_bytes()


def test_resume_flies_only_the_missing_episodes(expert_run, tmp_path):
    original, _ = expert_run
    out = tmp_path / "resumed"
    shutil.copytree(original, out)
    (out / "episodes" / "winter" / "p0-100001.json").unlink()
    (out / "results.json").unlink()  # as an interrupted evaluation, which has not written its results yet
    recorder = Recorder()
    evaluate(out, EXPERT, workers=1, resume=True, hooks=recorder)
    assert recorder.flown == [("winter", "expert", 100_001)]
    assert (out / "results.json").read_bytes() == (original / "results.json").read_bytes()

    recorder = Recorder()
    evaluate(out, EXPERT, workers=1, resume=True, hooks=recorder)
    assert recorder.flown == []


def test_a_damaged_results_file_standing_in_for_missing_episodes_is_said_so(expert_run, tmp_path, capsys):
    """A report kept without its episodes/ folder extends from results.json; when that is damaged too, its
    episodes are flown again (the same seeds give the same records), and the user is told why."""
    original, _ = expert_run
    out = tmp_path / "kept"
    shutil.copytree(original, out)
    shutil.rmtree(out / "episodes")
    (out / "results.json").write_bytes((original / "results.json").read_bytes()[:100])  # cut off
    assert main(["eval", "--out", str(out), "--resume", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert f"{out}: results.json could not be read, does not match its sha256, or records another episode than its " \
           f"name says; flying again" in shown
    assert (out / "results.json").read_bytes() == (original / "results.json").read_bytes()


def test_damaged_or_swapped_episode_records_are_flown_again_and_said_so(expert_run, tmp_path, capsys):
    original, _ = expert_run
    out = tmp_path / "damaged"
    shutil.copytree(original, out)
    (out / "results.json").unlink()  # an interrupted evaluation
    (out / "episodes" / "summer" / "p0-100000.json").write_text('{"pilot": "exp')  # cut off mid-write
    winter = out / "episodes" / "winter"
    first, second = (winter / "p0-100000.json").read_bytes(), (winter / "p0-100001.json").read_bytes()
    (winter / "p0-100000.json").write_bytes(second)  # each records the other's seed
    (winter / "p0-100001.json").write_bytes(first)
    assert main(["eval", "--out", str(out), "--resume", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    shown = " ".join((captured.out + captured.err).split())
    assert "3 records, the first episodes/summer/p0-100000.json, could not be read, does not match its sha256, " \
           "or records another episode than its name says; flying again" in shown
    assert (out / "results.json").read_bytes() == (original / "results.json").read_bytes()

    recorder = Recorder()
    evaluate(out, EXPERT, workers=1, resume=True, hooks=recorder)
    assert recorder.flown == []


def test_damaged_episode_records_that_results_json_holds_are_restored_from_it(expert_run, tmp_path, capsys):
    """A record damaged after the evaluation finished (its results.json holds the episode) is written again from
    results.json and said so: nothing flies, and the folder is whole again."""
    original, _ = expert_run
    out = tmp_path / "damaged"
    shutil.copytree(original, out)
    cut = out / "episodes" / "summer" / "p0-100001.json"
    cut.write_text('{"pilot": "exp')  # cut off
    winter = out / "episodes" / "winter"
    first, second = (winter / "p0-100000.json").read_bytes(), (winter / "p0-100001.json").read_bytes()
    (winter / "p0-100000.json").write_bytes(second)  # each records the other's seed
    (winter / "p0-100001.json").write_bytes(first)
    recorder = Recorder()
    evaluate(out, EXPERT, workers=1, resume=True, hooks=recorder)
    assert recorder.flown == []
    assert recorder.notes == [f"{out}: 3 records, the first episodes/summer/p0-100001.json, could not be read, does "
                                f"not match its sha256, or records another episode than its name says; restored "
                                f"from results.json"]
    for path in (cut, winter / "p0-100000.json", winter / "p0-100001.json"):
        assert path.read_bytes() == (original / path.relative_to(out)).read_bytes()
    assert (out / "results.json").read_bytes() == (original / "results.json").read_bytes()


@pytest.mark.parametrize("field, value", [("success", "yes"), ("ending", "banana"), ("time", "abc"),
                                          ("success", True), ("start", [0.0, 1.0]), ("steps", -1)])
def test_an_episode_record_with_a_malformed_field_counts_as_damaged(expert_run, tmp_path, field, value):
    from navigator.evaluation.folder import read_finished

    original, _ = expert_run
    out = tmp_path / "edited"
    shutil.copytree(original, out)
    (out / "results.json").unlink()
    path = out / "episodes" / "winter" / "p0-100001.json"
    record = json.loads(path.read_text())
    if field == "success":
        value = value if value != record["success"] else "yes"  # True where the ending says otherwise
    path.write_text(json.dumps({**record, field: value}))
    finished, damaged, _ = read_finished(out, EXPERT)
    assert damaged == [path] and len(finished) == len(list(EXPERT.keys())) - 1


@pytest.mark.parametrize("field, value", [("time", 1.5), ("final_distance", 0.0), ("path_length", 99.0)])
def test_an_episode_record_edited_so_that_it_still_parses_counts_as_damaged(expert_run, tmp_path, field, value):
    """Its sha256 no longer matches its fields: restored from results.json, or flown again without it."""
    from navigator.evaluation.folder import read_finished

    original, _ = expert_run
    out = tmp_path / "edited"
    shutil.copytree(original, out)
    path = out / "episodes" / "winter" / "p0-100001.json"
    record = json.loads(path.read_text())
    assert record[field] != value
    path.write_text(json.dumps({**record, field: value}, indent=1))
    finished, damaged, restorable = read_finished(out, EXPERT)
    assert damaged == [] and restorable == [EpisodeKey(1, 0, 100001)]  # results.json holds it
    assert finished[EpisodeKey(1, 0, 100001)].to_dict()[field] == record[field]
    (out / "results.json").unlink()
    finished, damaged, _ = read_finished(out, EXPERT)
    assert damaged == [path] and EpisodeKey(1, 0, 100001) not in finished
    # Without its sha256 it is damaged too, in a folder whose version writes one; in a folder of the version before
    # checksums (1), such a record is read as it is.
    path.write_text(json.dumps({key: item for key, item in record.items() if key != "sha256"}))
    assert read_finished(out, EXPERT)[1] == [path]
    recorded = json.loads((out / "eval.json").read_text())
    del recorded["sha256"]
    (out / "eval.json").write_text(json.dumps({**recorded, "version": 1}))
    assert read_finished(out, EXPERT)[1] == []


def test_resume_with_other_settings_is_refused(expert_run, tmp_path, capsys):
    original, _ = expert_run
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    before = sorted(p.name for p in (out / "episodes").rglob("*.json"))
    assert main(["eval", "--pilot", "expert", "--suites", "summer,winter", "--episodes", "3", "--max-seconds", "8",
                 "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "episodes: evaluation has 2, you gave 3" in error and "to add worlds per suite pass --extend" in error
    assert sorted(p.name for p in (out / "episodes").rglob("*.json")) == before
    with pytest.raises(UserError, match="no evaluation to continue"):
        evaluate(tmp_path / "nothing-here", EXPERT, resume=True)


@pytest.mark.parametrize("record, said", [
    ("\xff", "cannot read"),
    ('{"format": "liquid-navigator/eval"}', "is not a liquid-navigator/eval version 1 or 2 file"),
    ('{"format": "liquid-navigator/eval", "version": 1}', "records no settings (it is damaged)")])
@pytest.mark.parametrize("flag", ["--resume", "--extend"])
def test_a_damaged_eval_record_is_said_as_such(expert_run, tmp_path, capsys, monkeypatch, record, said, flag):
    monkeypatch.setenv("COLUMNS", "1000")
    original, _ = expert_run
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    (out / "eval.json").write_text(record, encoding="latin-1")
    assert main(["eval", "--out", str(out), flag, "--episodes", "9"]) == 2
    error = capsys.readouterr().err
    assert f"{flag}: " in error and said in error and "start again in another --out" in error
    assert len(error.strip().splitlines()) == 1


@pytest.mark.parametrize("kept", ["episodes", "report only"])
def test_extend_flies_only_the_new_worlds_and_reports_on_all(expert_run, tmp_path, kept):
    original, first = expert_run
    out = tmp_path / "extended"
    shutil.copytree(original, out)
    if kept == "report only":  # a report kept without its episodes/ (as the committed ones are): results.json has them
        shutil.rmtree(out / "episodes")
    recorder = Recorder()
    more = dataclasses.replace(EXPERT, episodes=3)
    results = evaluate(out, more, workers=1, resume=True, hooks=recorder, extend=True)
    assert sorted(recorder.flown) == [("summer", "expert", 100_002), ("winter", "expert", 100_002)]
    assert json.loads((out / "eval.json").read_text())["settings"]["episodes"] == 3
    assert {(r.suite, r.seed): r for r in first.episodes}.items() <= {(r.suite, r.seed): r
                                                                      for r in results.episodes}.items()
    assert all(s.episodes == 3 for s in results.summaries)
    # Interrupted or not, it is now a 3-world evaluation: --resume continues it as recorded, flying nothing.
    recorder = Recorder()
    evaluate(out, more, workers=1, resume=True, hooks=recorder)
    assert recorder.flown == []


def test_extend_speaks_of_extend_and_names_a_checkpoint_that_changed(tmp_path, capsys):
    import torch

    from policies.checkpoint import checkpoint_bytes, load_checkpoint

    assert main(["eval", "--out", str(tmp_path / "empty"), "--extend", "--episodes", "3"]) == 2
    error = capsys.readouterr().err
    assert "--extend: " in error and "drop --extend to start one" in error and "--resume" not in error
    policy, metadata = load_checkpoint("policies/pretrained/fly-to-target-cfc-ncp.pt")
    pilot = tmp_path / "best.pt"
    pilot.write_bytes(checkpoint_bytes(policy, metadata))
    out = tmp_path / "report"
    assert main(["eval", "--pilot", str(pilot), "--suites", "summer", "--episodes", "1", "--max-seconds", "1",
                 "--workers", "1", "--out", str(out)]) == 0
    with torch.no_grad():  # trained further, as `navigator train --extend` would
        next(policy.parameters()).add_(0.01)
    pilot.write_bytes(checkpoint_bytes(policy, metadata))
    capsys.readouterr()
    assert main(["eval", "--out", str(out), "--extend", "--episodes", "2"]) == 2
    error = capsys.readouterr().err
    assert f"pilot {pilot} changed since the evaluation in {out} started" in error and "flags" not in error


def test_extend_names_a_changed_seed_before_checking_it_against_training(paired_run, tmp_path, capsys):
    """Seeds 5-7 overlap the shipped policy's training seeds, but the user's mistake is changing --seed at all."""
    original, _ = paired_run
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    assert main(["eval", "--out", str(out), "--extend", "--episodes", "3", "--seed", "5"]) == 2
    error = capsys.readouterr().err
    assert "--seed: evaluation has 100000, you gave 5" in error and "overlap" not in error


@pytest.mark.parametrize("args, message", [
    (["--episodes", "1"], "--extend only raises worlds per suite: the evaluation has 2, you gave 1"),
    (["--episodes", "2"], "--extend needs more worlds per suite than {out} is set to (2); give a "
                           "larger --episodes than 2 to extend it, or pass --resume in place of --extend to resume it"),
    (["--episodes", "3", "--seed", "7"], "other settings differ from the evaluation's: --seed: evaluation has 100000, "
                                         "you gave 7"),
])
def test_extend_refuses_anything_but_more_worlds_before_any_work(expert_run, tmp_path, capsys, args, message):
    original, _ = expert_run
    out = tmp_path / "copy"
    shutil.copytree(original, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["eval", "--out", str(out), "--extend", *args]) == 2
    error = capsys.readouterr().err
    assert message.format(out=out) in error and len(error.strip().splitlines()) == 1
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


@pytest.mark.parametrize("args, message", [
    (["--suites", "summer,moon"], "unknown preset 'moon'"),
    (["--episodes", "0"], "--episodes must be in [1, 1000000], got 0"),
    (["--pilot", "expert", "--pilot", "expert"], "expert given more than once"),
    (["--pilot", "policies/pretrained/hike-cfc-ncp.pt", "--pilot", "./policies/../policies/pretrained/hike-cfc-ncp.pt"],
     "./policies/../policies/pretrained/hike-cfc-ncp.pt given more than once: give each once"),
    (["--pilot", "policies/pretrained/bundles/hike", "--pilot", "policies/pretrained/bundles/hike/policy.json"],
     "policies/pretrained/bundles/hike/policy.json given more than once: give each once"),
    (["--pilot", "missing.pt"], "missing.pt does not exist"),
    (["--workers", "-1"], "--workers must be in [0, 256] (0: one per CPU core), got -1"),
    (["--workers", "999"], "--workers must be in [0, 256] (0: one per CPU core), got 999"),
    (["--suites", "winter+wind,Wind + Winter"], "winter+wind and wind+winter are the same scenery"),
    # The shipped policy's demonstrations flew seeds 0-599 (its checkpoint records its recipe).
    (["--pilot", "pretrained", "--seed", "550", "--episodes", "100"], "seeds 550-599"),
])
def test_bad_input_exits_2_before_any_flight(tmp_path, capsys, args, message):
    out = tmp_path / "report"
    assert main(["eval", "--out", str(out), *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("navigator eval: error:") and message in error
    assert not out.exists()


def test_existing_output_needs_resume(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["eval", "--pilot", "expert", "--out", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _stop_once_flying(out, stop) -> tuple[int, str]:
    """Start a two-worker evaluation into `out` in its own session, call `stop(process)` once its first episode is
    saved (the workers are flying), and return (exit status, stderr)."""
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "navigator.cli", "eval", "--pilot", "expert", "--suites", "summer",
               "--episodes", "40", "--max-seconds", "2", "--workers", "2", "--out", str(out)]
    # Its own session, so that a signal can go to its whole process group, as a terminal's Ctrl-C does; with
    # Ctrl-C's default action even where the test runner was started with SIGINT ignored (a `&` job of a script).
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "episodes").is_dir() and any((out / "episodes").rglob("*.json")):
            break
        time.sleep(0.01)
    stop(process)
    _, error = process.communicate(timeout=60)
    return process.returncode, error


def test_ctrl_c_stops_every_worker_quietly(tmp_path):
    import os
    import signal

    status, error = _stop_once_flying(tmp_path / "report", lambda process: os.killpg(process.pid, signal.SIGINT))
    assert status == 130, error
    assert "SpawnPoolWorker" not in error and "Traceback" not in error and "KeyboardInterrupt" not in error
    assert error.strip().splitlines()[-1].startswith("navigator eval: interrupted")


def test_sigterm_stops_an_evaluation_as_ctrl_c_does(tmp_path):
    """kill, timeout and systemctl stop send SIGTERM to the command's process alone: the same clean-up as Ctrl-C
    (the workers are stopped, what finished is kept, one line says how to continue), exit 143. (A new evaluation
    stopped before its first episode removes its folder: test_a_new_evaluation_that_fails_before_its_first_...)"""
    import os
    import signal

    out = tmp_path / "report"
    status, error = _stop_once_flying(out, lambda process: os.kill(process.pid, signal.SIGTERM))
    assert status == 143, error
    assert "Traceback" not in error and "leaked" not in error, error
    assert error.strip().splitlines()[-1] == ("navigator eval: stopped by SIGTERM; rerun the same command with "
                                              "--resume to continue")
    assert any((out / "episodes").rglob("*.json"))


def test_a_worker_killed_mid_evaluation_ends_it_with_the_way_to_continue(tmp_path):
    """A worker process killed (kill -9, the out-of-memory killer) takes its episode with it, and a process pool
    never runs that episode again: the evaluation must not wait for it forever. It ends within seconds, says what
    happened and how to continue (exit 1), and --resume flies what is missing."""
    import os
    import signal

    from processes_support import children_of

    out = tmp_path / "report"

    def kill_a_worker(process) -> None:
        workers = [pid for pid, argv in children_of(process.pid) if b"spawn_main" in b" ".join(argv)]
        assert workers
        os.kill(workers[0], signal.SIGKILL)

    status, error = _stop_once_flying(out, kill_a_worker)
    assert status == 1, error
    assert "Traceback" not in error and error.strip().splitlines()[-1] == (
        "navigator eval: a worker process ended unexpectedly (killed, or stopped by the system when memory ran out); "
        "the work it held is lost; rerun the same command with --resume to continue")
    assert main(["eval", "--out", str(out), "--resume", "--workers", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["episodes"]) == 40


def test_eval_workers_ignore_sigint_and_keep_their_setup():
    import os
    import signal

    from navigator.evaluation.episodes import _init_worker
    from navigator.workers import spawn_pool

    with spawn_pool(1, _init_worker) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.SIG_IGN
        # SIGTERM, blocked while the pool started, is taken again: the pool stops its workers with it.
        assert signal.SIGTERM not in pool.apply(signal.pthread_sigmask, (signal.SIG_BLOCK, set()))
        assert pool.apply(os.getenv, ("OMP_NUM_THREADS",)) == "1"


def test_a_new_evaluation_that_fails_before_its_first_episode_leaves_no_folder(tmp_path, monkeypatch):
    """Whatever stops it (Ctrl-C, workers that cannot start): nothing to resume, so nothing stays in the way of
    running the same command again; an evaluation that was there before is never removed."""
    import navigator.evaluation.pipeline as pipeline

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    settings = EvalSettings(pilots=("expert",), suites=("summer",), episodes=1, max_seconds=1.0)
    out = tmp_path / "new" / "eval"
    monkeypatch.setattr(pipeline, "fly_episodes", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate(out, settings, workers=1)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    evaluate(out, settings, workers=1)
    monkeypatch.setattr(pipeline, "fly_episodes", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate(out, settings, workers=1, resume=True)
    assert (out / "eval.json").is_file() and len(list((out / "episodes").rglob("*.json"))) == 1


@pytest.fixture(scope="module")
def small_evaluation(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "report"
    assert main(["eval", "--pilot", "pretrained", "--suites", "summer", "--episodes", "1", "--max-seconds", "0.3",
                 "--workers", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("edit, problem", [
    (lambda record: record["pilots"][0].update(checkpoint_sha256=123), "pilots[0].checkpoint_sha256 must be text"),
    (lambda record: record["pilots"][0].update(training_seeds="abc"), 'pilots[0].training_seeds must be a mapping'),
    (lambda record: record["pilots"].__setitem__(0, "pretrained"), 'pilots[0] must be a mapping of names to values'),
    (lambda record: record.update(videos=-1), "videos must be a whole number, 0 or more (got -1)"),
])
def test_a_damaged_evaluation_record_is_named_never_taken_for_a_changed_pilot(small_evaluation, tmp_path, capsys,
                                                                              monkeypatch, edit, problem):
    monkeypatch.setenv("COLUMNS", "1000")
    out = edited_copy(small_evaluation, tmp_path / "report", "eval.json", edit)
    capsys.readouterr()
    assert main(["eval", "--out", str(out), "--extend", "--episodes", "2"]) == 2
    error = capsys.readouterr().err
    assert "eval.json is damaged" in error and problem in error and "changed since" not in error, error


def test_asking_for_attention_on_resume_names_only_what_the_user_changed(small_evaluation, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    out = tmp_path / "report"
    shutil.copytree(small_evaluation, out)
    assert main(["eval", "--out", str(out), "--resume", "--attention"]) == 2
    error = capsys.readouterr().err
    assert "attention: evaluation has false, you gave true" in error and "attention_every" not in error, error


def test_a_checkpoint_spelled_another_way_is_the_same_pilot_on_resume(tmp_path, capsys, monkeypatch):
    # "./r3/best.pt", "r3//best.pt" and "r3/best.pt" name one file: one pilot, kept as the evaluation recorded it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r3").mkdir()
    shutil.copy(SHIPPED / "fly-to-target-cfc-ncp.pt", tmp_path / "r3" / "best.pt")
    assert main(["eval", "--pilot", "./r3/best.pt", "--suites", "summer", "--episodes", "1", "--max-seconds", "0.3",
                 "--workers", "1", "--out", "report"]) == 0
    for spelling, flag in (("r3/best.pt", "--extend"), ("r3//best.pt", "--resume"), ("./r3/best.pt", "--resume")):
        capsys.readouterr()
        assert main(["eval", "--pilot", spelling, "--suites", "summer", "--episodes", "2", "--max-seconds", "0.3",
                     "--workers", "1", "--out", "report", flag]) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert {episode["pilot"] for episode in results["episodes"]} == {"./r3/best.pt"}
    assert len(results["episodes"]) == 2
    assert main(["eval", "--pilot", "r3/best.pt", "--pilot", "r3/best.pt", "--suites", "summer", "--episodes", "2",
                 "--max-seconds", "0.3", "--out", "report", "--resume"]) == 2  # still a different list of pilots
    # From another folder the recorded relative checkpoint is not there: said as such, not as a damaged record.
    capsys.readouterr()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["eval", "--out", str(tmp_path / "report"), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "does not exist" in error and "run it from the folder the work was started in" in error, error
    assert "edited or damaged" not in error and len(error.strip().splitlines()) == 1


def test_recorded_training_folders_are_named_as_they_mean_something_here(tmp_path):
    from navigator.evaluation.seeds import training_seeds

    here = tmp_path / "run" / "dagger" / "round-2"
    here.mkdir(parents=True)
    recorded = [{"task": "fly-to-target", "first": 0, "count": 10, "source": "datasets/summer"},
                {"task": "fly-to-target", "first": 1000000, "count": 4, "source": "/gone/exp/r1/dagger/round-1"},
                {"task": "fly-to-target", "first": 2000000, "count": 4, "source": str(here)},
                {"task": "fly-to-target", "first": 50, "count": 4, "source": "/gone/demos"}]
    sources = [r.source for r in training_seeds({"training_seeds": recorded}).ranges]
    assert sources == ["data in datasets/summer",
                       "DAgger round 1's roll-outs, recorded on the machine it was trained on",
                       f"DAgger round 2's roll-outs in {here}",
                       "data, recorded on the machine it was trained on"]


def test_a_studys_evaluation_moved_while_unfinished_says_so_not_which_pilot_to_give(tmp_path):
    """Within a comparison or learning curve (no flags: given_as None) the pilots are the study's checkpoints,
    named where they were when it started; the user gave no --pilot to drop."""
    from navigator.config import to_dict
    from navigator.evaluation.folder import check_continued
    from navigator.evaluation.settings import EvalSettings
    from navigator.pilots import pretrained_checkpoint
    from navigator.resume import GivenAs

    for folder in ("old", "moved"):  # the checkpoint, where the study was and where it is now
        (tmp_path / folder / "runs" / "mlp-seed0").mkdir(parents=True)
        shutil.copy(pretrained_checkpoint("fly-to-target"), tmp_path / folder / "runs" / "mlp-seed0" / "best.pt")
    before = EvalSettings(pilots=(str(tmp_path / "old/runs/mlp-seed0/best.pt"),))
    now = EvalSettings(pilots=(str(tmp_path / "moved/runs/mlp-seed0/best.pt"),))
    recorded = {"settings": to_dict(before)}
    with pytest.raises(UserError, match=r"moved/runs/mlp-seed0/best.pt; the study was moved or copied while "
                                        r"unfinished .* continue it where it was started"):
        check_continued(tmp_path, recorded, now)
    with pytest.raises(UserError, match=r"continue it with the pilots it was started with \(give no --pilot\)"):
        check_continued(tmp_path, recorded, now, given_as=GivenAs({"pilots": "--pilot"}))


@pytest.mark.parametrize("trained, flown, advised", [
    ((0, 100), range(50, 60), 100),  # after the training seeds
    ((2_147_483_600, 48), range(2_147_483_640, 2_147_483_648), 2_147_483_592),  # at the top: the last free before
    ((0, 10), range(0, 10), 10),
])
def test_the_seed_advised_for_unseen_worlds_is_free_and_valid(trained, flown, advised):
    """A pilot trained on the highest seeds was told to fly from past the largest seed, which --seed then refused:
    the advice is a first seed whose episodes miss every training seed and stay within [0, MAX_SEED]."""
    from navigator.config import MAX_SEED
    from navigator.evaluation.seeds import SeedRange, TrainingSeeds, training_overlap

    seeds = TrainingSeeds((SeedRange("follow", *trained, "demonstrations"),), complete=True)
    said = training_overlap("pilot P", seeds, "follow", flown)
    start = int(said.rsplit("--seed ", 1)[1])
    assert start == advised and start + len(flown) - 1 <= MAX_SEED
    assert training_overlap("pilot P", seeds, "follow", range(start, start + len(flown))) is None


def test_the_report_names_a_bundles_hash_as_its_graphs_not_a_checkpoints():
    """A bundle's recorded sha256 is its policy.onnx's: called a checkpoint's, the bundle of a checkpoint evaluated
    beside it read as a second, different checkpoint."""
    from navigator.evaluation.report import _provenance
    from navigator.evaluation.results import PilotInfo
    from navigator.evaluation.seeds import TrainingSeeds

    seeds = TrainingSeeds((), True)
    assert _provenance(PilotInfo("bundles/b1", "a" * 64, seeds)).startswith("bundle, policy.onnx sha256 aaaaaaaaaaaa")
    assert _provenance(PilotInfo("runs/r/best.pt", "b" * 64, seeds)).startswith("checkpoint sha256 bbbbbbbbbbbb")
    assert _provenance(PilotInfo("pretrained", "c" * 64, seeds)).startswith("checkpoint sha256 cccccccccccc")
