"""How much latency a policy tolerates: closed-loop success when its commands reach the vehicle, or the vehicle's
state reaches it, whole control steps late (33 ms each at 30 Hz), beside no delay in the same run.

    .venv/bin/python bench/bench_latency.py                              # the shipped fly-to-target bundle, 20 seeds
    .venv/bin/python bench/bench_latency.py --pilot runs/NAME/best.pt --episodes 50

On a real drone a command crosses the companion computer's MAVLink link and the autopilot's velocity loop, and the
state it sees left the autopilot earlier: tens of milliseconds each way. The simulator applies a command at the next
step; this bench holds it back `command` steps (zero velocity until the first arrives) and shows the policy the state
of `state` steps ago, the camera frame staying fresh (the video path is separate). `navigator sitl --fault
mavlink-latency:MS` puts the same delay on a real link. Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from navigator.evaluation.stats import wilson_interval  # noqa: E402
from navigator.pilots import make_pilot  # noqa: E402
from navigator.scenario import HELD_OUT_SEED  # noqa: E402
from sim_envs import make_env  # noqa: E402

DEFAULT_PILOT = REPO / "policies" / "pretrained" / "bundles" / "fly-to-target"
DELAYS = ((0, 0), (1, 0), (2, 0), (3, 0), (0, 3), (1, 1), (3, 3))  # (command, state) steps


def fly(pilot_spec: str, task: str, seed: int, command_delay: int, state_delay: int) -> str:
    """One episode with delayed commands and state; its ending."""
    env = make_env(task)
    try:
        pilot = make_pilot(pilot_spec, env)
        observation, info = env.reset(seed=seed)
        pilot.reset()
        commands = collections.deque([np.zeros(4, np.float32)] * command_delay)
        states = collections.deque([observation["state"]] * state_delay)
        while True:
            states.append(observation["state"])
            seen = {"image": observation["image"], "state": states.popleft()}
            commands.append(pilot.act(seen, info))
            observation, _, terminated, truncated, info = env.step(commands.popleft())
            if terminated or truncated:
                return info["ending"]
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pilot", default=str(DEFAULT_PILOT), help="a bundle, a checkpoint or 'pretrained'")
    parser.add_argument("--task", default="fly-to-target")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    args = parser.parse_args()
    baseline = None
    print(f"{args.pilot} on {args.task}, seeds {args.seed}..{args.seed + args.episodes - 1}, 30 Hz steps of 33 ms")
    for command_delay, state_delay in DELAYS:
        endings = [fly(args.pilot, args.task, args.seed + i, command_delay, state_delay)
                   for i in range(args.episodes)]
        successes = endings.count("success")
        low, high = wilson_interval(successes, len(endings))
        baseline = successes if baseline is None else baseline
        others = ", ".join(f"{name} {count}" for name, count in collections.Counter(endings).items()
                           if name != "success")
        print(f"command +{33 * command_delay:3d} ms, state +{33 * state_delay:3d} ms: success {successes}/"
              f"{len(endings)} ({low:.0%}-{high:.0%}), {successes - baseline:+d} vs no delay"
              f"{'; ' + others if others else ''}", flush=True)


if __name__ == "__main__":
    main()
