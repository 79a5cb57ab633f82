"""Training throughput of `navigator train` in one process against two data-parallel processes (`--nproc 2`:
torchrun, DistributedDataParallel over gloo on loopback), on the same synthetic data and global batch.

    .venv/bin/python bench/bench_ddp.py            # a few minutes
    .venv/bin/python bench/bench_ddp.py --quick    # a smoke run

Contenders, run as the user runs them (a fresh `navigator train` each, interleaved round by round so that load from
other processes hits all alike):
- 1 process x 1 thread, 1 process x T threads (T = the cores, what one process can use anyway),
- N processes x 1 thread each (N = --nproc, default 2).
The figure is the loop's own frames/s of the training batches (what `navigator train` prints per epoch; under
torchrun rank 0's count of the whole group's frames over its epoch time), median over the epochs after the first
(which decodes the episodes) and the rounds; the wall clock of a whole run, start-up included, is printed beside.
Figures only, never pass/fail: with two cores, two processes compete with each other and with everything else on
the machine, so little or no gain is expected; the ratio is printed as measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from bench_train import synthetic_dataset  # bench/ is on the path of a script run from it

from navigator.training.launcher import usable_cpus

ROOT = Path(__file__).resolve().parents[1]


def run_training(recipe: Path, out: Path, processes: int) -> tuple[list[float], float]:
    """One `navigator train` of `recipe` into `out` with `processes` processes: (frames/s of each epoch, wall
    seconds of the whole command)."""
    command = [sys.executable, "-m", "navigator", "train", "--config", str(recipe), "--out", str(out)]
    if processes > 1:
        command += ["--nproc", str(processes)]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    history = json.loads((out / "history.json").read_text())
    return [epoch["frames_per_second"] for epoch in history], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=24, help="synthetic episodes")
    parser.add_argument("--frames", type=int, default=150, help="frames per synthetic episode")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is left out)")
    parser.add_argument("--batch-size", type=int, default=16, help="the global batch, in windows")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each contender")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the data-parallel contender")
    parser.add_argument("--quick", action="store_true", help="8 episodes of 80 frames, 2 epochs, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.episodes, args.frames, args.epochs, args.rounds = 8, 80, 2, 1
    cores = usable_cpus()

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        data = synthetic_dataset(scratch / "data", args.episodes, args.frames)
        contenders = {(1, 1): "1 process  x 1 thread ", (1, cores): f"1 process  x {cores} threads",
                      (args.nproc, 1): f"{args.nproc} processes x 1 thread "}
        recipes = {}
        for processes, threads in contenders:
            recipe = scratch / f"recipe-{processes}x{threads}.yaml"
            recipe.write_text(yaml.safe_dump({"data": [str(data)], "epochs": args.epochs, "threads": threads,
                                              "batch_size": args.batch_size, "patience": args.epochs + 1}))
            recipes[processes, threads] = recipe
        rates: dict[tuple[int, int], list[float]] = {key: [] for key in contenders}
        walls: dict[tuple[int, int], list[float]] = {key: [] for key in contenders}
        for index in range(args.rounds):
            for key in contenders:
                epochs, wall = run_training(recipes[key], scratch / f"run-{key[0]}x{key[1]}-{index}", key[0])
                rates[key] += epochs[1:] or epochs
                walls[key].append(wall)

    print(f"torch {torch.__version__}, gloo on loopback, {cores} usable cores; {args.episodes} synthetic episodes of "
          f"{args.frames} frames, global batch {args.batch_size} windows, {args.epochs} epochs per run, "
          f"{args.rounds} round(s)")
    baseline = statistics.median(rates[1, 1])
    for key, name in contenders.items():
        rate = statistics.median(rates[key])
        wall = statistics.median(walls[key])
        print(f"  {name}  {rate:8,.0f} frames/s  {rate / baseline:5.2f}x   whole run {wall:6.1f} s (start-up included)")
    ratio = statistics.median(rates[args.nproc, 1]) / statistics.median(rates[1, cores])
    print(f"{args.nproc} processes against one process using the same {cores} cores: {ratio:.2f}x")


if __name__ == "__main__":
    main()
