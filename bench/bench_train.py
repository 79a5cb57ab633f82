"""Speed of the whole training loop (`navigator.training.loop.train`: loading, decoding, augmentation, the optimiser
step, validation, checkpoints and TensorBoard) against the bare optimiser step of the same policy.

    .venv/bin/python bench/bench_train.py                                       # synthetic data, a few minutes
    .venv/bin/python bench/bench_train.py --data datasets/summer-fly-to-target  # a collected dataset
    .venv/bin/python bench/bench_train.py --config launch/train/fly_to_target.yaml  # the shipped recipe's settings
    .venv/bin/python bench/bench_train.py --quick   # a smoke run (tiny data, 3 rounds of 1 epoch)
    python bench/bench_train.py --device cuda       # on a GPU: the loop there against the same loop on the CPU

With `--device cuda` the loop and the bare step run on the GPU, and the same loop on the CPU joins them as a third
contender: its rate is the baseline of the GPU loop's. Each device trains every round from the same seed, so the
bench also says whether two rounds gave identical weights (same seed, same result on the same device).

The contenders run interleaved, round by round (bench_cfc.interleaved_medians), so that load from other processes
hits both alike: a round of the loop is a whole `train` of `--epochs` epochs from scratch in a fresh folder (the
first epoch decodes the episodes, later ones read the RAM cache); a round of the baseline is as many optimiser steps
(forward, masked MSE, backward, clipping, AdamW) on one batch already in memory and augmented. The ratio says how
much of the step's rate the loop keeps (1.00: nothing but the step costs time; on a loaded machine it can exceed 1,
as the loop's background thread wins it a larger share of the contended cores). A third contender makes the loop's
batches alone (read from the RAM cache and augmented, as its background thread does, nothing trained): the most the
loop could train per second, however fast the network's step. Figures only, never pass/fail: they depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bench_cfc import interleaved_medians  # bench/ is on the path of a script run from it

from navigator.config import load_config
from navigator.dataset import DatasetWriter, WindowLoader
from navigator.dataset.synthetic import synthetic_episode
from navigator.training.augment import augment
from navigator.training.config import TrainConfig
from navigator.training.loop import (EpochReport, TrainHooks, TrainingExtras, _augmented, _masked_mse, make_loader,
                                     new_policy, train, training_device)

DISTINCT = 8  # rendered synthetic episodes; the others are copies under other seeds (quicker to make, same bytes)


def synthetic_dataset(root: Path, episodes: int, frames: int) -> Path:
    rendered = [synthetic_episode(seed, frames=frames) for seed in range(min(DISTINCT, episodes))]
    writer = DatasetWriter.create(root, image_size=rendered[0].image_size, recipe={"bench": True})
    for seed in range(episodes):
        source = rendered[seed % len(rendered)]
        writer.write(dataclasses.replace(source, metadata={**source.metadata, "seed": seed}))
    return root


class EpochRates(TrainHooks):
    """The loop's own per-epoch figure (training batches only), as `navigator train` prints it."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def epoch(self, report: EpochReport) -> None:
        self.rates.append(report.frames_per_second)


def whole_loop(config: TrainConfig, scratch: Path, hooks: EpochRates,
               weights: list[dict[str, torch.Tensor]]) -> Callable[[], None]:
    """A round: `train` from scratch in a fresh folder under `scratch`; the trained weights go to `weights`."""
    runs = iter(range(1_000_000))

    def run() -> None:
        weights.append(train(config, scratch / f"run-{next(runs)}", hooks=hooks).state_dict())

    return run


def identical(weights: list[dict[str, torch.Tensor]]) -> str:
    """Whether every round trained the same weights, in words."""
    same = all(torch.equal(first, other[name]) for other in weights[1:] for name, first in weights[0].items())
    return f"{len(weights)} rounds from one seed: {'identical weights' if same else 'weights DIFFER'}"


