"""`navigator eval`'s statistics beyond Wilson: the hierarchical bootstrap across training seeds and success in bins
of start distance."""

import pytest

from navigator.evaluation.distance import bin_edges, distance_bins
from navigator.evaluation.episodes import EpisodeRecord
from navigator.evaluation.stats import seed_bootstrap, wilson_interval

HALF = [j % 2 == 0 for j in range(100)]  # 50 of 100 worlds


def test_one_seed_is_the_ordinary_bootstrap_of_the_worlds():
    # 50/100: the normal approximation 0.5 ± 1.96·sqrt(0.25/100) = 0.402..0.598.
    mean, low, high = seed_bootstrap([HALF])
    assert mean == 0.5
    assert low == pytest.approx(0.402, abs=0.015) and high == pytest.approx(0.598, abs=0.015)


def test_seeds_that_disagree_spread_the_interval():
    # One seed always succeeds, the other never: a resample draws the good seed 0, 1 or 2 times (1/4, 1/2, 1/4).
    assert seed_bootstrap([[True] * 20, [False] * 20]) == (0.5, 0.0, 1.0)


def test_worlds_are_resampled_once_for_every_seed():
    # Identical seeds: with the same drawn worlds for each, two seeds say no more than one. Drawing the worlds
    # apart for each seed would narrow the interval by about sqrt(2).
    assert seed_bootstrap([HALF, HALF]) == pytest.approx(seed_bootstrap([HALF]), abs=0.02)


def test_same_input_same_interval_and_the_seed_matters():
    outcomes = [[(i * 7 + j * 3) % 5 < 2 for j in range(40)] for i in range(3)]
    assert seed_bootstrap(outcomes) == seed_bootstrap(outcomes)
    assert seed_bootstrap(outcomes, resamples=500, seed=1) != seed_bootstrap(outcomes, resamples=500, seed=2)
    mean, low, high = seed_bootstrap(outcomes, level=0.5)
    _, wide_low, wide_high = seed_bootstrap(outcomes, level=0.99)
    assert wide_low <= low <= mean <= high <= wide_high


def test_a_bootstrap_of_outcomes_all_alike_keeps_an_interval():
    # Every world failed (or every one succeeded): each resample is the same, but two worlds prove little.
    mean, low, high = seed_bootstrap([[False, False], [False, False]])
    assert (mean, low) == (0.0, 0.0) and high == pytest.approx(wilson_interval(0, 4)[1]) and high > 0.45
    mean, low, high = seed_bootstrap([[True] * 5])
    assert (mean, high) == (1.0, 1.0) and low == pytest.approx(wilson_interval(5, 5)[0])


@pytest.mark.parametrize("outcomes, kwargs", [
    ([], {}), ([[]], {}), ([[True, False], [True]], {}), ([[True]], {"resamples": 0}), ([[True]], {"level": 1.0}),
])
def test_bootstrap_refuses_bad_input(outcomes, kwargs):
    with pytest.raises(ValueError):
        seed_bootstrap(outcomes, **kwargs)


def _record(distance: float, success: bool, seed: int = 0) -> EpisodeRecord:
    return EpisodeRecord(pilot="expert", suite="summer", seed=seed, ending="success" if success else "timeout",
                         success=success, steps=1, time=1.0, path_length=1.0, final_distance=0.5,
                         start=(0.0, 0.0, 1.0), target=(distance, 0.0, 1.0), path_xy=((0.0, 0.0),))


def test_distance_bins_count_every_episode_once_with_wilson_intervals():
    records = [_record(d, d < 8) for d in (3.2, 4.0, 5.5, 7.9, 8.0, 9.5, 11.99, 12.0)]
    edges = bin_edges([r.straight_distance for r in records], episodes=10)  # about 5 per bin: 2 bins
    assert edges == [3.0, 7.5, 12.0]
    bins = distance_bins(records, edges)
    assert [(b.episodes, b.successes) for b in bins] == [(3, 3), (5, 1)]  # 12.0 belongs to the last bin
    assert bins[1].success_interval == wilson_interval(1, 5) and bins[1].success_rate == 0.2
    assert distance_bins(records, [0.0, 1.0])[0].success_interval is None  # an empty bin


def test_bin_edges_span_at_least_a_metre_and_at_most_max_bins():
    assert bin_edges([5.0, 5.0], episodes=3) == [5.0, 6.0]
    assert len(bin_edges([3.0, 25.0], episodes=1000)) == 7


def test_a_span_of_one_seed_is_said_as_one():
    from navigator.evaluation.seeds import seed_span

    assert seed_span(range(100000, 100001), "world") == "world seed 100000"
    assert seed_span(range(5, 8)) == "seeds 5-7"
