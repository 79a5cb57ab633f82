"""What `navigator fly --video` costs: steps per second of the shipped policy flying with and without the video, in
one run, on the same seeds, with episodes alternating so that both sides see the same load on the machine; then
where the difference goes, per frame: the side-by-side frame (chase view and all), and H.264 encoding (timed on the
recorded frames, all queued at once so that the encoder sets the pace). For scale, it also
times the chase view as it was drawn before (TinyRenderer for everything, ground included) on the same poses.

    python bench/bench_video.py [--episodes 4] [--max-seconds 8] [--preset summer]

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

# The policy's torch on one thread, as in the tests: on a busy machine a second spinning thread only adds noise.
# The encoder's thread is left free: using a second core is what it is for.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import sim_envs  # noqa: E402
from navigator.pilots import make_pilot  # noqa: E402
from navigator.rollout import run_episode  # noqa: E402
from navigator.video import VideoWriter  # noqa: E402
from sim_envs.camera import Renderer  # noqa: E402

CHASE_SIZE = (320, 240)  # what side_by_side_frame records by default


def _fly(env, pilot, seed: int, hook=None) -> tuple[int, float]:
    start = time.perf_counter()
    result = run_episode(env, pilot, seed, on_step=hook)
    return result.steps, time.perf_counter() - start


def _full_tinyrenderer_ms(task, states) -> float:
    """Per-frame cost of the former chase view (TinyRenderer draws everything) on the given poses."""
    world = task.world
    distance = max(1.5, 12 * world.airframe.arm_length)
    renderer = Renderer(world.chase_client, *CHASE_SIZE, 70.0, 0.7 * distance, task.camera.far)
    start = time.perf_counter()
    for state in states:
        x, y, z = state.position
        eye = (x - distance * math.cos(state.yaw), y - distance * math.sin(state.yaw), z + 0.45 * distance)
        renderer.render(eye, (x - eye[0], y - eye[1], z - eye[2]), (0.0, 0.0, 1.0))
    return (time.perf_counter() - start) / len(states) * 1e3


def _encode_ms(frames: list[np.ndarray], fps: float, folder: Path) -> float:
    """Per-frame H.264 cost: frames ready at once, so the writer's queue stays full and the time is the encoder's."""
    start = time.perf_counter()
    with VideoWriter(folder / "encode.mp4", fps) as video:
        for frame in frames:
            video.write(frame)
    return (time.perf_counter() - start) / len(frames) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--preset", default="summer")
    parser.add_argument("--seed", type=int, default=5000)
    args = parser.parse_args()

    env = sim_envs.make_env("fly-to-target", preset=args.preset, airframe="x500", max_seconds=args.max_seconds)
    task = env.unwrapped
    pilot = make_pilot("pretrained", env)
    _fly(env, pilot, args.seed)  # warm-up: imports, first-call allocations

    plain_steps = plain_seconds = video_steps = video_seconds = render_seconds = 0.0
    frames: list[np.ndarray] = []
    states = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.episodes):
            seed = args.seed + index
            steps, seconds = _fly(env, pilot, seed)
            plain_steps, plain_seconds = plain_steps + steps, plain_seconds + seconds

            video = VideoWriter(Path(folder) / f"{seed}.mp4", task.camera.rate_hz)

            def hook(observation, action, info) -> None:
                nonlocal render_seconds
                start = time.perf_counter()
                frame = task.side_by_side_frame(CHASE_SIZE)
                render_seconds += time.perf_counter() - start
                video.write(frame, f"seed {seed}  t {info['time']:5.1f}s")
                if len(frames) < 300:
                    frames.append(frame)
                    states.append(task.vehicle_state)

            start = time.perf_counter()
            steps, _ = _fly(env, pilot, seed, hook)
            video.close()  # finishing the encoding counts
            video_steps, video_seconds = video_steps + steps, video_seconds + time.perf_counter() - start
        encode_ms = _encode_ms(frames, task.camera.rate_hz, Path(folder))
    former_ms = _full_tinyrenderer_ms(task, states)
    env.close()

    plain_rate, video_rate = plain_steps / plain_seconds, video_steps / video_seconds
    step_ms = 1e3 / plain_rate
    render_ms = render_seconds / video_steps * 1e3
    chase_w, chase_h = CHASE_SIZE
    print(f"fly --video: pretrained policy, fly-to-target, {args.preset}, {args.episodes} episodes of at most "
          f"{args.max_seconds:g} s, chase view {chase_w}x{chase_h}, {os.cpu_count()} CPUs")
    print(f"  without video: {plain_rate:7.1f} steps/s ({step_ms:5.2f} ms/step)")
    print(f"  with video:    {video_rate:7.1f} steps/s ({1e3 / video_rate:5.2f} ms/step)")
    print(f"  slowdown: {plain_rate / video_rate:.2f}x (time with video / time without)")
    print("  per frame, as multiples of a step without video:")
    print(f"    side-by-side frame (chase view, onboard upscale): {render_ms:5.2f} ms = {render_ms / step_ms:4.2f} "
          f"steps")
    print(f"    H.264 encoding (background thread):               {encode_ms:5.2f} ms = {encode_ms / step_ms:4.2f} "
          f"steps")
    print(f"    former chase view, TinyRenderer for everything:   {former_ms:5.2f} ms = {former_ms / step_ms:4.2f} "
          f"steps")


if __name__ == "__main__":
    main()
