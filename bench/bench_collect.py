"""Collection throughput: frames per second recorded by `navigator collect` with 1 and 2 workers, beside the
single-environment step rate of the same episodes flown by the expert without recording, all in one run.

    python bench/bench_collect.py [--episodes 8]

The ratios show what recording (images kept, compression, checksums, atomic writes) costs and what parallel
workers win. Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from navigator.collect import CollectConfig, CollectPart, collect, open_for_collection
from navigator.pilots import ExpertPilot
from navigator.rollout import run_episode
from navigator.scenario import make_scenario_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()

    base = CollectConfig(parts=(CollectPart(episodes=args.episodes),))
    env = make_scenario_env(base.scenario(base.keys()[0]))
    pilot = ExpertPilot(env)
    start = time.perf_counter()
    steps = sum(run_episode(env, pilot, key.seed).steps for key in base.keys())
    env.close()
    baseline = steps / (time.perf_counter() - start)
    print(f"{args.episodes} fly-to-target episodes in summer, {steps} camera frames")
    print(f"  single environment, expert, no recording: {baseline:7.0f} steps/s  (1.00)")

    for workers in (1, 2):
        config = CollectConfig(parts=base.parts, workers=workers)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "ds"
            writer, _ = open_for_collection(out, config, resume=False)
            start = time.perf_counter()
            frames = sum(c.frames for c in collect(out, config, writer))
            rate = frames / (time.perf_counter() - start)
            size = sum(p.stat().st_size for p in (out / "episodes").iterdir())
        print(f"  collect, {workers} worker{'s' if workers > 1 else ' '}:                   {rate:7.0f} frames/s "
              f"({rate / baseline:.2f})  {size / frames:,.0f} bytes/frame on disk")


if __name__ == "__main__":
    main()
