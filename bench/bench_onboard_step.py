"""One onboard control step of the default bundle on one thread: preprocessing a 320x240 camera frame (centred crop
to the trained 80 degree view from a 100 degree camera, resize to 64x48; normalisation is inside the graph) plus
inference through ONNX Runtime, beside the same step in PyTorch eager, in the same run.

Prints median, p90 and p99 milliseconds per step of each and the ratio of the medians (goal in issue 9: ONNX Runtime
median under 1 ms and at least 5x faster than PyTorch). Figures only, never pass/fail: they depend on the machine and
its load. The two contenders alternate step by step on the same frames, so load from other processes hits both.

    .venv/bin/python bench/bench_onboard_step.py                      # the shipped fly-to-target bundle, ~10 s
    .venv/bin/python bench/bench_onboard_step.py --bundle bundles/NAME --steps 5000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from navigator.onboard.bundle import BundlePolicy, load_bundle  # noqa: E402
from navigator.pilots import pretrained_checkpoint  # noqa: E402
from policies.checkpoint import load_checkpoint  # noqa: E402
from policies.preprocessing import crop_and_resize  # noqa: E402

DEFAULT_BUNDLE = Path(__file__).resolve().parent.parent / "policies" / "pretrained" / "bundles" / "fly-to-target"
CAMERA = (320, 240, 100.0)  # width, height, horizontal field of view (deg): the SITL camera's default


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return (f"median {np.median(ms):.3f} ms  p90 {np.percentile(ms, 90):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--steps", type=int, default=2000, help="steps timed per contender")
    args = parser.parse_args()

    torch.set_num_threads(1)
    bundle = load_bundle(args.bundle)
    checkpoint = pretrained_checkpoint(bundle.task)
    if hashlib.sha256(checkpoint.read_bytes()).hexdigest() != bundle.manifest["source"]["checkpoint_sha256"]:
        sys.exit(f"{args.bundle} was not exported from {checkpoint}: give a bundle of the shipped policy")
    policy, _ = load_checkpoint(checkpoint)
    runtime = BundlePolicy(bundle, threads=1)
    spec = bundle.image_spec_for(*CAMERA)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (64, CAMERA[1], CAMERA[0], 3), dtype=np.uint8)
    states = rng.normal(size=(64, 7)).astype(np.float32)
    dt = bundle.dt

    cropped = np.stack([crop_and_resize(frame, spec) for frame in frames])

    def onnx_step(index: int, preprocess: bool = True) -> np.ndarray:
        image = crop_and_resize(frames[index % 64], spec) if preprocess else cropped[index % 64]
        return runtime.step(image, states[index % 64], dt)

    hidden = None

    def torch_step(index: int, preprocess: bool = True) -> np.ndarray:
        nonlocal hidden
        image = crop_and_resize(frames[index % 64], spec) if preprocess else cropped[index % 64]
        with torch.inference_mode():
            action, hidden = policy.step(torch.from_numpy(image)[None], torch.from_numpy(states[index % 64])[None],
                                         hidden, dt)
        return action[0].numpy()

    for index in range(50):  # warm-up (and a check that both compute the same step)
        np.testing.assert_allclose(onnx_step(index), torch_step(index), atol=1e-4)
    contenders = {"onnxruntime": onnx_step, "torch eager": torch_step,
                  "preprocessing only": lambda i: crop_and_resize(frames[i % 64], spec),
                  "onnxruntime inference only": lambda i: onnx_step(i, preprocess=False),
                  "torch inference only": lambda i: torch_step(i, preprocess=False)}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for index in range(args.steps):
        for name, run in contenders.items():
            start = time.perf_counter()
            run(index)
            times[name].append(time.perf_counter() - start)

    print(f"bundle {args.bundle} ({bundle.manifest['model']}, {bundle.manifest['onnx']['precision']}, "
          f"{bundle.manifest['parameter_counts']['total']:,} parameters); camera {CAMERA[0]}x{CAMERA[1]} "
          f"{CAMERA[2]:.0f} deg -> {spec.output_width}x{spec.output_height} {spec.output_hfov_deg:.0f} deg; "
          f"1 thread; {args.steps} steps each")
    for name, seconds in times.items():
        print(f"  {name:<27} {percentiles(seconds)}")
    ratio = np.median(times["torch eager"]) / np.median(times["onnxruntime"])
    inference = np.median(times["torch inference only"]) / np.median(times["onnxruntime inference only"])
    print(f"  ONNX Runtime is {ratio:.1f}x faster than PyTorch eager per step (ratio of medians, preprocessing "
          f"included in both), {inference:.1f}x on inference alone")


if __name__ == "__main__":
    main()
