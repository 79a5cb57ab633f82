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

    env = sim_envs.make_env("fly-to-target", preset=args.preset, airframe=args.airframe)
    task = env.unwrapped
    rng = np.random.default_rng(args.seed)

    # Environment: full steps (physics at 240 Hz, flight controller, camera, effects, info), resets included.
    env.reset(seed=args.seed)
    episodes = 1
    start = time.perf_counter()
    for _ in range(args.steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-0.3, 0.3, 4).astype(np.float32))
        if terminated or truncated:
            env.reset(seed=args.seed + episodes)
            episodes += 1
    env_seconds = time.perf_counter() - start

    # Render-only: the same scene and camera, rendering from the vehicle's current pose, nothing else.
    env.reset(seed=args.seed)
    state = task.vehicle_state
    start = time.perf_counter()
    for _ in range(args.steps):
        task.world.onboard_image(state)
    render_seconds = time.perf_counter() - start
    env.close()

    env_rate = args.steps / env_seconds
    render_rate = args.steps / render_seconds
    camera = task.camera
    print(f"FlyToTarget, preset {args.preset}, airframe {args.airframe}, camera {camera.width}x{camera.height} "
          f"at {camera.rate_hz} Hz, physics {task.world.physics_hz} Hz, one core, {args.steps} steps "
          f"({episodes} episodes)")
    print(f"  environment: {env_rate:8.0f} camera steps/s ({env_rate / camera.rate_hz:5.1f}x real time)")
    print(f"  render-only: {render_rate:8.0f} frames/s")
    print(f"  overhead over render-only: {render_rate / env_rate - 1:+.0%} (environment time / render time = "
          f"{render_rate / env_rate:.2f})")


if __name__ == "__main__":
    main()
