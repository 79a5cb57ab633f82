"""The training loader: windows, the split by episode, normalisation statistics, shuffling and the RAM cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.dataset import (Dataset, DatasetWriter, EpisodeKey, IncompatibleDatasetsError, WindowLoader,
                               split_keys, window_starts)
from navigator.dataset.normalization import MIN_STD
from navigator.dataset.synthetic import synthetic_episode

LENGTHS = [40, 20, 70, 33, 50, 45]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Dataset:
    writer = DatasetWriter.create(tmp_path_factory.mktemp("loader") / "ds", image_size=(24, 32), recipe={})
    for seed, frames in enumerate(LENGTHS):
        writer.write(synthetic_episode(seed, frames=frames, height=24, width=32))
    return Dataset.open(writer.path)


def test_window_starts_cover_every_frame():
    assert window_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(32, 32, 16) == [0]
    assert window_starts(20, 32, 16) == [0]
    assert window_starts(0, 32, 16) == []


def test_split_is_by_episode_deterministic_and_complete():
    keys = [EpisodeKey("fly-to-target", preset, seed) for preset in ("summer", "winter") for seed in range(50)]
    train, val = split_keys(keys, 0.2, seed=3)
    assert (train, val) == split_keys(list(keys), 0.2, seed=3)
    assert sorted(train + val) == list(range(100)) and len(val) == 20
    assert split_keys(keys, 0.2, seed=4)[1] != val
    # The split depends on the keys, not on their order: shuffled input puts the same episodes in validation.
    shuffled = [keys[i] for i in np.random.default_rng(0).permutation(100)]
    assert {shuffled[i] for i in split_keys(shuffled, 0.2, seed=3)[1]} == {keys[i] for i in val}
    assert split_keys(keys[:2], 0.01, seed=0)[1] != []  # a small dataset still gets a validation episode
    # ... and training always keeps one: a single episode stays in training, whatever the fraction.
    for fraction in (0.1, 0.5, 0.99):
        assert split_keys(keys[:1], fraction, seed=0) == ([0], [])
        assert split_keys(keys[:2], fraction, seed=0)[0] != []


def test_windows_batches_and_padding_match_the_episodes(dataset):
    loader = WindowLoader(dataset, window=32, stride=16, val_fraction=0.34, split_seed=1)
    episodes = {i: dataset.read(ref.entry) for i, ref in enumerate(loader.episodes)}
    assert sorted(loader.split_episodes["train"] + loader.split_episodes["val"]) == list(range(len(LENGTHS)))
    assert len(loader.split_episodes["val"]) == 2
    for split in ("train", "val"):
        refs = loader.windows(split)
        assert len(refs) == sum(len(window_starts(LENGTHS[i], 32, 16)) for i in loader.split_episodes[split])
        batches = list(loader.batches(split, 3, shuffle=False))
        assert sum(len(b) for b in batches) == len(refs)
        rows = [(b, r) for b in batches for r in range(len(b))]
        for ref, (batch, row) in zip(refs, rows, strict=True):
            episode, span = episodes[ref.episode], slice(ref.start, ref.start + ref.length)
            assert batch.images.shape[1:] == (32, 24, 32, 3) and batch.images.dtype == np.uint8
            np.testing.assert_array_equal(batch.images[row, :ref.length], episode.images[span])
            np.testing.assert_array_equal(batch.state[row, :ref.length], episode.state[span])
            np.testing.assert_array_equal(batch.action[row, :ref.length], episode.action_label[span])
            np.testing.assert_array_equal(batch.dt[row, :ref.length], episode.dt[span])
            assert batch.mask[row].sum() == ref.length and batch.mask[row, :ref.length].all()
            assert not batch.images[row, ref.length:].any() and not batch.action[row, ref.length:].any()
    short = [r for r in loader.windows("train") + loader.windows("val") if LENGTHS[r.episode] == 20]
    assert [(r.start, r.length) for r in short] == [(0, 20)]


def test_a_window_longer_than_every_episode_batches_the_longest_episode_only(dataset):
    """Padding past every episode's end adds nothing to learn but memory: a window of 100,000 frames once filled
    20 GB and was killed. Windows that long are whole episodes, batched as long as the longest one."""
    huge = WindowLoader(dataset, window=100_000, stride=16, val_fraction=0.34, split_seed=1)
    exact = WindowLoader(dataset, window=max(LENGTHS), stride=16, val_fraction=0.34, split_seed=1)
    assert huge.window == max(LENGTHS) and huge.windows("train") == exact.windows("train")
    for a, b in zip(huge.batches("train", 4, shuffle=False), exact.batches("train", 4, shuffle=False), strict=True):
        assert a.images.shape[1] == max(LENGTHS)
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_shuffling_is_deterministic_per_seed_and_epoch(dataset):
    loader = WindowLoader(dataset, window=16, stride=8, val_fraction=0.2)

    def order(**kwargs):
        return np.concatenate([b.state[:, 0, 6] for b in loader.batches("train", 4, **kwargs)])

    np.testing.assert_array_equal(order(seed=5, epoch=1), order(seed=5, epoch=1))
    assert not np.array_equal(order(seed=5, epoch=1), order(seed=5, epoch=2))
    assert sum(len(b) for b in loader.batches("train", 4, drop_last=True)) == len(loader.windows("train")) // 4 * 4


def test_stats_are_over_the_training_split_only(dataset):
    loader = WindowLoader(dataset, window=32, stride=16, val_fraction=0.34, split_seed=1)
    train = [dataset.read(loader.episodes[i].entry) for i in loader.split_episodes["train"]]
    states = np.concatenate([e.state for e in train]).astype(np.float64)
    actions = np.concatenate([e.action_label for e in train]).astype(np.float64)
    stats = loader.stats()
    assert stats.frames == loader.frames("train") == len(states)
    np.testing.assert_allclose(stats.state_mean, states.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.state_std, np.maximum(states.std(0), MIN_STD), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats.action_mean, actions.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.action_std, np.maximum(actions.std(0), MIN_STD), rtol=1e-4, atol=1e-6)
    restored = type(stats).from_dict(json.loads(json.dumps(stats.to_dict())))
    for name in ("state_mean", "state_std", "action_mean", "action_std"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(stats, name))


def test_cache_serves_the_same_batches_within_its_budget(dataset):
    plain = WindowLoader(dataset, window=16, stride=8)
    cached = WindowLoader(dataset, window=16, stride=8, cache_bytes=1 << 30)
    for epoch in range(2):
        for a, b in zip(plain.batches("train", 4, epoch=epoch), cached.batches("train", 4, epoch=epoch),
                        strict=True):
            for name in ("images", "state", "action", "dt", "mask"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert len(plain.cache) == 0
    assert cached.cache.misses == len(cached.split_episodes["train"]) and cached.cache.hits > 0
    episodes = len(cached.split_episodes["train"])
    budget = cached.cache.bytes // 2  # every training episode is cached: half of them fit
    small = WindowLoader(dataset, window=16, stride=8, cache_bytes=budget)
    for _ in small.batches("train", 2):
        assert small.cache.bytes <= budget and len(small.cache) < episodes
    assert len(small.cache) > 0 and small.cache.misses > episodes  # evicted episodes were read again


def test_loader_refuses_datasets_of_different_image_sizes(dataset, tmp_path):
    writer = DatasetWriter.create(tmp_path / "big", image_size=(48, 64), recipe={})
    writer.write(synthetic_episode(0, frames=5))
    with pytest.raises(IncompatibleDatasetsError, match="different image sizes"):
        WindowLoader([dataset, Dataset.open(writer.path)])
