"""`navigator adapt`: the shipped policy adapted on a couple of short real demonstrations by each strategy; the CNN of
freeze-cnn bit-identical; replay batches holding both datasets in the ratio; the L2 anchor's penalty; strict resume;
the lineage an adapted checkpoint records and the seeds `navigator eval` then refuses; DAgger rounds flown in the
new scenery, their seeds recorded, the CNN still frozen, resumed strictly; bad input refused before any work; and the
learning curve end to end, its forgetting figure from a real closed-loop evaluation."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from navigator.adapt.config import AdaptConfig
from navigator.adapt.curve_config import CurveConfig
from navigator.adapt.curve_report import AdaptedRun, build_curve, render_curve
from navigator.adapt.run import adapt, prepare
from navigator.adapt.strategies import Strategy, replay_count
from navigator.cli import main
from navigator.json_fields import with_checksum, without_checksum
from navigator.config import SettingError
from navigator.dataset import file_sha256, read_manifest
from navigator.dataset.synthetic import synthetic_episode
from navigator.dataset.writer import DatasetWriter
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.groups import checkpoint_recipe
from navigator.evaluation.results import PilotInfo, build_results
from navigator.evaluation.seeds import TrainingSeeds, training_seeds
from navigator.evaluation.settings import EvalSettings
from navigator.evaluation.stats import seed_bootstrap
from navigator.pilots import pretrained_checkpoint
from navigator.training.config import DAGGER_SEED_STRIDE, DaggerConfig
from navigator.training.loop import make_loader
from navigator.training.pipeline import Hooks, dagger_collect_config
from policies.checkpoint import load_checkpoint

torch.set_num_threads(1)
FAST = ["--epochs", "1", "--batch-size", "2"]


def collect(out, *args):
    assert main(["collect", "--out", str(out), "--workers", "1", *args]) == 0
    return out


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Two one-second night demonstrations, recorded with the shipped policy's camera and airframe."""
    return collect(tmp_path_factory.mktemp("adapt") / "night", "--preset", "night", "--episodes", "2",
                   "--max-seconds", "1", "--seed", "20000")


@pytest.fixture(scope="module")
def night_later(tmp_path_factory):
    """Two more night demonstrations, on worlds `finetuned` was not adapted on."""
    return collect(tmp_path_factory.mktemp("adapt") / "night-later", "--preset", "night", "--episodes", "2",
                   "--max-seconds", "1", "--seed", "20010")


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    """Old (summer) demonstrations to replay: three one-second episodes."""
    return collect(tmp_path_factory.mktemp("adapt") / "old", "--episodes", "3", "--max-seconds", "1", "--seed",
                   "30000")


