"""`navigator compare`: a tiny comparison end to end (two models, two training seeds, one epoch, two worlds) whose
table, figure and raw JSON agree with the evaluations' results; the table computed from crafted outcomes; an
interrupted comparison reports the runs it has; resuming trains nothing finished, continues an interrupted run and
refuses changed settings; bad configs refused up front."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from navigator.cli import main
from navigator.comparison.config import CompareConfig
from navigator.comparison.runner import Hooks, run_comparison
from navigator.comparison.summary import RunInfo, build_comparison
from navigator.comparison.table import render_table
from navigator.config import load_config
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.groups import checkpoint_recipe
from navigator.evaluation.pipeline import Hooks as EvalHooks
from navigator.json_fields import with_checksum
from navigator.evaluation.results import EvalResults, PilotInfo, build_results
from navigator.evaluation.seeds import SeedRange, TrainingSeeds
from navigator.evaluation.settings import EvalSettings
from navigator.evaluation.stats import seed_bootstrap
from navigator.training import pipeline as training

torch.set_num_threads(1)


def tiny_config(tmp_path, data, models=("cfc-ncp", "mlp"), epochs=1):
    """A comparison config file: four short demonstrations collected by the first run, one tiny epoch per run, two
    worlds of summer cut at one second."""
    path = tmp_path / f"compare-{len(list(tmp_path.glob('compare-*.yaml')))}.yaml"
    path.write_text(
        f"models: [{', '.join(models)}]\n"
        f"seeds: [0, 1]\n"
        f"train:\n"
        f"  data: [{data}]\n"
        f"  epochs: {epochs}\n  batch_size: 4\n  window: 8\n  stride: 8\n  threads: 1\n  cache_mb: 64\n"
        f"  collect: {{parts: [{{task: fly-to-target, preset: summer, episodes: 4}}], max_seconds: 2, workers: 1}}\n"
        f"evaluation: {{suites: [summer], episodes: 2, max_seconds: 1}}\n")
    return path


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A tiny comparison through the command line."""
    root = tmp_path_factory.mktemp("compare")
    config = tiny_config(root, root / "demos")
    out = root / "out"
    assert main(["compare", "--config", str(config), "--out", str(out), "--workers", "1"]) == 0
    return root, config, out


def test_the_comparison_reports_what_the_evaluation_found(compared):
    root, _, out = compared
    document = json.loads((out / "comparison.json").read_text())
    assert [entry["model"] for entry in document["models"]] == ["cfc-ncp", "mlp"]
    assert document["suites"] == ["summer"] and document["world_seeds"] == [100_000, 100_001]
    assert document["missing_runs"] == [] and document["training_seeds"] == [0, 1]
    assert sorted(p.name for p in (out / "eval").iterdir()) == ["cfc-ncp-seed0", "cfc-ncp-seed1", "mlp-seed0",
                                                                 "mlp-seed1"]
    for entry in document["models"]:
        assert [run["seed"] for run in entry["runs"]] == [0, 1]
        rows = []
        for run in entry["runs"]:
            name = f"{entry['model']}-seed{run['seed']}"
            results = EvalResults.from_dict(json.loads((out / "eval" / name / "results.json").read_text()))
            # Every run flew the same worlds, each its own checkpoint.
            assert results.settings.pilots == (str(out / "runs" / name / "best.pt"),) == (run["checkpoint"],)
            assert list(results.settings.seeds) == document["world_seeds"]
            summary = results.summary("summer", run["checkpoint"])
            raw = run["suites"]["summer"]
            assert (raw["successes"], raw["trials"]) == (summary.successes, summary.episodes) == (sum(
                raw["outcomes"]), 2)
            records = [r for r in results.episodes if r.pilot == run["checkpoint"]]
            assert raw["outcomes"] == [r.success for r in records] and raw["endings"] == [r.ending for r in records]
            rows.append(raw["outcomes"])
        mean, low, high = seed_bootstrap(rows)
        assert entry["suites"]["summer"] == pytest.approx({"mean": mean, "low": low, "high": high}, abs=1e-6)
        policy, _ = training.load_trained(out / "runs" / f"{entry['model']}-seed0" / "best.pt")
        assert entry["parameters"] == policy.parameter_counts()
    table = (out / "comparison.md").read_text()
    assert render_table(document) == table and "Unfinished" not in table
    for entry in document["models"]:
        cell = entry["suites"]["summer"]
        assert (f"| {entry['model']} | {entry['parameters']['head']:,} | 0, 1 | {100 * cell['mean']:.0f}% "
                f"[{100 * cell['low']:.0f}–{100 * cell['high']:.0f}] |") in table
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The data was collected once, by the first run, and every run trained on it.
    assert len(json.loads((root / "demos" / "manifest.json").read_text())["episodes"]) == 4
    for name in ("cfc-ncp-seed0", "mlp-seed1"):
        _, metadata = training.load_trained(out / "runs" / name / "best.pt")
        assert metadata["data"] == [str(root / "demos")]
        assert metadata["train_config"]["seed"] == int(name[-1]) and metadata["train_config"]["epochs"] == 1


