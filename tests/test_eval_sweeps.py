"""`navigator eval --sweep`: each level changes the flown world as claimed (the image at noise 16 is not the one at
noise 0, a level's wind pushes the vehicle), every pilot and level meets the same worlds, and the results, report and
figure gain the sweep."""

import json

import numpy as np
import pytest

from navigator.cli import main
from navigator.evaluation.results import EvalResults
from navigator.evaluation.settings import EvalSettings
from navigator.evaluation.sweeps import KINDS, SweepPoint, point_scenery
from navigator.scenario import ScenarioConfig, make_scenario_env

SEED = 100_000


@pytest.fixture(scope="module")
def env():
    env = make_scenario_env(ScenarioConfig(max_seconds=2.0))
    yield env.unwrapped
    env.close()


def _first_image(env, scenery) -> np.ndarray:
    env.use_scenery(scenery)
    observation, _ = env.reset(seed=SEED)
    return observation["image"]


def test_noise_level_changes_the_image_and_level_zero_is_the_base(env):
    base = _first_image(env, None)
    assert np.array_equal(_first_image(env, point_scenery(SweepPoint("summer", "noise", 0))), base)
    noisy = _first_image(env, point_scenery(SweepPoint("summer", "noise", 16)))
    assert np.abs(noisy.astype(int) - base.astype(int)).std() > 8  # grey levels of sensor noise
    dark = _first_image(env, point_scenery(SweepPoint("summer", "brightness", 0.2)))
    assert dark.mean() < 0.3 * base.mean()
    covered = _first_image(env, point_scenery(SweepPoint("summer", "occlusion", 3)))
    assert (covered == 0).all(axis=2).sum() > (base == 0).all(axis=2).sum() + 50  # black patches
    assert np.array_equal(_first_image(env, None), base)  # None: the preset's scenery again


def test_wind_level_reaches_the_physics(env):
    def drift(scenery) -> np.ndarray:
        env.use_scenery(scenery)
        _, info = env.reset(seed=SEED)
        start = info["position"]
        for _ in range(30):  # a second of hovering
            _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
            assert not (terminated or truncated)
        return info["position"] - start

    calm = drift(point_scenery(SweepPoint("summer", "wind", 0)))
    windy = drift(point_scenery(SweepPoint("summer", "wind", 5)))
    assert np.linalg.norm(windy[:2]) > np.linalg.norm(calm[:2]) + 0.2


def test_levels_set_the_one_knob_on_top_of_the_base():
    night = EvalSettings(pilots=("expert",), suites=("summer",), sweeps=("brightness", "wind"), sweep_base="night")
    assert night.flown_suites[:2] == ("summer", "night@brightness=1")
    assert len(night.flown_suites) == 1 + len(KINDS["brightness"].levels) + len(KINDS["wind"].levels)
    dim = night.scenery("night@brightness=0.1")
    assert dim.exposure == pytest.approx(0.045) and dim.noise_std == 4.0  # night's 0.45, its noise kept
    gusty = night.scenery("night@wind=4").wind
    assert (gusty.steady_speed, gusty.gust_std, gusty.gust_time_constant) == (4.0, 3.0, 1.5)  # as the wind preset's
    assert night.scenario("night@wind=4").preset == "night" and night.scenery("summer") is None


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "report"
    assert main(["eval", "--pilot", "expert", "--pilot", "pretrained", "--suites", "summer", "--sweep", "wind",
                 "--sweep-levels", "0,5", "--episodes", "2", "--max-seconds", "1", "--workers", "1",
                 "--out", str(out)]) == 0
    return out, EvalResults.from_dict(json.loads((out / "results.json").read_text()))


def test_every_level_and_pilot_meets_the_same_worlds(sweep_run):
    out, results = sweep_run
    assert results.settings.flown_suites == ("summer", "summer@wind=0", "summer@wind=5")
    worlds = {(suite, pilot): tuple((r.seed, r.start, r.target) for r in results.episodes
                                    if (r.suite, r.pilot) == (suite, pilot))
              for suite in results.settings.flown_suites for pilot in results.settings.pilots}
    assert len(worlds) == 6 and len(set(worlds.values())) == 1 and len(worlds["summer", "expert"]) == 2
    paths = {r.suite: r.path_xy for r in results.episodes if (r.pilot, r.seed) == ("expert", SEED)}
    assert paths["summer@wind=0"] == paths["summer"]  # level 0 is the base suite
    assert paths["summer@wind=5"] != paths["summer"]


def test_results_report_and_figure_gain_the_sweep(sweep_run):
    out, results = sweep_run
    (curve,) = results.sweeps
    assert (curve.kind, curve.base, curve.levels, curve.episodes) == ("wind", "summer", (0.0, 5.0), 2)
    assert [line.pilot for line in curve.lines] == ["expert", "pretrained"]
    for line in curve.lines:
        for suite, successes, interval in zip(curve.suites, line.successes, line.success_intervals):
            summary = results.summary(suite, line.pilot)
            assert (summary.successes, summary.success_interval) == (successes, interval)
    report = (out / "report.md").read_text()
    assert "## Sweep: wind on summer" in report and "| 5 |" in report and "(sweep-wind.png)" in report
    assert (out / "sweep-wind.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "distance.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--sweep", "fog"], "unknown sweep 'fog'"),
    (["--sweep", "noise,wind", "--sweep-levels", "1,2"], "exactly one sweep"),
    (["--sweep", "occlusion", "--sweep-levels", "1.5"], "give whole numbers"),
    (["--sweep", "noise", "--sweep-levels", "-4"], "out of range"),
    (["--sweep", "noise", "--sweep-levels", "4,four"], "comma-separated numbers"),
    (["--sweep", "noise", "--sweep-base", "moon"], "unknown preset 'moon'"),
    # A value starting with a minus sign reaches the project's check (argparse alone takes "-1,2" for an option).
    (["--sweep", "noise", "--sweep-levels", "-1,2"], "noise level -1 is out of range"),
    (["--sweep-base", "winter"], "--sweep-base must come with --sweep"),
    (["--videos", "-1"], "--videos must be >= 0"),
])
def test_bad_sweep_input_exits_2_before_any_flight(tmp_path, capsys, args, message):
    out = tmp_path / "report"
    assert main(["eval", "--pilot", "expert", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
