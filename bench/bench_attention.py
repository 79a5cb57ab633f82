"""What `navigator eval --attention` costs: the time to fly an evaluation episode with attention on target measured
(each saliency method at its default interval, or at --every), against the same episode flown without, in the same
run.

    .venv/bin/python bench/bench_attention.py                  # about a minute
    .venv/bin/python bench/bench_attention.py --episodes 6 --every 3

Flies the shipped fly-to-target policy in summer from seeds 100000, ... in this process, as one evaluation worker
does (one math thread, one environment and pilot reused, `navigator.evaluation.episodes.fly_episode`), the variants
alternating episode by episode so that a change in the machine's load falls on all of them alike. Every variant flies
the same flights (checked: the records agree but for the attention figures). Prints milliseconds per camera step and
the ratio to the episode without attention; the pool start-up of a real evaluation (importing torch in each worker)
comes on top of both and is left out. Figures only, never pass/fail: they depend on the machine and its load.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as an evaluation worker (navigator.evaluation.episodes)

import argparse
import dataclasses
import time

from navigator.evaluation.episodes import fly_episode
from navigator.evaluation.settings import EvalSettings
from navigator.explain.attention import AttentionMeter
from navigator.explain.methods import DEFAULT_EVERY, METHODS
from navigator.pilots import make_pilot
from navigator.scenario import make_scenario_env

UNMEASURED = {"attention": None, "target_share": None, "attention_steps": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per variant (default 4)")
    parser.add_argument("--every", type=int, default=None, help="steps between measurements for both methods "
                                                                "(default: each method's own)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="episode limit (default 10)")
    args = parser.parse_args()

    settings = EvalSettings(suites=("summer",), max_seconds=args.max_seconds)
    env = make_scenario_env(settings.scenario("summer"))
    pilot = make_pilot("pretrained", env)
    variants = {"no attention": pilot}
    for method in METHODS:
        every = args.every or DEFAULT_EVERY[method]
        variants[f"{method} every {every}"] = AttentionMeter(pilot, env, method, every)
    seconds = {name: 0.0 for name in variants}
    steps = {name: 0 for name in variants}
    measured = {name: 0 for name in variants}
    for seed in range(settings.seed, settings.seed + args.episodes):
        flights = {}
        for name, flier in variants.items():
            start = time.perf_counter()
            record = fly_episode(env, flier, "pretrained", "summer", seed)
            seconds[name] += time.perf_counter() - start
            steps[name] += record.steps
            measured[name] += record.attention_steps or 0
            flights[name] = dataclasses.replace(record, **UNMEASURED)
        if len(set(flights.values())) != 1:
            raise RuntimeError(f"seed {seed}: measuring attention changed the flight")
    env.close()

    baseline = seconds["no attention"] / steps["no attention"]
    print(f"the shipped fly-to-target policy in summer, {args.episodes} episodes of at most {args.max_seconds:g} s "
          f"({steps['no attention']} camera steps) per variant, one thread:")
    for name in variants:
        per_step = seconds[name] / steps[name]
        print(f"  {name:34s} {per_step * 1e3:6.2f} ms/step  {per_step / baseline:5.2f}x   "
              f"({measured[name]} measured steps with the target in view)")


if __name__ == "__main__":
    main()