@pytest.fixture(scope="module")
def finetuned(night, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapt") / "finetuned"
    assert main(["adapt", "--data", str(night), "--out", str(out), *FAST]) == 0
    return out / "best.pt"


def test_new_data_on_worlds_the_policy_was_trained_on_is_refused(finetuned, night, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    run = tmp_path / "same"
    spelt = tmp_path / "link"
    spelt.symlink_to(night)  # however it is spelt
    for data in (night, spelt):
        assert main(["adapt", "--data", str(data), "--pilot", str(finetuned), "--out", str(run)]) == 2
        error = capsys.readouterr().err
        assert (f"--data {data} flies fly-to-target world seeds 20000-20001, which {finetuned} was trained on "
                f"(data in {night}") in error
        assert "teaches it worlds it knows" in error and not run.exists()
    # The shipped policy's own training worlds, in a dataset of the user's: the same refusal.
    summer = collect(tmp_path / "summer", "--episodes", "1", "--max-seconds", "0.5", "--seed", "1")
    assert main(["adapt", "--data", str(summer), "--out", str(run)]) == 2
    error = capsys.readouterr().err
    assert f"--data {summer} flies fly-to-target world seed 1, which pretrained" in error and not run.exists()


def test_adapting_a_checkpoint_refuses_task_and_measures_against_that_checkpoint(finetuned, night_later, tmp_path,
                                                                                 capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # the hint on one line, however long the paths
    run = tmp_path / "again"
    night = night_later
    assert main(["adapt", "--data", str(night), "--pilot", str(finetuned), "--task", "hike", "--out", str(run)]) == 2
    assert "--task only picks whose shipped policy pretrained is" in capsys.readouterr().err and not run.exists()
    assert main(["adapt", "--data", str(night), "--pilot", str(finetuned), "--out", str(run), *FAST]) == 0
    hint = " ".join(capsys.readouterr().out.split())
    assert f"navigator eval --pilot {finetuned} --pilot {run / 'best.pt'} --suites night,summer" in hint


def test_an_adapted_policy_records_its_lineage_and_eval_refuses_every_seed_it_learnt_from(finetuned, night, tmp_path,
                                                                                          capsys):
    start = pretrained_checkpoint("fly-to-target")
    _, base = load_checkpoint(start)
    _, metadata = load_checkpoint(finetuned)
    lineage = metadata["adapted_from"]
    assert lineage["checkpoint"] == str(start) and lineage["sha256"] == file_sha256(start)
    assert lineage["strategy"] == "finetune" and lineage["start_training_seeds"] == base["training_seeds"]
    assert lineage["new_data"] == [{"task": "fly-to-target", "first": 20000, "count": 2, "source": str(night)}]
    assert metadata["training_seeds"] == lineage["new_data"] + base["training_seeds"]
    assert metadata["train_config"]["adapt"]["strategy"] == "finetune"
    assert metadata["camera"] == base["camera"] and metadata["airframe"] == base["airframe"]
    for seed, why in (("20001", "seeds 20000-20001"), ("150", "seeds 0-599")):
        assert main(["eval", "--pilot", str(finetuned), "--suites", "night", "--episodes", "1", "--seed", seed,
                     "--out", str(tmp_path / f"eval-{seed}")]) == 2
        assert why in capsys.readouterr().err
        assert not (tmp_path / f"eval-{seed}").exists()


def test_freeze_cnn_keeps_the_cnn_bit_identical_and_trains_the_head(night, tmp_path, capsys):
    assert main(["adapt", "--data", str(night), "--strategy", "freeze-cnn", "--out", str(tmp_path / "frozen"),
                 *FAST]) == 0
    assert "--suites night,summer --out" in capsys.readouterr().out  # the hint names the new data's scenery
    before = load_checkpoint(pretrained_checkpoint("fly-to-target"))[0].state_dict()
    after = load_checkpoint(tmp_path / "frozen" / "best.pt")[0].state_dict()
    cnn = [name for name in before if name.startswith("encoder.")]
    assert cnn and all(torch.equal(before[name], after[name]) for name in cnn)
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith("head."))


@pytest.mark.parametrize("strategy", ["finetune", "freeze-cnn"])
def test_a_weight_mix_saves_the_start_plus_that_share_of_the_trained_change(night, tmp_path, capsys, strategy):
    """WiSE-FT: best.pt holds start + mix * (trained - start), trained being the weights last.pt resumes from (one
    epoch: the best one); a frozen CNN stays bit-identical; the lineage and the run's recipe record the mix, and a
    resume with another mix is refused."""
    out = tmp_path / "mixed"
    assert main(["adapt", "--data", str(night), "--strategy", strategy, "--weight-mix", "0.25", "--out", str(out),
                 *FAST]) == 0
    assert "of the trained weights; best.pt keeps 0.25 of their change from the start" in " ".join(
        capsys.readouterr().out.split())
    start = load_checkpoint(pretrained_checkpoint("fly-to-target"))[0].state_dict()
    trained = torch.load(out / "last.pt", weights_only=True)["policy"]
    saved, metadata = load_checkpoint(out / "best.pt")
    saved = saved.state_dict()
    parameters = {name for name, _ in load_checkpoint(out / "best.pt")[0].named_parameters()}
    moved = [name for name in parameters if not torch.equal(start[name], trained[name])]
    assert moved
    for name in parameters:
        torch.testing.assert_close(saved[name], start[name] + 0.25 * (trained[name] - start[name]), rtol=0, atol=1e-7)
    if strategy == "freeze-cnn":
        assert all(torch.equal(saved[name], start[name]) for name in parameters if name.startswith("encoder."))
    assert metadata["adapted_from"]["weight_mix"] == 0.25
    assert metadata["train_config"]["adapt"]["weight_mix"] == 0.25
    assert main(["adapt", "--out", str(out), "--resume", "--weight-mix", "0.5"]) == 2
    assert "--weight-mix: run has 0.25, you gave 0.5" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", [0.5, 0.25])
def test_replay_batches_hold_the_new_batch_and_old_windows_in_the_ratio(night, old, fraction):
    recipe = prepare(AdaptConfig(data=(str(night),), strategy="replay", replay=(str(old),), replay_fraction=fraction,
                                 batch_size=3, out="unused"))
    recipe = dataclasses.replace(recipe, window=8, stride=8)
    strategy = Strategy(recipe)
    loader = make_loader(recipe, recipe.data)
    old_states = [strategy.replay_loader().datasets[0].read_arrays(e, ["state"])["state"]
                  for e in strategy.replay_loader().datasets[0].entries]
    plain = list(loader.batches("train", recipe.batch_size, shuffle=True, seed=recipe.seed, epoch=0))
    mixed = list(strategy.batches(loader, recipe, 0))
    assert len(mixed) == len(plain) > 1 and len(mixed[0]) > len(plain[0])
    for new, batch in zip(plain, mixed):
        extra = replay_count(len(new), fraction)
        assert len(batch) == len(new) + extra
        assert np.array_equal(batch.images[:len(new)], new.images) and np.array_equal(batch.state[:len(new)],
                                                                                       new.state)
        for row in range(len(new), len(batch)):  # each added window is a window of an old episode
            states = batch.state[row][batch.mask[row]]
            assert any(any(np.array_equal(episode[start:start + len(states)], states)
                           for start in range(len(episode))) for episode in old_states)
        assert abs(extra / len(batch) - fraction) <= 0.5 / len(batch)


def test_the_l2_anchor_adds_its_weight_times_the_mean_squared_change(night):
    recipe = prepare(AdaptConfig(data=(str(night),), strategy="l2-anchor", anchor=3.0, out="unused"))
    strategy = Strategy(recipe)
    policy = strategy.policy(recipe, None, {})
    imitation = torch.tensor(0.25)
    assert float(strategy.loss(policy, imitation).detach()) == 0.25
    count = sum(weight.numel() for weight in policy.parameters())
    with torch.no_grad():
        next(policy.parameters()).add_(0.1)
    changed = next(policy.parameters()).numel()
    expected = 0.25 + 3.0 * changed * 0.01 / count
    assert float(strategy.loss(policy, imitation).detach()) == pytest.approx(expected, rel=1e-4)


class Interrupt(Hooks):
    def epoch(self, report):
        if report.epoch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_adaptation_resumes_to_the_same_policy_and_refuses_changed_settings(night, tmp_path, capsys,
                                                                                           monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # the hint on one line, as long as its paths are
    settings = {"data": (str(night),), "strategy": "l2-anchor", "epochs": 2, "batch_size": 2}
    whole = adapt(AdaptConfig(**settings, out=str(tmp_path / "whole")), False)
    config = AdaptConfig(**settings, out=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        adapt(config, False, Interrupt())
    out = str(tmp_path / "cut")
    assert main(["adapt", "--out", out, "--resume", "--strategy", "finetune"]) == 2
    assert "strategy: run has 'l2-anchor', you gave 'finetune'" in capsys.readouterr().err
    assert main(["adapt", "--out", out, "--resume"]) == 0
    # The run recorded the shipped policy's path; the hint names it as the user would type it.
    assert f"measure it: navigator eval --pilot pretrained --pilot {tmp_path / 'cut' / 'best.pt'}" in " ".join(
        capsys.readouterr().out.split())
    a, b = load_checkpoint(whole)[0].state_dict(), load_checkpoint(tmp_path / "cut" / "best.pt")[0].state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert main(["adapt", "--out", out, "--resume"]) == 2
    assert "is finished" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--strategy", "replay"], "--strategy: run has 'finetune', you gave 'replay'"),
    (["--strategy", "L2_Anchor", "--anchor", "5"], "--strategy: run has 'finetune', you gave 'l2-anchor'"),
    (["--anchor", "5"], "--anchor is read by the l2-anchor strategy only, not finetune"),
    (["--replay-fraction", "0.3"], "--replay-fraction is read by the replay strategy only, not finetune"),
    (["--data", "{other}"], "--data[0]: run has"),  # a list flag's item named by the flag, as train names it
])
def test_resume_names_flags_that_differ_from_the_run_before_checking_the_merged_settings(finetuned, capsys, args,
                                                                                         message, tmp_path):
    args = [arg.format(other=tmp_path / "other") for arg in args]
    assert main(["adapt", "--out", str(finetuned.parent), "--resume", *args]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_a_changed_starting_checkpoint_is_refused_on_resume(night, finetuned, tmp_path, capsys):
    start = tmp_path / "start.pt"
    shutil.copy(pretrained_checkpoint("fly-to-target"), start)
    config = AdaptConfig(pilot=str(start), data=(str(night),), epochs=2, batch_size=2, out=str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt):
        adapt(config, False, Interrupt())
    shutil.copy(finetuned, start)
    assert main(["adapt", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert f"the starting checkpoint {start} changed since" in capsys.readouterr().err


class InterruptAtDagger(Hooks):
    def stage(self, name, detail):
        if name == "dagger-1":
            raise KeyboardInterrupt


def test_dagger_flies_the_adapted_policy_in_the_new_scenery_keeps_the_cnn_frozen_and_resumes_strictly(
        night, tmp_path, capsys):
    """freeze-cnn with one DAgger round of two one-second roll-outs, interrupted as the round begins, then resumed:
    the roll-outs are the adapted policy's flights at night (the new data's preset, not the start's summer), labelled
    by the expert, on seeds past the evaluation's; their seeds are training seeds of the checkpoint; the CNN is
    still the start's bit for bit after the DAgger stage trained."""
    out = tmp_path / "dagger"
    config = AdaptConfig(data=(str(night),), strategy="freeze-cnn", epochs=1, batch_size=2, out=str(out),
                         dagger=DaggerConfig(rounds=1, episodes=2, epochs=1))
    with pytest.raises(KeyboardInterrupt):
        adapt(config, False, InterruptAtDagger())
    assert main(["adapt", "--out", str(out), "--resume"]) == 0  # the recorded DAgger settings, no flags retyped
    rollouts = read_manifest(out / "dagger" / "round-1")
    assert {(e.task, e.preset) for e in rollouts.episodes} == {("fly-to-target", "night")}
    assert [e.seed for e in rollouts.episodes] == [DAGGER_SEED_STRIDE, DAGGER_SEED_STRIDE + 1]
    assert rollouts.recipe["pilot"] == str(out / "best.pt") and rollouts.recipe["parts"][0]["preset"] == "night"
    start = pretrained_checkpoint("fly-to-target")
    before = load_checkpoint(start)[0].state_dict()
    policy, metadata = load_checkpoint(out / "best.pt")
    after = policy.state_dict()
    assert metadata["stage"] == "dagger-1"
    rolled = {"task": "fly-to-target", "first": DAGGER_SEED_STRIDE, "count": 2, "source": str(out / "dagger" /
                                                                                               "round-1")}
    lineage = metadata["adapted_from"]
    assert rolled in metadata["training_seeds"] and lineage["dagger_data"] == [rolled]
    assert lineage["dagger"] == {"rounds": 1, "episodes": 2, "epochs": 1}
    assert lineage["new_data"] == [{"task": "fly-to-target", "first": 20000, "count": 2, "source": str(night)}]
    cnn = [name for name in before if name.startswith("encoder.")]
    assert cnn and all(torch.equal(before[name], after[name]) for name in cnn)
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith("head."))
    capsys.readouterr()
    assert main(["adapt", "--out", str(out), "--resume", "--dagger-episodes", "3"]) == 2
    assert "--dagger-episodes: run has 2, you gave 3" in capsys.readouterr().err  # as typed
    assert main(["adapt", "--out", str(out), "--resume"]) == 2
    assert "is finished (its one epoch trained and 1 DAgger round)" in capsys.readouterr().err


@pytest.mark.parametrize("strategy", ["finetune", "replay", "freeze-cnn", "l2-anchor"])
def test_every_strategy_s_dagger_rounds_fly_the_new_data_s_scenery(night, old, strategy):
    """The pipeline rolls out in the scenario of the recipe's first dataset: the new one, in every strategy (the
    replayed summer data is the strategy's own, never the recipe's data)."""
    config = AdaptConfig(data=(str(night),), strategy=strategy, replay=(str(old),) if strategy == "replay" else (),
                         dagger=DaggerConfig(rounds=1, episodes=3), out="unused")
    recipe = prepare(config)
    assert recipe.data == (str(night),) and recipe.dagger == config.dagger
    rollouts = dagger_collect_config(recipe, pretrained_checkpoint("fly-to-target"), 1)  # any policy file
    assert [(p.task, p.preset, p.episodes) for p in rollouts.parts] == [("fly-to-target", "night", 3)]
    assert rollouts.seed == DAGGER_SEED_STRIDE and rollouts.max_seconds == 1


@pytest.fixture(scope="module")
def other_camera(tmp_path_factory):
    writer = DatasetWriter.create(tmp_path_factory.mktemp("adapt") / "synthetic", image_size=(48, 64), recipe={})
    for seed in range(2):
        writer.write(synthetic_episode(seed, frames=12))
    return writer.path


@pytest.fixture(scope="module")
def other_task(tmp_path_factory):
    return collect(tmp_path_factory.mktemp("adapt") / "follow", "--task", "follow", "--episodes", "1",
                   "--max-seconds", "0.5", "--seed", "20000")


@pytest.mark.parametrize("args, message", [
    (["--strategy", "forget-nothing"], "unknown strategy 'forget-nothing'; valid strategies are: finetune, replay"),
    (["--pilot", "expert"], "expert is the privileged demonstrator"),
    (["--pilot", "policies/pretrained/bundles/fly-to-target"], "an exported bundle cannot be trained"),
    (["--pilot", "launch/fly.yaml"], "must be pretrained or a policy checkpoint (.pt), got 'launch/fly.yaml'"),
    (["--pilot", "{run}"], "--pilot: {run} is a training run's folder; give its policy: {run}/best.pt"),
    (["--strategy", "replay"], ("the replay strategy needs the old data: give --replay DATASET; the shipped "
                                "fly-to-target policy's old data is its recipe's summer dataset")),
    (["--replay", "{night}"], "is read by the replay strategy only"),
    (["--anchor", "5"], ("--anchor is read by the l2-anchor strategy only, not finetune: drop it, or give "
                         "--strategy l2-anchor")),
    (["--strategy", "freeze-cnn", "--anchor", "100"], ("--anchor is read by the l2-anchor strategy only, not "
                                                       "freeze-cnn")),
    (["--replay-fraction", "0.3"], "--replay-fraction is read by the replay strategy only, not finetune"),
    (["--strategy", "l2-anchor", "--replay-fraction", "0.3"], ("--replay-fraction is read by the replay strategy "
                                                               "only, not l2-anchor")),
    (["--strategy", "replay", "--replay", "{night}"], ("is also given as --data: it would replay the new "
                                                       "demonstrations as the old ones")),
    (["--data", "{other_camera}"], "was recorded with another camera than pretrained"),
    (["--data", "{other_task}"], "holds follow demonstrations, but pretrained"),
    (["--config", "launch/adapt/night_small.yaml"], "only read by navigator adapt curve"),
    (["--dagger", "-1"], "--dagger must be >= 0, got -1"),
    (["--dagger", "1", "--dagger-episodes", "0"], "--dagger-episodes must be in [1, 1000000], got 0"),
    (["--weight-mix", "0"], "--weight-mix must be in (0, 1], got 0.0"),
    (["--weight-mix", "1.5"], "--weight-mix must be in (0, 1], got 1.5"),
    (["--dagger-episodes", "10"], "--dagger-episodes is read only by DAgger rounds, and --dagger is 0: give --dagger "
                                  "above 0, or drop it"),
    (["--dagger", "0", "--dagger-epochs", "3"], "--dagger-epochs is read only by DAgger rounds, and --dagger is 0"),
])
def test_bad_input_is_refused_in_one_line_before_any_work(night, other_camera, other_task, finetuned, tmp_path, capsys,
                                                          args, message):
    names = {"night": night, "other_camera": other_camera, "other_task": other_task, "run": finetuned.parent}
    given = [a.format(**names) for a in args]
    data = [] if "--data" in given else ["--data", str(night)]
    assert main(["adapt", *data, *given, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert message.format(**names) in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_replayed_dataset_that_is_the_new_data_under_another_name_is_refused(night, tmp_path, capsys):
    alias = tmp_path / "alias"
    alias.symlink_to(night, target_is_directory=True)
    assert main(["adapt", "--data", str(night), "--strategy", "replay", "--replay", str(alias), "--out",
                 str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert f"--replay {alias} and --data {night} are the same dataset folder" in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("given, strategy", [("Fine Tune", "finetune"), ("fine_tune", "finetune"),
                                             ("Freeze CNN", "freeze-cnn"), ("L2_Anchor", "l2-anchor"),
                                             ("REPLAY", "replay")])
def test_a_strategy_is_named_whatever_its_case_and_separators(given, strategy):
    from navigator.adapt.config import canonical_strategy

    assert canonical_strategy(given) == strategy
    assert CurveConfig(strategies=(given, "replay" if strategy != "replay" else "finetune"),
                       replay=("datasets/old",)).strategies[0] == strategy
    with pytest.raises(ValueError, match="unknown strategy 'fine tuning'; valid strategies are: finetune, replay"):
        canonical_strategy("fine tuning")


@pytest.mark.parametrize("strategies, train, problem", [
    (("finetune", "freeze-cnn"), {"anchor": 5.0}, "train.anchor is read by the l2-anchor strategy only"),
    (("finetune", "l2-anchor"), {"replay_fraction": 0.3}, "train.replay_fraction is read by the replay strategy"),
    (("finetune", "l2-anchor"), {"anchor": 5.0, "replay_fraction": 0.3}, "train.replay_fraction"),
])
def test_a_curve_refuses_train_settings_that_none_of_its_strategies_reads(strategies, train, problem):
    settings = {"sceneries": ("night",), "demonstrations": (5,), "seeds": (0, 1), "train": train}
    with pytest.raises(SettingError) as refused:
        CurveConfig(strategies=strategies, **settings)
    assert problem in str(refused.value)
    # one strategy that reads it is enough: train applies to every strategy of the curve
    CurveConfig(strategies=tuple(dict.fromkeys((*strategies, "l2-anchor", "replay"))), replay=("datasets/old",),
                **settings)


@pytest.mark.parametrize("train, problem", [
    # DAgger sizes without DAgger rounds, refused as a training recipe refuses them; at their defaults they are not.
    ({"dagger": {"episodes": 3}}, "train.dagger.episodes is read only by DAgger rounds, and train.dagger.rounds is 0"),
    ({"dagger": {"rounds": 0, "epochs": 2}}, "train.dagger.epochs is read only by DAgger rounds"),
    ({"dagger": {"rounds": 0, "episodes": 16, "epochs": 5}}, None),
    # A setting's name mistyped is no setting at all (not one a curve sets per run).
    ({"weight-mix": 0.5}, "train: sets weight-mix, which is not a setting; it may set epochs,"),
    ({"device": "cuda"}, "train: sets device, which a curve does not: its adaptations train on the CPU"),
])
def test_a_curve_refuses_train_settings_nothing_reads_or_that_are_none(train, problem):
    settings = {"sceneries": ("night",), "demonstrations": (5,), "strategies": ("finetune",), "seeds": (0, 1),
                "train": train}
    if problem is None:
        assert CurveConfig(**settings).adaptation("night", 5, "finetune", 0).dagger.rounds == 0
        return
    with pytest.raises(SettingError) as refused:
        CurveConfig(**settings)
    assert problem in str(refused.value)


def test_a_curve_names_a_missing_starting_policy_where_it_was_given(tmp_path, capsys):
    config = tmp_path / "curve.yaml"
    config.write_text("pilot: /nowhere/best.pt\nsceneries: [night]\ndemonstrations: [5]\nseeds: [0, 1]\n"
                      "strategies: [finetune]\n")
    assert main(["adapt", "curve", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"pilot in {config}: /nowhere/best.pt does not exist" in error and "--pilot" not in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("settings, said", [
    # the starting policy's training worlds, named with its whole range
    ("collect_seed: 598\n", ["the demonstrations would fly world seeds 598-602, and {start} was trained on world seeds "
                            "0-599", "seeds 598-599 among them: choose a collect_seed past 599"]),
    # the evaluation's worlds, with the first seeds that are free on either side
    ("collect_seed: 99998\nevaluation: {suites: [summer], seed: 100000, episodes: 20}\n",
     ["the demonstrations would fly world seeds 99998-100002, and the evaluation flies seeds 100000-100002 of them: "
      "choose a collect_seed of at most 99995 or at least 100020"]),
])
def test_a_curve_whose_demonstrations_fly_worlds_already_used_says_which_and_what_is_free(settings, said, tmp_path,
                                                                                           capsys):
    from navigator.pilots import pretrained_checkpoint

    config = tmp_path / "curve.yaml"
    config.write_text("sceneries: [night]\ndemonstrations: [5]\nstrategies: [finetune]\nseeds: [0, 1]\n" + settings)
    assert main(["adapt", "curve", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"collect_seed in {config}: " in error, error
    for part in said:
        assert part.format(start=pretrained_checkpoint("fly-to-target")) in error, error
    assert not (tmp_path / "out").exists()


def test_the_learning_curve_reports_forgetting_from_a_real_evaluation(tmp_path, capsys):
    """One scenery, one short demonstration, fine-tuning with two training seeds, one two-second world per suite in
    the real simulator: the curve's figures are the evaluation's episodes, curve.md is drawn again from curve.json,
    resuming a finished curve does nothing and a changed setting is refused."""
    config = tmp_path / "curve.yaml"
    assert main(["collect", "--out", str(tmp_path / "old"), "--episodes", "1", "--max-seconds", "2",
                 "--workers", "1"]) == 0
    config.write_text("sceneries: [night]\ndemonstrations: [1]\nstrategies: [finetune, replay]\nseeds: [0, 1]\n"
                      f"replay: [{tmp_path / 'old'}]\n"
                      "train: {epochs: 1, batch_size: 2, threads: 1, cache_mb: 64}\n"
                      "evaluation: {suites: [summer], episodes: 1, max_seconds: 2}\n"
                      f"out: {tmp_path / 'curve'}\n")
    assert main(["adapt", "curve", "--config", str(config), "--workers", "1"]) == 0
    out = tmp_path / "curve"
    document = json.loads((out / "curve.json").read_text())
    results = json.loads((out / "eval" / "night" / "results.json").read_text())
    flown = {(e["suite"], e["pilot"]): e["success"] for e in results["episodes"]}
    assert {suite for suite, _ in flown} == {"night", "summer"} and len(flown) == 10
    cell = document["cells"][0]
    start = flown["summer", "pretrained"]
    adapted = [flown["summer", run["checkpoint"]] for run in cell["runs"]]
    assert document["start"]["night"]["summer"]["successes"] == start
    assert [run["suites"]["summer"]["outcomes"] for run in cell["runs"]] == [[a] for a in adapted]
    assert cell["forgetting"]["summer"]["mean"] == pytest.approx(start - np.mean(adapted))
    assert (out / "curve.md").read_text() == render_curve(document)
    assert (out / "curve.png").stat().st_size > 10_000
    before = (out / "curve.json").read_text()
    assert main(["adapt", "curve", "--config", str(config), "--resume", "--workers", "1"]) == 0
    assert "finished before" in capsys.readouterr().out and (out / "curve.json").read_text() == before
    # Started from another file at the same path (a policy retrained since): said as the file having changed, not
    # as a setting named start_sha256 given otherwise.
    record = (out / "adapt-curve.json").read_text()
    started = without_checksum(json.loads(record))
    started["settings"]["start_sha256"] = "0" * 64
    (out / "adapt-curve.json").write_text(json.dumps(with_checksum(started)))
    assert main(["adapt", "curve", "--config", str(config), "--resume", "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert (f"--resume: the starting policy pretrained changed since the learning curve in {out} started (its sha256 "
            f"was 000000000000, now ") in error and "start_sha256" not in error
    (out / "adapt-curve.json").write_text(record)
    assert main(["adapt", "curve", "--out", str(out), "--resume", "--workers", "1"]) == 0  # the recorded settings
    assert "finished before" in capsys.readouterr().out and (out / "curve.json").read_text() == before
    # Continued from its record alone, a run still to train gets the threads the curve started with (they change
    # the training's rounding), which the record keeps beside the settings it compares: the same curve, bit for bit.
    assert json.loads((out / "adapt-curve.json").read_text())["resources"] == {"threads": 1, "cache_mb": 64}
    for folder in (out / "runs" / "night-1-replay-seed1", out / "eval"):
        shutil.rmtree(folder)
    finished = json.loads((out / "finished.json").read_text())
    finished["runs"].remove("night-1-replay-seed1")
    (out / "finished.json").write_text(json.dumps(finished))
    assert main(["adapt", "curve", "--out", str(out), "--resume", "--workers", "1"]) == 0
    capsys.readouterr()
    assert json.loads((out / "runs" / "night-1-replay-seed1" / "run.json").read_text())["config"]["threads"] == 1
    assert (out / "curve.json").read_text() == before
    # Copied elsewhere whole, runs/ and all (its evaluation names the old folder's checkpoints): read from the
    # report, not refused as another evaluation's folder nor flown again.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    files = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    assert main(["adapt", "curve", "--out", str(copy), "--resume", "--workers", "1"]) == 0
    assert "finished before" in capsys.readouterr().out and (copy / "curve.json").read_text() == before
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == files
    # Copied while unfinished: its finished adaptations learnt from the old folder's data, the rest would learn from
    # the copy's; refused before any work, naming both.
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    finished = json.loads((unfinished / "finished.json").read_text())
    finished["runs"].remove("night-1-replay-seed1")
    (unfinished / "finished.json").write_text(json.dumps(finished))
    shutil.rmtree(unfinished / "runs" / "night-1-replay-seed1")
    files = sorted(p.relative_to(unfinished) for p in unfinished.rglob("*"))
    assert main(["adapt", "curve", "--out", str(unfinished), "--resume", "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert (f"{unfinished / 'runs' / 'night-1-finetune-seed0'} was trained on {out / 'data' / 'night-1'}, not "
            f"{unfinished / 'data' / 'night-1'}: the learning curve was moved or copied while unfinished") in error
    assert sorted(p.relative_to(unfinished) for p in unfinished.rglob("*")) == files
    # As a clone of the committed report has it (.gitignore keeps runs/, data/, episodes/ and datasets out): it
    # resumes from the report, collecting and training nothing; without the evaluation's results it is refused
    # before any work.
    for ignored in (out / "runs", out / "data", out / "eval/night/episodes", tmp_path / "old"):
        shutil.rmtree(ignored)
    assert main(["adapt", "curve", "--out", str(out), "--resume", "--workers", "1"]) == 0
    shown = capsys.readouterr().out
    assert "finished before" in shown and "collect" not in shown and (out / "curve.json").read_text() == before
    assert not (out / "runs").exists() and not (out / "data").exists()
    (out / "eval" / "night" / "results.json").unlink()
    assert main(["adapt", "curve", "--out", str(out), "--resume", "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert (f"{out / 'runs' / 'night-1-finetune-seed0' / 'best.pt'} is missing and "
            f"{out / 'eval' / 'night' / 'results.json'} is not the learning curve's finished evaluation") in error
    assert len(error.strip().splitlines()) == 1 and not (out / "runs").exists()
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    assert main(["adapt", "curve", "--config", str(config), "--resume"]) == 2
    assert "train.epochs: adapt-curve.json has 1, you gave 2" in capsys.readouterr().err


def _record(pilot, suite, seed, success):
    return EpisodeRecord(pilot=pilot, suite=suite, seed=seed, ending="success" if success else "timeout",
                         success=success, steps=30, time=1.0, path_length=2.0, final_distance=0.5,
                         start=(0.0, 0.0, 1.0), target=(4.0, 0.0, 1.0), path_xy=((0.0, 0.0),))


def test_forgetting_and_the_goal_are_computed_from_the_outcomes(tmp_path):
    """Crafted outcomes on five worlds: the starting policy wins 5 in summer and 2 at night; with 20 demonstrations
    fine-tuning wins every night world but loses 3 of 10 summer ones (30 points forgotten), freeze-cnn wins 9 of 10
    night worlds and forgets nothing: it alone meets the goal."""
    config = CurveConfig(sceneries=("night",), demonstrations=(5, 20), strategies=("finetune", "freeze-cnn"),
                         seeds=(0, 1), evaluation=EvalSettings(suites=("summer",), episodes=5))
    wins = {("finetune", 5): {"night": [3, 3], "summer": [5, 5]}, ("finetune", 20): {"night": [5, 5],
                                                                                    "summer": [3, 4]},
            ("freeze-cnn", 5): {"night": [2, 3], "summer": [5, 5]}, ("freeze-cnn", 20): {"night": [5, 4],
                                                                                        "summer": [5, 5]}}
    runs, infos = [], [PilotInfo("pretrained", "0" * 64, TrainingSeeds((), True))]
    for (strategy, count) in wins:
        for seed in (0, 1):
            path = tmp_path / f"{strategy}-{count}-{seed}.pt"
            path.write_bytes(b"not read")
            runs.append(AdaptedRun("night", count, strategy, seed, str(path), 0.01))
            infos.append(PilotInfo(str(path), "0" * 64, TrainingSeeds((), True), checkpoint_recipe({"train_config": {
                "model": "cfc-ncp", "seed": seed, "data": [f"night-{count}"], "adapt": {"strategy": strategy}}})))
    settings = EvalSettings(pilots=tuple(info.spec for info in infos), suites=("night", "summer"), episodes=5)
    start_wins = {"night": 2, "summer": 5}
    records = [_record("pretrained", suite, world, world - settings.seed < start_wins[suite])
               for suite in settings.suites for world in settings.seeds]
    records += [_record(run.pilot, suite, world, world - settings.seed < wins[run.strategy, run.demonstrations][
        suite][run.seed]) for suite in settings.suites for run in runs for world in settings.seeds]
    results = build_results(settings, tuple(infos), records)
    document = build_curve(config, {"night": results}, runs, "pretrained", "0" * 64)
    cell = next(c for c in document["cells"] if (c["strategy"], c["demonstrations"]) == ("finetune", 20))
    _, low, high = seed_bootstrap([[w - settings.seed < n for w in settings.seeds] for n in (3, 4)])
    assert cell["success"]["summer"] == pytest.approx({"mean": 0.7, "low": low, "high": high}, abs=1e-6)
    assert cell["forgetting"]["summer"] == pytest.approx({"mean": 0.3, "low": 1 - high, "high": 1 - low}, abs=1e-6)
    assert cell["success"]["night"]["mean"] == 1.0
    assert [(g["strategy"], g["met"]) for g in document["goal"]] == [("finetune", False), ("freeze-cnn", True)]
    table = render_curve(json.loads(json.dumps(document)))
    assert "Success in night (the starting policy: 2/5 (40%)):" in table
    # 10 of 10 summer worlds after 5 demonstrations: no forgetting, within the Wilson interval of 10 alike outcomes.
    assert f"| finetune | +0 [+0, +28] (100%) | +30 [{100 * (1 - high):+.0f}, {100 * (1 - low):+.0f}] (70%) |" in table
    assert "- night, freeze-cnn: 90% in night, +0 points on summer: met." in table
    assert "| N = 5 | N = 20 |" in table and "roll-outs" not in table
    with_dagger = dataclasses.replace(config, train={"dagger": {"rounds": 2, "episodes": 10, "epochs": 4}})
    table = render_curve(build_curve(with_dagger, {"night": results}, runs, "pretrained", "0" * 64))
    assert "| N = 5 + 20 roll-outs | N = 20 + 20 roll-outs |" in table
    assert "2 DAgger rounds of 10 roll-outs each" in table and "N counts the expert's demonstrations only" in table
    assert "WiSE-FT" not in table
    mixed = dataclasses.replace(config, train={"weight_mix": 0.5})
    assert mixed.adaptation("night", 5, "finetune", 0).weight_mix == 0.5
    table = render_curve(build_curve(mixed, {"night": results}, runs, "pretrained", "0" * 64))
    assert "Each adapted policy keeps 0.5 of its trained weight change: its weights are start + 0.5 x (trained - " \
           "start), WiSE-FT's interpolation back to the starting policy." in table


def test_the_shipped_configs_are_the_issues_curve_and_the_small_one():
    from navigator.config import load_config

    full = load_config(CurveConfig, "launch/adapt/full.yaml")
    assert (full.sceneries, full.demonstrations, full.seeds) == (("night", "pillars", "wind"), (5, 10, 20, 50),
                                                                 (0, 1, 2))
    assert full.strategies == ("finetune", "replay", "freeze-cnn", "l2-anchor") and "summer" in full.evaluation.suites
    small = load_config(CurveConfig, "launch/adapt/night_small.yaml")
    assert (small.sceneries, small.demonstrations, small.strategies) == (("night",), (5, 20), ("finetune", "replay",
                                                                                                "freeze-cnn"))
    wind, dagger = (load_config(CurveConfig, f"launch/adapt/{name}.yaml") for name in ("wind_small",
                                                                                       "wind_small_dagger"))
    assert dagger.adaptation("wind", 5, "finetune", 0).dagger == DaggerConfig(rounds=1, episodes=10, epochs=4)
    assert dagger.out == "reports/adapt-wind-small-dagger"
    # wind_small's fine-tuning cells with one DAgger round: what the two curves' finetune rows compare.
    assert dataclasses.replace(dagger, train={k: v for k, v in dagger.train.items() if k != "dagger"},
                               out=wind.out, strategies=wind.strategies, replay=wind.replay) == dataclasses.replace(
        wind, train={k: v for k, v in wind.train.items() if k != "replay_fraction"})
    assert dagger.strategies == ("finetune",)
    # winter_pillars_fifty extends shipped_hard's winter+pillars demonstrations, on the same worlds.
    hard, fifty = (load_config(CurveConfig, f"launch/adapt/{name}.yaml") for name in ("shipped_hard",
                                                                                      "winter_pillars_fifty"))
    assert fifty.new_seeds[:20] == hard.new_seeds and fifty.evaluation == hard.evaluation
    assert fifty.adaptation("winter+pillars", 50, "replay", 0) == hard.adaptation("winter+pillars", 20, "replay", 0)
    # winter_pillars_dagger: the same adaptations, each followed by one DAgger round of 20 roll-outs.
    dagger = load_config(CurveConfig, "launch/adapt/winter_pillars_dagger.yaml")
    assert dagger.evaluation == hard.evaluation and dagger.new_seeds == hard.new_seeds
    assert dagger.adaptation("winter+pillars", 20, "replay", 0) == dataclasses.replace(
        hard.adaptation("winter+pillars", 20, "replay", 0), dagger=DaggerConfig(rounds=1, episodes=20, epochs=4))
    # The weight-mix twins: the same curve but for the mix (and, for shipped_hard, the strategies it mixes).
    for name, strategies in (("shipped_hard", ("finetune", "replay")), ("autumn_shipped", None)):
        plain, mixed = (load_config(CurveConfig, f"launch/adapt/{name}{suffix}.yaml") for suffix in ("", "_mix"))
        assert mixed.adaptation(mixed.sceneries[0], 20, mixed.strategies[0], 0).weight_mix == 0.5
        assert dataclasses.replace(mixed, train={k: v for k, v in mixed.train.items() if k != "weight_mix"},
                                   out=plain.out) == dataclasses.replace(
            plain, strategies=strategies or plain.strategies,
            train={k: v for k, v in plain.train.items() if strategies is None or k != "anchor"})
    base = training_seeds(load_checkpoint(pretrained_checkpoint("fly-to-target"))[1])
    for config in (full, small):  # new worlds: neither evaluated nor trained on by the shipped policy
        assert not set(config.new_seeds) & set(config.evaluation.seeds)
        assert not any(known.overlap("fly-to-target", config.new_seeds) for known in base.ranges)


@pytest.mark.parametrize("flag", ["--resume", "--extend"])
def test_navigator_train_on_an_adaptation_points_to_navigator_adapt(finetuned, capsys, tmp_path, flag, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    finished = finetuned.parent
    assert main(["train", "--out", str(finished), flag]) == 2
    error = capsys.readouterr().err
    # finished: navigator adapt --resume would refuse too, so the advice is what works
    assert "made by navigator adapt" in error
    assert "is finished; to train it longer, adapt again in another --out" in error
    assert "navigator adapt --out" not in error and len(error.strip().splitlines()) == 1

    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished, unfinished)
    (unfinished / "progress.json").write_text('{"completed": []}')
    assert main(["train", "--out", str(unfinished), flag]) == 2
    error = capsys.readouterr().err
    assert "made by navigator adapt" in error and f"navigator adapt --out {unfinished} --resume" in error


def test_a_curve_started_from_a_shipped_policy_since_replaced_names_where_that_policy_is_kept(tmp_path, capsys):
    """reports/adapt-night-small started from `pretrained` when the previous policy was the shipped one: its resume
    is refused (the runs still to train would start from another policy) and says which file holds that policy now."""
    out = tmp_path / "night-small"
    shutil.copytree("reports/adapt-night-small", out)
    assert main(["adapt", "curve", "--out", str(out), "--resume"]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "the starting policy pretrained changed since the learning curve" in error
    assert ("it was the shipped policy then, kept since as policies/pretrained/previous/"
            "fly-to-target-cfc-ncp-200-dagger.pt: make the learning curve again from it") in error
