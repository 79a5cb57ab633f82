"""Why fly-to-target fails among decoys: how often a decoy is in the camera's view at the start, and the success
rate of a recorded evaluation with and without one there.

Two presets place the same 4 decoys, spheres of the target's size at least 3 m from it, at the same places for the
same seed (sim_envs/layout.py): `twins` paints them in the target's own colour, `distractors` in hues far from it
(blue, yellow, cyan, white). The target starts inside the camera's view. Under `twins` a decoy in view and nearer
than the target is a second sphere no image can tell from the target; under `distractors` it is a salient object
the policy should ignore. This script rebuilds each evaluated world (its layout only depends on the preset and the
seed), projects the decoys into the onboard camera at the start pose (within the horizontal and vertical field of
view, in front of the camera; trunks that might hide them are ignored), and splits the recorded episodes:

    .venv/bin/python bench/bench_distractors.py                       # twins in the shipped report: about 20 s
    .venv/bin/python bench/bench_distractors.py --suite distractors   # the same worlds, decoys in other colours
    .venv/bin/python bench/bench_distractors.py --results reports/NAME/results.json --pilot runs/x/best.pt

Figures only, with Wilson 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from navigator.evaluation.stats import wilson_interval  # noqa: E402
from navigator.scenario import ScenarioConfig, make_scenario_env  # noqa: E402


def in_view(eye: np.ndarray, forward: np.ndarray, up: np.ndarray, point: np.ndarray, half_h: float,
            half_v: float) -> bool:
    """Whether `point` lies in front of the camera at `eye` and inside its field of view (half angles, radians)."""
    direction = point - eye
    ahead = float(direction @ forward)
    if ahead <= 0.0:
        return False
    right = np.cross(forward, up)
    return abs(math.atan2(float(direction @ right), ahead)) < half_h and \
        abs(math.atan2(float(direction @ up), ahead)) < half_v


def decoys_in_view(env, seed: int) -> tuple[int, int]:
    """(decoys in the camera's view at the start, of them nearer than the target) for world `seed`."""
    env.reset(seed=seed)
    world = env.unwrapped
    eye, forward, up = (np.asarray(v, float) for v in world.world.onboard_pose(world.vehicle_state))
    camera = world.camera
    half_h, half_v = math.radians(camera.fov_deg) / 2, math.radians(camera.vertical_fov_deg) / 2
    target = np.asarray(world.plan.targets[0], float)
    decoys = [np.asarray(decoy.position, float) for decoy in world.layout.decoys]
    seen = [d for d in decoys if in_view(eye, forward, up, d, half_h, half_v)]
    nearer = sum(np.linalg.norm(d - eye) < np.linalg.norm(target - eye) for d in seen)
    return len(seen), int(nearer)


def rate(successes: list[bool]) -> str:
    if not successes:
        return "no episodes"
    low, high = wilson_interval(sum(successes), len(successes))
    return f"{sum(successes)}/{len(successes)} = {sum(successes) / len(successes):.0%} ({low:.0%}-{high:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "reports" / "shipped-fly-to-target" / "results.json")
    parser.add_argument("--suite", default="twins")
    parser.add_argument("--pilot", default="pretrained")
    args = parser.parse_args()
    document = json.loads(args.results.read_text())
    episodes = [e for e in document["episodes"] if e["suite"] == args.suite and e["pilot"] == args.pilot]
    if not episodes:
        raise SystemExit(f"{args.results} has no {args.suite} episodes of pilot {args.pilot}")
    settings = document["settings"]
    env = make_scenario_env(ScenarioConfig(task=settings["task"], preset=args.suite,
                                           airframe=settings.get("airframe", "x500")))
    groups: dict[str, list[bool]] = {"no decoy in view": [], "a decoy in view, farther than the target": [],
                                     "a decoy in view and nearer than the target": []}
    for episode in episodes:
        seen, nearer = decoys_in_view(env, episode["seed"])
        key = "no decoy in view" if not seen else "a decoy in view and nearer than the target" if nearer else \
            "a decoy in view, farther than the target"
        groups[key].append(bool(episode["success"]))
    env.close()
    print(f"{args.suite}, {args.pilot}, {len(episodes)} episodes of {args.results}:")
    print(f"  all: {rate([s for group in groups.values() for s in group])}")
    for name, successes in groups.items():
        print(f"  {name} at the start: {rate(successes)}")
    endings: dict[str, int] = {}
    for episode in episodes:
        endings[episode["ending"]] = endings.get(episode["ending"], 0) + 1
    print(f"  endings: {', '.join(f'{k} {v}' for k, v in sorted(endings.items()))}")


if __name__ == "__main__":
    main()