class Recorder(Hooks):
    """Remembers which runs trained, and how many episodes the evaluation had left to fly."""

    def __init__(self, interrupt_at=None):
        self.trained, self.todo, self.interrupt_at, self.current = [], [], interrupt_at, None
        recorder = self

        class Training(training.Hooks):
            def epoch(self, report):
                recorder.trained.append(recorder.current)
                if recorder.current == recorder.interrupt_at:
                    raise KeyboardInterrupt  # as Ctrl-C right after the run's first checkpoint

        class Evaluation(EvalHooks):
            def start(self, todo, done):
                recorder.todo.append(todo)

        self._training, self._evaluation = Training(), Evaluation()

    def run(self, model, seed, index, total, finished):
        self.current = f"{model}-seed{seed}"

    def training(self):
        return self._training

    def evaluation(self):
        return self._evaluation


def test_resuming_a_finished_comparison_trains_nothing_and_gives_the_same_files(compared):
    _, config_path, out = compared
    before = {name: (out / name).read_bytes() for name in ("comparison.json", "comparison.md")}
    config = load_config(CompareConfig, config_path, {"out": str(out)})
    recorder = Recorder()
    run_comparison(config, resume=True, workers=1, hooks=recorder)
    assert recorder.trained == [] and recorder.todo == []  # each run read from its finished evaluation's results
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_comparison_whose_list_of_finished_runs_was_lost_resumes_without_training_again(compared):
    """Resume took a run whose name finished.json no longer lists for one to continue, and its training refused it
    as finished: the comparison could not go on."""
    _, config_path, out = compared
    kept = {name: (out / name).read_bytes() for name in ("finished.json", "comparison.json")}
    (out / "finished.json").unlink()
    try:
        recorder = Recorder()
        run_comparison(load_config(CompareConfig, config_path, {"out": str(out)}), resume=True, workers=1,
                       hooks=recorder)
        assert recorder.trained == []
        assert (out / "comparison.json").read_bytes() == kept["comparison.json"]
        assert json.loads((out / "finished.json").read_text())["runs"] == json.loads(kept["finished.json"])["runs"]
    finally:
        for name, content in kept.items():
            (out / name).write_bytes(content)


def test_a_comparison_that_lost_a_record_says_how_to_go_on(compared, capsys):
    """Each advice led nowhere: an evaluation folder without eval.json was "not empty: pass --resume" (given), a
    folder without compare.json was to be resumed with --config (refused for the same missing record)."""
    _, config_path, out = compared
    records = [out / "finished.json", out / "eval" / "cfc-ncp-seed0" / "eval.json"]  # the first run evaluated anew
    kept = {record: record.read_bytes() for record in records}
    for record in records:
        record.unlink()
    try:
        assert main(["compare", "--config", str(config_path), "--out", str(out), "--resume", "--workers", "1"]) == 2
        error = " ".join(capsys.readouterr().err.split())
        assert f"remove {records[1].parent} and resume: the run is evaluated again" in error, error
    finally:
        for record, content in kept.items():
            record.write_bytes(content)
    record = out / "compare.json"
    kept = record.read_bytes()
    record.unlink()
    try:
        assert main(["compare", "--out", str(out), "--resume"]) == 2
        error = " ".join(capsys.readouterr().err.split())
        assert "cannot be continued" in error and "start it over in another --out" in error
        assert "give --config" not in error, error
    finally:
        record.write_bytes(kept)


