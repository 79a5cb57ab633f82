"""`navigator eval` across training seeds: checkpoints of one recipe but for the seed form a group with a
hierarchical bootstrap interval; results (groups included) read back without the checkpoints; and a folder that
cannot be resumed is refused before any pilot is loaded."""

import json

import pytest

from navigator.errors import UserError
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.groups import checkpoint_recipe, find_groups
from navigator.evaluation.pipeline import evaluate
from navigator.evaluation.results import EvalResults, PilotInfo, build_results
from navigator.evaluation.seeds import SeedRange, TrainingSeeds
from navigator.evaluation.settings import EvalSettings
from navigator.evaluation.stats import seed_bootstrap

RECIPE = {"data": ["datasets/summer"], "out": "runs/s0", "model": "cfc-ncp", "epochs": 20, "seed": 0, "threads": 2,
          "cache_mb": 4096, "augment": {"flip": True}}


def _recipe(**changes):
    return checkpoint_recipe({"train_config": {**RECIPE, **changes}})


def test_recipes_differ_only_by_what_makes_another_model():
    base = _recipe()
    assert (base.model, base.seed) == ("cfc-ncp", 0)
    assert _recipe(seed=3, out="runs/s3", threads=8, cache_mb=0).sha256 == base.sha256
    assert _recipe(epochs=30).sha256 != base.sha256
    assert _recipe(augment={"flip": False}).sha256 != base.sha256
    assert checkpoint_recipe({}) is None and checkpoint_recipe({"train_config": {"seed": 1}}) is None


def _pilot(spec, recipe):
    return PilotInfo(spec, "0" * 64, TrainingSeeds((SeedRange(None, 0, 10, "demonstrations"),), True), recipe)


def test_groups_need_two_training_seeds_of_one_recipe():
    pilots = [PilotInfo("expert", None, None),
              _pilot("s0.pt", _recipe(seed=0)), _pilot("s1.pt", _recipe(seed=1)),
              _pilot("s0-epoch3.pt", _recipe(seed=0)),  # another checkpoint of run s0: not an independent seed
              _pilot("long0.pt", _recipe(seed=0, epochs=40)), _pilot("long1.pt", _recipe(seed=1, epochs=40)),
              _pilot("alone.pt", _recipe(seed=0, model="lstm"))]
    groups = [(label, [p.spec for p in members]) for label, members in find_groups(pilots)]
    assert groups == [("cfc-ncp #1", ["s0.pt", "s1.pt"]), ("cfc-ncp #2", ["long0.pt", "long1.pt"])]
    assert [label for label, _ in find_groups(pilots[:3])] == ["cfc-ncp"]


def _record(pilot, suite, seed, success):
    return EpisodeRecord(pilot=pilot, suite=suite, seed=seed, ending="success" if success else "collision",
                         success=success, steps=30, time=1.0, path_length=2.0, final_distance=0.5 if success else 3.0,
                         start=(0.0, 0.0, 1.0), target=(4.0 + seed % 7, 0.0, 1.0), path_xy=((0.0, 0.0), (1.0, 0.0)))


@pytest.fixture
def seed_results(tmp_path):
    """Three training seeds of one recipe in two suites, with synthetic outcomes, and their checkpoint files."""
    specs = []
    for seed in range(3):
        (tmp_path / f"s{seed}").mkdir()
        path = tmp_path / f"s{seed}" / "best.pt"
        path.write_bytes(b"not read")
        specs.append(str(path))
    settings = EvalSettings(pilots=(*specs, "expert"), suites=("summer", "night"), episodes=6, seed=100_000,
                            sweeps=("noise",), sweep_levels=(0, 8))
    pilots = tuple(_pilot(spec, _recipe(seed=seed)) for seed, spec in enumerate(specs)) + (
        PilotInfo("expert", None, None),)
    outcome = {(spec, seed): (seed + 2 * i) % 3 != 0 for i, spec in enumerate(specs) for seed in settings.seeds}
    records = [_record(spec, suite, seed, outcome.get((spec, seed), True)) for suite in settings.flown_suites
               for spec in settings.pilots for seed in settings.seeds]
    return specs, settings, build_results(settings, pilots, records), outcome


def test_group_success_is_the_mean_over_seeds_with_the_bootstrap_interval(seed_results):
    specs, settings, results, outcome = seed_results
    (group,) = results.groups
    assert (group.label, group.pilots, group.training_seeds) == ("cfc-ncp", tuple(specs), (0, 1, 2))
    assert [row.suite for row in group.suites] == list(settings.flown_suites)
    mean, low, high = seed_bootstrap([[outcome[spec, seed] for seed in settings.seeds] for spec in specs])
    assert group.suites[0].success_rate == pytest.approx(mean, abs=1e-6) and mean == pytest.approx(12 / 18)
    assert group.suites[0].success_interval == pytest.approx((low, high), abs=1e-6)


def test_results_round_trip_without_the_checkpoints(seed_results, tmp_path):
    specs, _, results, _ = seed_results
    document = json.loads(json.dumps(results.to_dict()))
    assert document["groups"][0]["label"] == "cfc-ncp" and document["sweeps"][0]["kind"] == "noise"
    for spec in specs:
        (tmp_path / spec).unlink()
    again = EvalResults.from_dict(document)
    assert again == results and again.to_dict() == document
    assert again.settings.pilots[:3] == tuple(specs)
    with pytest.raises(ValueError, match="does not exist"):  # settings given anew still check their checkpoints
        EvalSettings(pilots=(specs[0],))


def test_resume_without_eval_json_is_refused_before_loading_pilots(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")  # loading it would fail: the folder must be refused first
    with pytest.raises(UserError, match="no evaluation to continue"):
        evaluate(tmp_path / "nothing-here", EvalSettings(pilots=(str(broken),)), resume=True)
