"""Dataset storage and training-loader speed on a synthetic dataset made in a temporary folder.

    .venv/bin/python bench/bench_loader.py [--episodes 48] [--frames 300] [--image-noise 0]

Prints bytes per frame, writing speed, and windows/s and frames/s of the WindowLoader from disk and from its RAM
cache, against a baseline measured in the same run: a bare np.load of the same files and arrays. `--image-noise`
adds Gaussian pixel noise (std in grey levels), the worst case for compression (like the `noise` preset).
Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from navigator.dataset import Dataset, DatasetWriter, WindowLoader
from navigator.dataset.synthetic import synthetic_episode

DISTINCT = 8  # rendered episodes; the rest are copies under other seeds (same bytes per frame, far quicker to make)


def make_dataset(root: Path, episodes: int, frames: int, noise: float) -> tuple[Dataset, float]:
    rng = np.random.default_rng(0)
    rendered = [synthetic_episode(seed, frames=frames) for seed in range(min(DISTINCT, episodes))]
    writer = DatasetWriter.create(root, image_size=rendered[0].image_size, recipe={"bench": True})
    spent = 0.0
    for seed in range(episodes):
        source = rendered[seed % len(rendered)]
        images = source.images
        if noise > 0:
            images = np.clip(images + rng.normal(0, noise, images.shape), 0, 255).astype(np.uint8)
        episode = dataclasses.replace(source, images=images, metadata={**source.metadata, "seed": seed})
        start = time.perf_counter()
        writer.write(episode)
        spent += time.perf_counter() - start
    return Dataset.open(root), spent


def baseline_frames_per_s(dataset: Dataset) -> float:
    """What the loader cannot beat from disk: np.load of the arrays it reads, nothing else."""
    start = time.perf_counter()
    frames = 0
    for entry in dataset.entries:
        with np.load(dataset.episode_path(entry), allow_pickle=False) as npz:
            arrays = [npz[name] for name in ("images", "state", "action_label", "dt")]
        frames += arrays[0].shape[0]
    return frames / (time.perf_counter() - start)


def epoch_rate(loader: WindowLoader, batch_size: int, epoch: int) -> tuple[float, int]:
    start = time.perf_counter()
    windows = sum(len(batch) for batch in loader.batches("train", batch_size, epoch=epoch))
    return windows / (time.perf_counter() - start), windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--image-noise", type=float, default=0.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        dataset, write_s = make_dataset(Path(folder) / "ds", args.episodes, args.frames, args.image_noise)
        frames = sum(e.frames for e in dataset.entries)
        stored = sum(dataset.episode_path(e).stat().st_size for e in dataset.entries)
        height, width = dataset.manifest.image_size
        raw = height * width * 3 + 4 * (7 + 4 + 4 + 1) + 8
        print(f"dataset: {len(dataset)} episodes x {args.frames} frames of {width}x{height}, image noise "
              f"{args.image_noise}")
        print(f"storage: {stored / frames:,.0f} bytes/frame on disk (raw arrays {raw:,} bytes/frame, "
              f"{raw * frames / stored:.1f}x); 1,000 episodes x 300 frames -> {stored / frames * 3e5 / 1e9:.2f} GB")
        print(f"writing: {len(dataset) / write_s:.1f} episodes/s ({frames / write_s:,.0f} frames/s), one process, "
              f"fsync included")

        baseline = baseline_frames_per_s(dataset)
        print(f"baseline np.load of the same arrays: {baseline:,.0f} frames/s "
              f"({baseline / args.frames:.0f} episodes/s)")

        disk = WindowLoader(dataset, window=args.window, stride=args.stride, cache_bytes=0)
        rate, windows = epoch_rate(disk, args.batch_size, 0)
        print(f"loader from disk: {rate:,.0f} windows/s ({rate * args.window:,.0f} frames/s in windows; "
              f"{windows} windows of {args.window}, stride {args.stride}, batch {args.batch_size})")

        cached = WindowLoader(dataset, window=args.window, stride=args.stride, cache_bytes=8 << 30)
        warm, _ = epoch_rate(cached, args.batch_size, 0)
        rate, _ = epoch_rate(cached, args.batch_size, 1)
        print(f"loader from RAM cache: {rate:,.0f} windows/s ({rate * args.window:,.0f} frames/s); first epoch "
              f"(filling it) {warm:,.0f} windows/s; cache holds {cached.cache.bytes / 1e6:,.0f} MB")
        start = time.perf_counter()
        cached.stats()
        print(f"normalisation statistics over {cached.frames('train'):,} training frames: "
              f"{time.perf_counter() - start:.2f} s (images not decoded)")


if __name__ == "__main__":
    main()