def test_resume_without_config_takes_the_recorded_settings(compared, tmp_path, capsys, monkeypatch):
    _, _, out = compared
    before = {name: (out / name).read_bytes() for name in ("comparison.json", "comparison.md")}
    assert main(["compare", "--out", str(out), "--resume", "--workers", "1"]) == 0
    assert "finished before" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in before} == before
    # --out spelt another way (relative, from its parent) is the same comparison: its runs' pilots as recorded
    monkeypatch.chdir(out.parent)
    assert main(["compare", "--out", f"./{out.name}", "--resume", "--workers", "1"]) == 0
    assert "finished before" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in before} == before
    monkeypatch.chdir(tmp_path)
    for args, message in ((["--out", str(tmp_path)], "give --config, a comparison config such as"),
                          (["--out", str(tmp_path), "--resume"], f"--resume: {tmp_path} holds no readable comparison "
                                                                  f"record (compare.json)")):
        assert main(["compare", *args]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1


def test_a_finished_comparison_copied_elsewhere_resumes_without_its_data_or_evaluating_again(compared, tmp_path,
                                                                                               capsys):
    """Its runs' evaluations name the checkpoints where they were (the original folder): a finished comparison is
    reported again from what it recorded, so neither those paths nor the demonstrations are needed."""
    root, _, out = compared
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {name: (copy / name).read_bytes() for name in ("comparison.json", "comparison.md")}
    hidden = root / "demos-hidden"
    (root / "demos").rename(hidden)
    try:
        assert main(["compare", "--out", str(copy), "--resume", "--workers", "1"]) == 0
    finally:
        hidden.rename(root / "demos")
    assert capsys.readouterr().out.count("finished before") == 4
    assert {name: (copy / name).read_bytes() for name in before} == before


def test_a_comparison_resumed_from_its_record_alone_trains_with_the_threads_it_was_started_with(compared, tmp_path,
                                                                                                capsys):
    """The thread count changes the rounding of a training's float sums: compare.json keeps the resources beside the
    settings it compares, and a resume with --out alone trains the runs still to do as the uninterrupted comparison
    did, bit for bit (it trained them with the default 2 threads instead of the recipe's 1)."""
    from policies.checkpoint import load_checkpoint

    _, _, out = compared
    assert json.loads((out / "compare.json").read_text())["resources"] == {"threads": 1, "cache_mb": 64}
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for undone in (copy / "runs" / "mlp-seed1", copy / "eval" / "mlp-seed1"):  # as if interrupted before it
        shutil.rmtree(undone)
    finished = json.loads((copy / "finished.json").read_text())
    finished["runs"].remove("mlp-seed1")
    (copy / "finished.json").write_text(json.dumps(finished))
    assert main(["compare", "--out", str(copy), "--resume", "--workers", "1"]) == 0
    assert capsys.readouterr().out.count("finished before") == 3
    assert json.loads((copy / "runs" / "mlp-seed1" / "run.json").read_text())["config"]["threads"] == 1
    weights = [load_checkpoint(folder / "runs" / "mlp-seed1" / "best.pt")[0].state_dict() for folder in (out, copy)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


@pytest.mark.parametrize("config", [False, True])
def test_a_damaged_comparison_record_is_said_as_such(compared, tmp_path, capsys, monkeypatch, config):
    monkeypatch.setenv("COLUMNS", "1000")
    _, config_path, _ = compared
    out = tmp_path / "out"
    out.mkdir()
    (out / "compare.json").write_text('{"format": "liquid-navigator/comparison-run", "version": 1}')
    assert main(["compare", "--out", str(out), "--resume", *(["--config", str(config_path)] if config else [])]) == 2
    error = capsys.readouterr().err
    assert f"{out / 'compare.json'}" in error and "(it is damaged); start the comparison over in another --out" in error
    # the learning curve is a study of the same kind
    (out / "adapt-curve.json").write_text('{"format": "liquid-navigator/adapt-curve-run", "version": 1}')
    assert main(["adapt", "curve", "--out", str(out), "--resume"]) == 2
    assert "adapt-curve.json" in (error := capsys.readouterr().err) and "(it is damaged)" in error


def test_a_comparison_recorded_before_newer_settings_resumes(compared):
    # compare.json of a comparison started before `--attention` (or the training's `device`, or the collection's
    # `dart_near_target`) existed lacks its settings: their defaults are what it flew and trained with, so resuming
    # it is resuming the same comparison.
    # Where roll-outs run (`backend`, added with Ray) is a resource, like the number of workers, and is not recorded
    # at all.
    from navigator.evaluation.folder import ADDED_SETTINGS
    from navigator.training.config import ADDED_SETTINGS as ADDED_TRAINING_SETTINGS

    _, config_path, out = compared
    current = (out / "compare.json").read_text()
    record = json.loads(current)
    record["settings"]["evaluation"] = {name: value for name, value in record["settings"]["evaluation"].items()
                                        if name not in ADDED_SETTINGS}
    for dotted in ADDED_TRAINING_SETTINGS:  # "device", "collect.dart_near_target": each removed where it is
        *sections, name = dotted.split(".")
        node = record["settings"]["base"]
        for section in sections:
            node = node[section]
        del node[name]
    assert "backend" not in record["settings"]["base"] and "backend" not in record["settings"]["base"]["collect"]
    del record["sha256"]  # nor did it carry a checksum (version 1)
    record["version"] = 1
    (out / "compare.json").write_text(json.dumps(record))
    recorder = Recorder()
    try:
        run_comparison(load_config(CompareConfig, config_path, {"out": str(out)}), resume=True, workers=1,
                       hooks=recorder)
    finally:
        (out / "compare.json").write_text(current)
    assert recorder.trained == []


@pytest.mark.parametrize("old, new, named", [("epochs: 1", "epochs: 2", "train.epochs"),
                                             ("models: [cfc-ncp, mlp]", "models: [cfc-ncp, lstm]", "models[1]")])
def test_resuming_with_changed_settings_is_refused_before_any_work(compared, tmp_path, capsys, old, new, named):
    _, config_path, out = compared
    changed = tmp_path / "changed.yaml"
    changed.write_text(config_path.read_text().replace(old, new))
    listing = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["compare", "--config", str(changed), "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{named}: compare.json has" in error and "other settings" in error and len(error.strip().splitlines()) == 1
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == listing


def test_an_interrupted_comparison_resumes_without_training_again_what_finished(compared, tmp_path):
    root, config_path, _ = compared
    out = tmp_path / "out"
    config = load_config(CompareConfig, config_path, {"out": str(out)})  # the same data, already collected
    with pytest.raises(KeyboardInterrupt):
        run_comparison(config, resume=False, workers=1, hooks=Recorder(interrupt_at="cfc-ncp-seed1"))
    # Seed by seed: every model's first seed was trained and evaluated before the interruption, and reported.
    assert (out / "runs" / "cfc-ncp-seed1" / "run.json").is_file() and not (out / "runs" / "mlp-seed1").exists()
    partial = json.loads((out / "comparison.json").read_text())
    assert [(entry["model"], [run["seed"] for run in entry["runs"]]) for entry in partial["models"]] == [
        ("cfc-ncp", [0]), ("mlp", [0])]
    assert partial["missing_runs"] == ["cfc-ncp-seed1", "mlp-seed1"] and partial["training_seeds"] == [0]
    for entry in partial["models"]:  # one seed: the interval spans the worlds alone
        outcomes = entry["runs"][0]["suites"]["summer"]["outcomes"]
        assert entry["suites"]["summer"] == pytest.approx(dict(zip(("mean", "low", "high"),
                                                                   seed_bootstrap([outcomes]))), abs=1e-6)
    assert "**Unfinished:** 2 runs not evaluated yet (cfc-ncp-seed1, mlp-seed1)" in (
        out / "comparison.md").read_text()
    recorder = Recorder()
    document = run_comparison(config, resume=True, workers=1, hooks=recorder)
    # cfc-ncp-seed0 and mlp-seed0 finished before; cfc-ncp-seed1 had finished its only epoch: nothing left there.
    assert recorder.trained == ["mlp-seed1"]
    # Same seeds, same recipe, same data: the same checkpoints and outcomes as the uninterrupted comparison.
    first = json.loads((root / "out" / "comparison.json").read_text())
    strip = [{**entry, "runs": [{**run, "checkpoint": None} for run in entry["runs"]]} for entry in first["models"]]
    assert [{**entry, "runs": [{**run, "checkpoint": None} for run in entry["runs"]]}
            for entry in document["models"]] == strip


@pytest.fixture(scope="module")
def committed(compared, tmp_path_factory):
    """A comparison interrupted while mlp-seed1 trained, as a clone of its committed report has it: .gitignore keeps
    runs/, the evaluations' episodes/ and the datasets out. Returns (root, config, out, finished runs)."""
    root, _, _ = compared
    here = tmp_path_factory.mktemp("committed")
    shutil.copytree(root / "demos", here / "demos")
    config_path, out = tiny_config(here, here / "demos"), here / "out"
    with pytest.raises(KeyboardInterrupt):
        run_comparison(load_config(CompareConfig, config_path, {"out": str(out)}), resume=False, workers=1,
                       hooks=Recorder(interrupt_at="mlp-seed1"))
    shutil.rmtree(out / "runs")
    for episodes in (out / "eval").glob("*/episodes"):
        shutil.rmtree(episodes)
    shutil.rmtree(here / "demos")
    return here, config_path, out, json.loads((out / "finished.json").read_text())["runs"]


def test_a_comparison_kept_without_its_runs_resumes_from_its_report(compared, committed, tmp_path, capsys,
                                                                     monkeypatch):
    # A finished run is read from what the report keeps (comparison.json, eval/RUN/results.json): only the runs
    # that did not finish train, and the recipe's demonstrations are collected again. A comparison recorded before
    # finished.json kept the data's fingerprint (legacy) lost it with runs/: it says so and records the data the
    # rest trains on.
    monkeypatch.setenv("COLUMNS", "1000")
    root, _, _ = compared
    here, config_path, kept, finished = committed
    assert finished == ["cfc-ncp-seed0", "mlp-seed0", "cfc-ncp-seed1"]
    first = json.loads((root / "out" / "comparison.json").read_text())
    for legacy in (False, True):
        out = tmp_path / f"legacy-{legacy}"
        shutil.copytree(kept, out)
        if legacy:
            (out / "finished.json").write_text(json.dumps({"runs": finished}))
            # and its collection was interrupted: the manifest lists the first 2 of the recipe's 4 episodes
            manifest = json.loads((here / "demos" / "manifest.json").read_text())
            for entry in manifest["episodes"][2:]:
                (here / "demos" / "episodes" / entry["file"]).unlink()
            manifest["episodes"] = manifest["episodes"][:2]
            del manifest["sha256"]  # written by the collection as it was then: with its own checksum
            (here / "demos" / "manifest.json").write_text(json.dumps(with_checksum(manifest)))
        else:
            shutil.rmtree(here / "demos", ignore_errors=True)  # as the clone has it
        capsys.readouterr()
        assert main(["compare", "--config", str(config_path), "--out", str(out), "--resume", "--workers", "1"]) == 0
        output = capsys.readouterr()
        shown = output.out
        assert [line.split(" (")[0] for line in shown.splitlines() if "finished before" in line] == [
            "cfc-ncp seed 0", "mlp seed 0", "cfc-ncp seed 1"]
        assert ("does not record the data the 3 finished runs trained on" in output.err) == legacy  # a warning
        assert f"collect: {here / 'demos'} (4 episodes)" in shown
        recorded = json.loads((out / "finished.json").read_text())
        assert recorded["data"] == {str(here / "demos"): training.dataset_fingerprint(root / "demos")}
        assert recorded.get("data_recorded_after") == (finished if legacy else None)
        # The same outcomes as the comparison that was never interrupted.
        document = json.loads((out / "comparison.json").read_text())
        assert document["missing_runs"] == [] and [
            [{**run, "checkpoint": None} for run in entry["runs"]] for entry in document["models"]] == [
            [{**run, "checkpoint": None} for run in entry["runs"]] for entry in first["models"]]


@pytest.mark.parametrize("lost, message", [
    ("eval/mlp-seed0/results.json", "OUT/runs/mlp-seed0/best.pt is missing and OUT/eval/mlp-seed0/results.json "
                                    "is not the comparison's finished evaluation of it"),
    ("comparison.json", "OUT/runs/cfc-ncp-seed0/best.pt is missing and OUT/comparison.json does not report "
                        "cfc-ncp-seed0"),
    ("comparison.json:damaged", "--resume: OUT/comparison.json cannot be read (")])
def test_a_finished_run_neither_kept_nor_reported_is_refused_before_any_work(committed, tmp_path, capsys,
                                                                               monkeypatch, lost, message):
    monkeypatch.setenv("COLUMNS", "1000")
    _, config_path, kept, _ = committed
    out = tmp_path / "out"
    shutil.copytree(kept, out)
    lost, _, how = lost.partition(":")
    if how == "damaged":
        (out / lost).write_text('{"format": 1')
    else:
        (out / lost).unlink()
    listing = sorted(p.relative_to(out) for p in out.rglob("*"))
    capsys.readouterr()
    assert main(["compare", "--config", str(config_path), "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert message.replace("OUT", str(out)) in error and "restore " in error
    assert len(error.strip().splitlines()) == 1
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == listing


def test_a_shared_dataset_that_changed_after_a_run_trained_on_it_is_refused_before_any_work(compared, tmp_path,
                                                                                           capsys):
    root, _, _ = compared
    shutil.copytree(root / "demos", tmp_path / "demos")
    config_path, out = tiny_config(tmp_path, tmp_path / "demos"), tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_comparison(load_config(CompareConfig, config_path, {"out": str(out)}), resume=False, workers=1,
                       hooks=Recorder(interrupt_at="mlp-seed0"))
    recorded = json.loads((out / "finished.json").read_text())
    assert recorded["runs"] == ["cfc-ncp-seed0"]
    assert recorded["data"] == {str(tmp_path / "demos"): training.dataset_fingerprint(tmp_path / "demos")}
    # The user grows the dataset the first run trained on: the next run would train on other demonstrations.
    assert main(["collect", "--out", str(tmp_path / "demos"), "--episodes", "5", "--extend"]) == 0
    capsys.readouterr()
    # As if interrupted while the finished run was evaluated: its evaluation is not flown before the refusal.
    shutil.rmtree(out / "eval" / "cfc-ncp-seed0")
    listing = sorted(p.relative_to(out) for p in out.rglob("*"))
    for legacy in (False, True):
        if legacy:  # recorded before finished.json kept the data: the first finished run's run.json tells it
            (out / "finished.json").write_text(json.dumps({"runs": recorded["runs"]}))
        assert main(["compare", "--config", str(config_path), "--out", str(out), "--resume"]) == 2
        error = capsys.readouterr().err
        assert (f"{tmp_path / 'demos'} changed since the comparison in {out} trained 1 run on it (5 episodes "
                f"now, 4 then): every run must train on the same data") in error
        assert len(error.strip().splitlines()) == 1
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == listing


def test_a_recipe_that_would_collect_into_another_dataset_leaves_no_comparison_folder(compared, tmp_path, capsys):
    root, _, _ = compared  # root/demos: 4 episodes of 2 s; this config's collect section asks for 6
    config = tiny_config(tmp_path, root / "demos")
    config.write_text(config.read_text().replace("episodes: 4}]", "episodes: 6}]"))
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "collect.parts[0].episodes: the dataset has 4, the recipe has 6" in error and "--data" not in error
    assert not (tmp_path / "out").exists()  # so the corrected config runs without --resume


def test_a_new_comparison_refuses_a_folder_that_is_not_empty(compared, tmp_path, capsys):
    root, config_path, _ = compared
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["compare", "--config", str(config_path), "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"
    assert main(["compare", "--config", str(config_path), "--out", str(root / "demos"), "--resume"]) == 2
    assert "holds a dataset" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("models: [cfc-ncp, transformer]", "models in COMPARE: unknown model 'transformer'"),
    ("models: [cfc-ncp, mlp, mlp]", "models in COMPARE: mlp given more than once"),
    ("seeds: [0]", "seeds in COMPARE must list at least two training seeds"),
    ("seeds: []", "seeds in COMPARE must list at least two training seeds"),
    ("models: [lstm, mlp]", "reference (not set in COMPARE: its default): cfc-ncp is not one of the models"),
    ("train: {epochs: 0}", "train.epochs must be in [1, 100000], got 0"),
    ("train: {model: lstm}", "the comparison sets per run"),
    ("recipe: launch/train/missing.yaml", "recipe in COMPARE: launch/train/missing.yaml is not a file (a relative "
                                          "path is read from the current folder, "),
    ("evaluation: {pilots: [expert]}", "evaluation.pilots in COMPARE must not be given"),
    ("evaluation: {suites: [summer, moon]}", "unknown preset 'moon'"),
    ("colour: red", "unknown setting colour"),
    # Settings under train: are named as written there, not blamed on the recipe file.
    ("train: {epochz: 1}", "COMPARE: train.epochz is not a setting; valid settings are augment, "),
    ("train: {dagger: {roundz: 1}}", "COMPARE: train.dagger.roundz is not a setting; valid settings here are "
                                     "episodes, epochs, rounds"),
    ("recipe: null\ntrain: {epochs: 1}", "COMPARE: train.data: no training data: name the dataset folders"),
    # A null under train: goes into the recipe's settings; its problem is still the comparison's, not the file's.
    ("train: {dagger: null}", "train.dagger in COMPARE must be a mapping, got null"),
    # The worlds the runs train on (demonstration seeds 0-1 here; DAgger round 1 from 1000000) are refused before
    # any training, not found in every checkpoint hours later.
    ("evaluation: {seed: 1}", "each run of the recipe (in COMPARE) was trained on fly-to-target seeds 0-1 "
                              "(demonstrations), and this evaluation would fly seed 1 of them: fly worlds "
                              "it has not seen, e.g. evaluation.seed in COMPARE: 2"),
    ("train: {dagger: {rounds: 1, episodes: 3}}\nevaluation: {seed: 1000002}", "seed 1000002 of them"),
])
def test_bad_configs_are_refused_with_one_line_before_any_work(tmp_path, capsys, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{tmp_path / 'demos'}]\ncollect: {{parts: [{{episodes: 2}}]}}\n")
    config = tmp_path / "compare.yaml"
    config.write_text(("" if text.startswith("recipe:") else f"recipe: {recipe}\n") + text + "\n")
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message.replace("COMPARE", str(config)) in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "demos").exists()


def test_the_shipped_config_is_the_full_comparison():
    config = load_config(CompareConfig, "launch/compare/fly_to_target.yaml")
    assert config.models == ("cfc-ncp", "cfc", "ltc-ncp", "lstm", "gru", "mlp") and config.seeds == (0, 1, 2)
    assert config.evaluation.suites == ("summer", "autumn", "winter", "night", "wind", "range")
    assert config.evaluation.episodes == 40
    shipped = load_config(training.TrainConfig, "launch/train/fly_to_target_200_dagger.yaml")  # as measured
    assert config.run_config("lstm", 2) == dataclasses.replace(shipped, model="lstm", seed=2,
                                                               out="reports/comparison/runs/lstm-seed2")


def _record(pilot, suite, seed, success):
    return EpisodeRecord(pilot=pilot, suite=suite, seed=seed, ending="success" if success else "timeout",
                         success=success, steps=30, time=1.0, path_length=2.0, final_distance=0.5,
                         start=(0.0, 0.0, 1.0), target=(4.0, 0.0, 1.0), path_xy=((0.0, 0.0),))


def test_the_table_is_computed_from_the_outcomes(tmp_path):
    """Crafted outcomes: in summer cfc-ncp wins every world and mlp none; at night mlp wins more than cfc-ncp, with
    overlapping intervals."""
    specs = {}
    for model in ("cfc-ncp", "mlp"):
        for seed in (0, 1):
            path = tmp_path / f"{model}-{seed}.pt"
            path.write_bytes(b"not read")
            specs[model, seed] = str(path)
    settings = EvalSettings(pilots=tuple(specs.values()), suites=("summer", "night"), episodes=5, seed=100_000)
    wins = {("cfc-ncp", "summer"): [5, 5], ("mlp", "summer"): [0, 0], ("cfc-ncp", "night"): [2, 1],
            ("mlp", "night"): [3, 2]}
    records = [_record(spec, suite, world, world - settings.seed < wins[model, suite][seed])
               for suite in settings.suites for (model, seed), spec in specs.items() for world in settings.seeds]
    seeds = TrainingSeeds((SeedRange(None, 0, 4, "demonstrations"),), True)
    pilots = tuple(PilotInfo(spec, "0" * 64, seeds, checkpoint_recipe({"train_config": {
        "model": model, "seed": seed, "out": f"runs/{model}-{seed}", "epochs": 1}})) for (model, seed), spec in
        specs.items())
    results = build_results(settings, pilots, records)
    runs = [RunInfo(model, seed, spec, {"cnn": 10, "head": 1234 if model == "mlp" else 20_000, "total": 0}, 0.1)
            for (model, seed), spec in specs.items()]
    document = build_comparison(results, runs, "cfc-ncp", {"epochs": 1})
    table = render_table(document)
    # Every summer outcome alike: the intervals are the pooled Wilson interval of 10 worlds, not a single point.
    assert "| cfc-ncp | 20,000 | 0, 1 | 100% [72–100] |" in table and "| mlp | 1,234 | 0, 1 | 0% [0–28] |" in table
    night = {model: seed_bootstrap([[world - settings.seed < wins[model, "night"][seed] for world in settings.seeds]
                                    for seed in (0, 1)]) for model in ("cfc-ncp", "mlp")}
    assert night["cfc-ncp"][0] == pytest.approx(0.3) and night["mlp"][0] == pytest.approx(0.5)
    for model, (mean, low, high) in night.items():
        assert f"{100 * mean:.0f}% [{100 * low:.0f}–{100 * high:.0f}] |\n" in table
    assert document["above_reference"] == [{"model": "mlp", "suite": "night", "mean": 0.5, "reference_mean": 0.3,
                                             "overlap": True}]
    assert "- night: mlp's mean success (50%) is higher than cfc-ncp's (30%); the intervals overlap" in table
    assert "summer: mlp" not in table
    calm = {**document, "above_reference": []}
    assert "No baseline has a higher mean success than cfc-ncp in any suite." in render_table(calm)
    # Before the reference's first run is evaluated, nothing is compared with it.
    early = build_comparison(results, [run for run in runs if run.model == "mlp"], "cfc-ncp", {"epochs": 1},
                             ["cfc-ncp-seed0", "cfc-ncp-seed1"])
    assert early["above_reference"] == [] and "cfc-ncp, the reference, has no evaluated run yet." in render_table(
        early)
    alone = build_comparison(results, [run for run in runs if run.model == "cfc-ncp"], "cfc-ncp", {"epochs": 1},
                             ["mlp-seed0", "mlp-seed1"])
    assert "No baseline has an evaluated run yet." in render_table(alone) and "No baseline has a higher" not in \
        render_table(alone)


def test_worlds_of_a_dataset_read_as_it_is_are_refused_before_any_work(compared, tmp_path, capsys):
    """A recipe without `collect` trains on datasets as they are: their recorded seeds count too."""
    root, _, _ = compared
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{root / 'demos'}]\n")
    config = tmp_path / "compare.yaml"
    config.write_text(f"recipe: {recipe}\nevaluation: {{seed: 3}}\n")
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"was trained on fly-to-target seeds 0-3 (data in {root / 'demos'}), and this evaluation would fly seed 3" \
           in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("pilots", [1, 3, 6])
def test_evaluation_plots_of_many_long_named_pilots_lay_out_without_warnings(tmp_path, pilots):
    # The comparison and a learning curve evaluate many checkpoints at once, with long run names: their legends
    # must fit the figure (matplotlib warns "Tight layout not applied" otherwise).
    import warnings

    from navigator.evaluation.plots import plot_distance, plot_success

    specs = tuple(str(tmp_path / f"night-20-freeze-cnn-seed{index}" / "best.pt") for index in range(pilots))
    for spec in specs:
        Path(spec).parent.mkdir()
        Path(spec).write_bytes(b"not read")
    settings = EvalSettings(pilots=specs, suites=("night", "summer"), episodes=3, seed=100_000)
    records = [_record(spec, suite, world, world % 2 == 0) for suite in settings.suites for spec in specs
               for world in settings.seeds]
    seeds = TrainingSeeds((SeedRange(None, 0, 4, "demonstrations"),), True)
    results = build_results(settings, tuple(PilotInfo(spec, "0" * 64, seeds, None) for spec in specs), records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_success(results, tmp_path / "success.png")
        plot_distance(results, tmp_path / "distance.png")
    assert (tmp_path / "success.png").read_bytes()[:4] == (tmp_path / "distance.png").read_bytes()[:4] == b"\x89PNG"
