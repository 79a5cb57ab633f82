"""Evaluation throughput (episodes per second, on 1 and 2 worker processes) of the expert and the shipped
`pretrained` pilot, and the resident memory of one evaluation worker as it flies episode after episode.

    .venv/bin/python bench/bench_eval.py                      # a few minutes
    .venv/bin/python bench/bench_eval.py --episodes 1000      # the published memory figure (long)

Throughput flies `--throughput-episodes` episodes per pilot with `navigator.evaluation.episodes.fly_episodes`, the
function `navigator eval` flies with (spawn workers, one math thread each; pool start-up included, as a user waits
for it too). Worker counts alternate round by round, and each rate is printed against 1 worker measured in the same
run. Memory flies `--episodes` episodes in one spawned process, as a worker does (one environment and one pilot,
reused), and prints its resident set size along the way: a leak shows as growth after the first episodes. Figures
only, never pass/fail: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from navigator.evaluation.episodes import fly_episode, fly_episodes
from navigator.evaluation.settings import EvalSettings


def resident_mib() -> float:
    """This process's resident set size (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rate(settings: EvalSettings, workers: int) -> float:
    """Episodes per second flying every episode of `settings` with `workers` processes."""
    keys = settings.keys()
    start = time.perf_counter()
    for _ in fly_episodes(settings, keys, workers):
        pass
    return len(keys) / (time.perf_counter() - start)


def bench_throughput(pilots: tuple[str, ...], episodes: int, rounds: int) -> None:
    print(f"throughput: {episodes} fly-to-target episodes in summer per pilot, {rounds} round(s) (median), "
          f"pool start-up included:")
    for pilot in pilots:
        settings = EvalSettings(pilots=(pilot,), suites=("summer",), episodes=episodes)
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for workers, values in rates.items():
                values.append(rate(settings, workers))
        single = statistics.median(rates[1])
        for workers, values in rates.items():
            note = "1.00x (baseline)" if workers == 1 else f"{statistics.median(values) / single:.2f}x 1 worker's rate"
            print(f"  {pilot:10s} {workers} worker(s) {statistics.median(values):6.2f} episodes/s   {note}")


def _fly_in_worker(settings: EvalSettings, marks: list[int], results: multiprocessing.Queue) -> None:
    """A worker's life: one environment and one pilot, reused for every episode; its RSS after each mark."""
    from navigator.pilots import make_pilot
    from navigator.scenario import make_scenario_env

    suite, spec = settings.suites[0], settings.pilots[0]
    env = make_scenario_env(settings.scenario(suite))
    pilot = make_pilot(spec, env)
    results.put((0, resident_mib()))
    for index, seed in enumerate(settings.seeds, start=1):
        fly_episode(env, pilot, spec, suite, seed)
        if index in marks:
            results.put((index, resident_mib()))
    env.close()
    results.put(None)


def bench_memory(pilot: str, episodes: int) -> None:
    settings = EvalSettings(pilots=(pilot,), suites=("summer",), episodes=episodes)
    marks = sorted({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, episodes} & set(range(1, episodes + 1)))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # One math thread, as `fly_episodes` gives each worker (torch reads it when first imported).
    os.environ["OMP_NUM_THREADS"] = "1"
    worker = context.Process(target=_fly_in_worker, args=(settings, marks, results))
    worker.start()
    print(f"resident memory of one worker flying {pilot} ({episodes} episodes in summer):")
    first = None
    while (entry := results.get()) is not None:
        index, mib = entry
        first = mib if index == 1 else first
        growth = f"   {mib - first:+7.1f} MiB since episode 1" if first is not None and index > 1 else ""
        print(f"  after {index:5d} episode(s) {mib:8.1f} MiB{growth}", flush=True)
    worker.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilots", default="expert,pretrained", help="comma-separated pilots")
    parser.add_argument("--throughput-episodes", type=int, default=8, help="episodes per pilot and round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=20, help="episodes the memory worker flies")
    parser.add_argument("--memory-pilot", default="pretrained")
    args = parser.parse_args()
    bench_throughput(tuple(args.pilots.split(",")), args.throughput_episodes, args.rounds)
    bench_memory(args.memory_pilot, args.episodes)


if __name__ == "__main__":
    main()
