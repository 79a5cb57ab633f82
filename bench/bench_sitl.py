"""Rehearsal in SITL beside the in-process evaluation of the same bundle on the same seeds, and the onboard loop's
latency.

    .venv/bin/python bench/bench_sitl.py                       # 50 seeds, PX4 flavour: about 15 minutes
    .venv/bin/python bench/bench_sitl.py --episodes 10 --autopilot ardupilot

In-process: `navigator fly --pilot BUNDLE` (ONNX Runtime, the policy's own 64x48 camera, no network). SITL: one
`navigator sitl` episode per seed (the 320x240, 100 deg stream) flown by `navigator onboard --engage` in a second
process over MAVLink on loopback (tests/rehearsal_support.py, the harness of the rehearsal tests). Per seed both
meet the same world. Printed: success with Wilson 95% intervals, the difference in points (the goal: within 10), how
many seeds agree, and from the onboard flight logs the age of the frame each step used plus its preprocessing and
inference time (percentiles, ms), with the SITL's step overruns. Figures only, never pass/fail: real-time runs depend
on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from navigator.evaluation.stats import wilson_interval  # noqa: E402
from tests.rehearsal_support import BUNDLE, SEED, rehearse  # noqa: E402


def in_process(bundle: Path, seed: int, episodes: int) -> list[bool]:
    """Success per seed of the bundle flown by `navigator fly` in this machine's simulator."""
    result = subprocess.run([sys.executable, "-m", "navigator.cli", "fly", "--pilot", str(bundle), "--task",
                             "fly-to-target", "--episodes", str(episodes), "--seed", str(seed), "--json"],
                            capture_output=True, text=True, check=True, cwd=REPO)
    return [bool(episode["success"]) for episode in json.loads(result.stdout)["episodes"]]


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"median {p50:.2f} · p90 {p90:.2f} · p99 {p99:.2f}"


def rate(successes: list[bool]) -> str:
    low, high = wilson_interval(sum(successes), len(successes))
    return f"{sum(successes)}/{len(successes)} = {sum(successes) / len(successes):.0%} (95% {low:.0%}-{high:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--autopilot", default="px4", choices=("px4", "ardupilot"))
    parser.add_argument("--bundle", type=Path, default=BUNDLE)
    args = parser.parse_args()

    print(f"in-process: navigator fly --pilot {args.bundle} on seeds {args.seed}..{args.seed + args.episodes - 1}")
    local = in_process(args.bundle, args.seed, args.episodes)
    sitl: list[bool] = []
    frame_age_ms: list[float] = []
    compute_ms: list[float] = []
    overruns = steps = 0
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.episodes):
            seed = args.seed + index
            run = rehearse(Path(scratch) / str(seed), sys.executable, args.autopilot, seed=seed, bundle=args.bundle)
            episode = run.episodes[0]
            sitl.append(bool(episode["success"]))
            overruns += episode["overruns"]
            steps += episode["steps"]
            for row in run.rows:
                if row["safety"] == "ENGAGED" and row["inference_ms"] is not None:
                    frame_age_ms.append(1000 * row["frame_age_s"])
                    compute_ms.append(row["inference_ms"])
            print(f"  seed {seed}: in-process {'success' if local[index] else 'failure'}, SITL {episode['ending']} "
                  f"({episode['time_s']:.1f} s, {episode['overruns']} overruns)", flush=True)
    agree = sum(a == b for a, b in zip(local, sitl))
    print(f"in-process success: {rate(local)}")
    print(f"SITL + onboard ({args.autopilot}) success: {rate(sitl)}")
    print(f"difference: {100 * (sum(sitl) - sum(local)) / args.episodes:+.0f} points (goal: within 10); "
          f"{agree}/{args.episodes} seeds end the same way")
    print(f"frame age when used (ms): {percentiles(frame_age_ms)}")
    print(f"preprocessing + inference per step (ms): {percentiles(compute_ms)}")
    print(f"SITL step overruns: {overruns} of {steps} steps ({overruns / max(steps, 1):.1%})")


if __name__ == "__main__":
    main()
