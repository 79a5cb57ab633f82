"""Environment speed: camera steps per second of FlyToTarget against render-only frames per second of the same
scene and camera, measured in one run on one core. Their ratio is the environment's overhead over rendering.

    python bench/bench_env.py [--steps 3000] [--preset summer] [--airframe x500]

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import time

# One core, as the issue asks: pin BLAS threads before numpy loads, and the process to one CPU.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import sim_envs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--preset", default="summer")
    parser.add_argument("--airframe", default="x500")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    rng = np.random.default_rng(args.seed)

    # Environment: full steps (physics at 240 Hz, flight controller, camera, effects, info) of one long episode.
    # Resets are left out of both sides: they are measured separately below.
    actions = rng.uniform(-0.3, 0.3, (args.steps, 4)).astype(np.float32)
    actions[:, 2] = 0.0  # keep the vehicle in the air for the whole run
    env = sim_envs.make_env("fly-to-target", preset=args.preset, airframe=args.airframe, max_seconds=1e9)
    task = env.unwrapped
    env.reset(seed=args.seed)
    env_seconds = render_seconds = 0.0
    steps = 0
    info = {"ending": None}
    # Alternate blocks of environment steps and render-only frames of the very poses those steps visited, so that
    # both sides see the same load on the machine and the same views.
    for block in np.array_split(actions, max(1, len(actions) // 100)):
        poses = []
        start = time.perf_counter()
        for action in block:
            _, _, terminated, truncated, info = env.step(action)
            poses.append(task.vehicle_state)
            if terminated or truncated:
                break
        env_seconds += time.perf_counter() - start
        start = time.perf_counter()
        for state in poses:
            task.world.onboard_image(state)
        render_seconds += time.perf_counter() - start
        steps += len(poses)
        if info["ending"] is not None:
            break

    start = time.perf_counter()
    for seed in range(10):
        env.reset(seed=seed)
    reset_ms = (time.perf_counter() - start) / 10 * 1e3
    env.close()

    env_rate = steps / env_seconds
    render_rate = steps / render_seconds
    camera = task.camera
    print(f"FlyToTarget, preset {args.preset}, airframe {args.airframe}, camera {camera.width}x{camera.height} "
          f"at {camera.rate_hz} Hz, physics {task.world.physics_hz} Hz, one core, {steps} steps "
          f"(ending: {info['ending'] or 'none'})")
    print(f"  environment: {env_rate:8.0f} camera steps/s ({env_rate / camera.rate_hz:5.1f}x real time)")
    print(f"  render-only: {render_rate:8.0f} frames/s")
    print(f"  overhead over render-only: {render_rate / env_rate - 1:+.0%} (environment time / render time = "
          f"{render_rate / env_rate:.2f})")
    print(f"  reset (new world from a seed): {reset_ms:.1f} ms")


if __name__ == "__main__":
    main()