def bare_steps(config: TrainConfig, steps: int) -> tuple[Callable[[], None], int]:
    """`steps` optimiser steps of the loop's policy on one in-memory, augmented batch, and the frames they train."""
    device = training_device(config.device)
    loader = make_loader(config, config.data)
    policy = new_policy(config, loader, {}).to(device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch = next(loader.batches("train", config.batch_size, seed=config.seed))
    images = augment(torch.from_numpy(batch.images), config.augment, torch.Generator().manual_seed(0)).to(device)
    state, dt = torch.from_numpy(batch.state).to(device), torch.from_numpy(batch.dt).to(device)
    action, mask = torch.from_numpy(batch.action).to(device), torch.from_numpy(batch.mask).to(device)

    def run() -> None:
        for _ in range(steps):
            actions, _ = policy(images, state, dt)
            loss = _masked_mse(actions, action, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
        if device.type == "cuda":  # the GPU runs behind the Python that queues its work: wait for it
            torch.cuda.synchronize(device)

    return run, steps * int(batch.mask.sum())


def batches_alone(config: TrainConfig, loader: WindowLoader, epochs: int) -> Callable[[], None]:
    """What the loop's background thread makes for `epochs` epochs (batches read from the RAM cache, each window
    augmented), with no training: the most the loop can train per second, whatever steps the network."""
    def run() -> None:
        for epoch in range(epochs):
            for _ in _augmented(loader, config, epoch, TrainingExtras()):
                pass

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a dataset folder (default: a synthetic one made in a temporary folder)")
    parser.add_argument("--config", help="a training recipe (launch/train/*.yaml) whose model, normalisation, "
                                         "batches and augmentation to use (default: TrainConfig's); its data, "
                                         "epochs, collection and DAgger rounds are the bench's")
    parser.add_argument("--episodes", type=int, default=24, help="synthetic episodes")
    parser.add_argument("--frames", type=int, default=150, help="frames per synthetic episode")
    parser.add_argument("--model", help="the policy (default: the recipe's, cfc-ncp without one)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per round of the loop")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds after which no new round starts")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the recipe's default)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the loop and the step train "
                                                        "(on a GPU, the CPU loop is measured beside them)")
    parser.add_argument("--quick", action="store_true", help="a small synthetic dataset, 3 rounds of 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.episodes, args.frames, args.epochs, args.rounds, args.budget = 8, 80, 1, 3, 1.0

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        data = args.data or str(synthetic_dataset(scratch / "data", args.episodes, args.frames))
        recipe = load_config(TrainConfig, args.config) if args.config else TrainConfig(data=("unused",))
        config = dataclasses.replace(recipe, data=(data,), out=str(scratch / "unused"), epochs=args.epochs,
                                     threads=args.threads, patience=args.epochs + 1, device=args.device,
                                     model=args.model or recipe.model, collect=None,
                                     dagger=dataclasses.replace(recipe.dagger, rounds=0))
        torch.set_num_threads(args.threads)
        loader = make_loader(config, config.data)
        batches = math.ceil(len(loader.windows("train")) / config.batch_size)
        frames = loader.frames("train")
        hooks, weights = EpochRates(), []
        bare, bare_frames = bare_steps(config, batches * args.epochs)
        contenders = {"loop": whole_loop(config, scratch / "loop", hooks, weights), "bare": bare,
                      "batches": batches_alone(config, loader, args.epochs)}
        on_gpu = config.device != "cpu"
        cpu_weights: list[dict[str, torch.Tensor]] = []
        if on_gpu:
            cpu_config = dataclasses.replace(config, device="cpu")
            contenders["cpu loop"] = whole_loop(cpu_config, scratch / "cpu", EpochRates(), cpu_weights)
        medians, rounds = interleaved_medians(contenders, args.rounds, args.budget)
        # Frames the loop trains on per epoch: every training window's real frames (windows overlap by
        # window - stride, so more than the split's frames), as the loop counts them.
        windows = sum(ref.length for ref in loader.windows("train"))
        loop_rate = windows * args.epochs / medians["loop"]
        bare_rate = bare_frames / medians["bare"]
        where = torch.cuda.get_device_name(torch.device(config.device)) if on_gpu else "CPU"
        print(f"torch {torch.__version__}, {args.threads} threads, training on {config.device} ({where}); {data}: "
              f"{frames:,} training frames in {len(loader.windows('train'))} windows of {config.window} ({batches} "
              f"batches of {config.batch_size})")
        print(f"{config.model} ({config.normalisation} normalisation{', ' + args.config if args.config else ''}), "
              f"{args.epochs} epoch(s) per round, {rounds} rounds (median):")
        print(f"  bare optimiser step      {bare_rate:8,.0f} frames/s   1.00x (baseline)")
        print(f"  whole loop, wall clock   {loop_rate:8,.0f} frames/s   {loop_rate / bare_rate:.2f}x the step's rate "
              f"(validation, checkpoints, first-epoch decode included)")
        print(f"  loop's own epoch figure  {np.median(hooks.rates):8,.0f} frames/s   "
              f"{np.median(hooks.rates) / bare_rate:.2f}x (training batches only, as `navigator train` prints it)")
        batch_rate = windows * args.epochs / medians["batches"]
        print(f"  batches alone            {batch_rate:8,.0f} frames/s   {batch_rate / bare_rate:.2f}x (read and "
              f"augmented by the loop's background thread, nothing trained: the loop's ceiling)")
        if on_gpu:
            cpu_rate = windows * args.epochs / medians["cpu loop"]
            print(f"  whole loop on the CPU    {cpu_rate:8,.0f} frames/s   the {config.device} loop runs at "
                  f"{loop_rate / cpu_rate:.2f}x its rate")
            print(f"  {config.device}: {identical(weights)}; cpu: {identical(cpu_weights)}")
        else:
            print(f"  {identical(weights)}")


if __name__ == "__main__":
    main()
