"""Export a policy to a bundle for the onboard runtime: policy.onnx (the single-step graph, weights inside) and
policy.json (its manifest: camera and preprocessing, action limits, rates, hidden state, checksum, provenance).

examples:
  navigator export --checkpoint pretrained --out bundles/fly-to-target        # the shipped fly-to-target policy
  navigator export --checkpoint pretrained --task hike --out bundles/hike
  navigator export --checkpoint runs/NAME/best.pt --out bundles/NAME
  navigator export --checkpoint runs/NAME/best.pt --out bundles/NAME-int8 --quantize int8

Export verifies itself: it flies --verify-episodes whole episodes in the simulator with the PyTorch policy (world
seeds from --seed, outside the checkpoint's training seeds), replays every step through ONNX Runtime with the hidden
state fed back, and fails, writing nothing, if any action differs by more than 1e-4. With --quantize int8 it also
reports the int8 graph's largest action difference and its closed-loop success on the same seeds against the float
policy's. Fly a bundle with `navigator fly --pilot OUT`, evaluate it with `navigator eval --pilot OUT`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from navigator.scenario import HELD_OUT_SEED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a policy checkpoint (.pt) written by navigator train, "
                                                            "or pretrained (the shipped policy of --task)")
    parser.add_argument("--task", help="fly-to-target | hike | follow: the task to verify on (default: the one the "
                                       "checkpoint was trained on; fly-to-target for pretrained)")
    parser.add_argument("--out", type=Path, required=True, help="the bundle folder to write (refused if it exists, "
                                                                "unless --overwrite)")
    parser.add_argument("--quantize", choices=("int8",), help="store an int8 graph (dynamic quantization); its "
                                                              "parity and success are measured and reported")
    parser.add_argument("--verify-episodes", type=int, default=3, metavar="N", help="closed-loop episodes flown to "
                                                                                    "verify the graph")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="world seed of the first verification "
                                                                        "episode")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")


def run(args: argparse.Namespace) -> int:
    import sys

    from navigator.commands.common import output_console
    from navigator.export.pipeline import ExportRequest, Hooks, VerificationError, export_bundle

    console = output_console()
    request = ExportRequest(checkpoint=args.checkpoint, out=args.out, task=args.task, quantize=args.quantize,
                            verify_episodes=args.verify_episodes, seed=args.seed, overwrite=args.overwrite)

    class ConsoleHooks(Hooks):
        def stage(self, text: str) -> None:
            console.print(text)

        def episode(self, text: str) -> None:
            console.print(f"  {text}")

    try:
        manifest = export_bundle(request, ConsoleHooks())
    except VerificationError as error:  # a verdict on the export (exit 1), not bad input
        print(f"navigator export: error: {error}", file=sys.stderr)
        return 1
    onnx, verification = manifest["onnx"], manifest["verification"]
    console.print(f"bundle written to {args.out}: {onnx['file']} ({onnx['bytes'] / 1024:.0f} KiB, {onnx['precision']}, "
                  f"opset {onnx['opset']}, sha256 {onnx['sha256'][:12]}), policy.json")
    console.print(f"verified on {verification['episodes']} episodes ({verification['steps']} steps, "
                  f"{verification['successes']} successes): largest action difference ONNX Runtime vs PyTorch "
                  f"{verification['max_action_diff']:.2g} (tolerance {verification['tolerance']:g})")
    quantization = manifest["quantization"]
    if quantization is not None:
        console.print(f"int8: largest action difference vs PyTorch {quantization['max_action_diff']:.3g}; success "
                      f"{quantization['success_rate_int8']:.0%} vs float {quantization['success_rate_float']:.0%} "
                      f"on {quantization['episodes']} episodes ({quantization['success_difference']:+.0%})")
    return 0
