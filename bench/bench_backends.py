"""Roll-out backends: episodes per second recorded by `navigator collect` on the local backend and on Ray (a local
Ray instance started by the run), with 1 and 2 workers, and Ray's overhead per episode, all in one run.

    python bench/bench_backends.py [--episodes 12] [--seconds 3]

Throughput is steady state: from the first episode's arrival to the last's (start-up, reported apart, is excluded),
so it is (episodes - 1) / that time. Expert pilot, fly-to-target in summer, episodes cut at --seconds; the local
backend with one worker flies in this process, Ray always in actors (the driver writes while they fly). Ratios are
against the local backend with the same number of workers. Ray's overhead per episode is what `run_jobs` costs per
job beyond the work itself, on jobs that do nothing (`abs`) and on jobs that return an episode file's worth of bytes
(`bytes(n)`), one worker, local spawn pool against a Ray actor. Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from navigator.backends import Backend, run_jobs
from navigator.collect import CollectConfig, CollectPart, collect, open_for_collection


def measure(episodes: int, seconds: float, workers: int, backend: Backend) -> tuple[float, float, float]:
    """(start-up seconds to the first episode, steady episodes per second, stored bytes per episode)."""
    config = CollectConfig(parts=(CollectPart(episodes=episodes),), max_seconds=seconds, workers=workers,
                           backend=backend)
    arrivals: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "ds"
        writer, _ = open_for_collection(out, config, resume=False)
        start = time.perf_counter()
        collect(out, config, writer, lambda _: arrivals.append(time.perf_counter()))
        size = sum(p.stat().st_size for p in (out / "episodes").iterdir())
    return arrivals[0] - start, (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), size / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds per episode")
    args = parser.parse_args()

    print(f"{args.episodes} fly-to-target episodes in summer, expert, {args.seconds:g} s each; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    local = {}
    for workers in (1, 2):
        for backend in (Backend(), Backend("ray")):
            startup, rate, size = measure(args.episodes, args.seconds, workers, backend)
            local.setdefault(workers, rate)
            print(f"  {backend.kind:5s} {workers} worker{'s' if workers > 1 else ' '}: {rate:6.2f} episodes/s "
                  f"({rate / local[workers]:.2f} of local)  start-up {startup:5.1f} s  {size / 1e6:.2f} MB/episode")

    episode_bytes = round(size)
    for function, job, what in ((abs, 1, "empty job"), (bytes, episode_bytes, f"{episode_bytes / 1e3:.0f} kB result")):
        cost = {backend.kind: per_job(function, job, 300, backend) for backend in (Backend(), Backend("ray"))}
        print(f"  per {what}: local {1e3 * cost['local']:.2f} ms, ray {1e3 * cost['ray']:.2f} ms: Ray's overhead "
              f"{1e3 * (cost['ray'] - cost['local']):+.2f} ms/episode ({cost['ray'] / cost['local']:.1f}x local)")


def per_job(function, job, jobs: int, backend: Backend) -> float:
    """Seconds per job of `function(job)` through run_jobs with one worker, from the first result to the last."""
    arrivals = [time.perf_counter() for _ in run_jobs(function, [job] * jobs, 1, backend)]
    return (arrivals[-1] - arrivals[0]) / (jobs - 1)


if __name__ == "__main__":
    main()
