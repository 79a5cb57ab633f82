"""Confidence intervals: Wilson's for one pilot's success rate, a hierarchical bootstrap across training seeds, and
the bootstrap of a mean over episodes (attention on target)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927) for a binomial proportion: (low, high), both in [0, 1].

    With p = successes / trials: center = (p + z²/2n) / (1 + z²/n) and
    half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n successes.
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    center = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def seed_bootstrap(outcomes: Sequence[Sequence[bool]], *, resamples: int = 10_000, level: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """Mean success of one model over its training seeds, with a hierarchical bootstrap interval.

    `outcomes[i][j]` is the success of training seed i on world j (the same worlds, in the same order, for every
    training seed). Each of `resamples` resamples draws training seeds with replacement, then worlds with
    replacement, the same drawn worlds for every drawn seed (the worlds are paired), and takes the mean success;
    the interval is the central `level` share of those means (percentile bootstrap). Where every outcome is the
    same (every world failed, say) each resample is too, and that interval would be a single point, claiming a
    certainty a few worlds cannot give: there the interval is the Wilson score interval of all outcomes pooled.
    Returns (mean success over all outcomes, low, high), all in [0, 1]. The same input and `seed`
    give the same interval (numpy's Generator(seed)). ValueError: no seeds, no worlds, rows of unequal length,
    resamples < 1 or level not in (0, 1).
    """
    table = np.asarray([[bool(outcome) for outcome in row] for row in outcomes], dtype=float)
    if len(outcomes) == 0 or table.ndim != 2 or table.shape[1] == 0:
        raise ValueError("need at least one training seed and one world, with the same worlds for every seed")
    mean, low, high = _hierarchical_bootstrap(table, resamples, level, seed)
    if table.min() == table.max():
        low, high = wilson_interval(int(table.sum()), table.size, z=NormalDist().inv_cdf(0.5 + level / 2))
    return mean, low, high


def mean_bootstrap(values: Sequence[float], *, resamples: int = 10_000, level: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """The mean of `values` (one per episode, e.g. its attention on target) with a percentile bootstrap interval:
    `seed_bootstrap`'s one-seed case, episodes resampled with replacement. Returns (mean, low, high); the same input
    and `seed` give the same interval. ValueError: no values, a non-finite one, resamples < 1 or level not in
    (0, 1)."""
    table = np.asarray([[float(value) for value in values]], dtype=float)
    if table.shape[1] == 0 or not np.isfinite(table).all():
        raise ValueError("need at least one value, all finite")
    return _hierarchical_bootstrap(table, resamples, level, seed)


def _hierarchical_bootstrap(table: np.ndarray, resamples: int, level: float,
                            seed: int) -> tuple[float, float, float]:
    """table (seeds, worlds) of numbers -> (mean, low, high), as `seed_bootstrap` describes."""
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples} and {level}")
    seeds, worlds = table.shape
    rng = np.random.Generator(np.random.PCG64(seed))
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // (seeds + worlds))  # resamples at a time: bounds the memory they take
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        drawn_seeds = rng.integers(0, seeds, (count, seeds))
        drawn_worlds = rng.integers(0, worlds, (count, worlds))
        # How often each resample drew each world, (count, worlds); then every training seed's successes on those
        # worlds, (count, seeds), summed over the drawn seeds.
        rows = drawn_worlds + worlds * np.arange(count)[:, None]
        world_counts = np.bincount(rows.ravel(), minlength=count * worlds).reshape(count, worlds)
        per_seed = world_counts @ table.T
        means[start:start + count] = np.take_along_axis(per_seed, drawn_seeds, axis=1).sum(axis=1) / (seeds * worlds)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(table.mean()), float(low), float(high)
