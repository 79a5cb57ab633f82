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

from navigator.config import ConfigFlags
from navigator.errors import counted


def _request_class() -> type:
    from navigator.export.pipeline import ExportRequest  # imports onnxruntime: only when the command runs

    return ExportRequest


# Every option is a field of ExportRequest, checked with its declared bounds before any work, errors naming the option.
FLAGS = ConfigFlags(_request_class)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    FLAGS.add(parser, "--checkpoint", "checkpoint", "a policy checkpoint (.pt) written by navigator train, or "
                                                    "pretrained (the shipped policy of --task)", required=True)
    FLAGS.add(parser, "--task", "task", "fly-to-target | hike | follow: the task to verify on",
              default_text="the one the checkpoint was trained on; fly-to-target for pretrained")
    FLAGS.add(parser, "--out", "out", "the bundle folder to write (missing or empty; an existing bundle only with "
                                      "--overwrite)",
              required=True)
    FLAGS.add(parser, "--quantize", "quantize", "store an int8 graph (dynamic quantization); its parity and success "
                                                "are measured and reported", choices=("int8",),
              default_text="float32, no quantization")
    FLAGS.add(parser, "--verify-episodes", "verify_episodes", "closed-loop episodes flown to verify the graph",
              type=int, metavar="N")
    FLAGS.add(parser, "--seed", "seed", "world seed of the first verification episode", type=int)
    FLAGS.add(parser, "--overwrite", "overwrite", "replace an existing bundle at --out (a folder holding only "
                                                  "policy.json and policy.onnx: other files are never deleted)",
              action="store_true")


def run(args: argparse.Namespace) -> int:
    import sys

    from navigator.commands.common import output_console
    from navigator.export.pipeline import Hooks, VerificationError, export_bundle

    console = output_console()
    request = FLAGS.load(args, None)

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
    console.print(f"bundle written to {request.out}: {onnx['file']} ({onnx['bytes'] / 1024:.0f} KiB, "
                  f"{onnx['precision']}, opset {onnx['opset']}, sha256 {onnx['sha256'][:12]}), policy.json")
    console.print(f"verified on {counted(verification['episodes'], 'episode')} "
                  f"({counted(verification['steps'], 'step')}, "
                  f"{counted(verification['successes'], 'success', 'successes')}): largest action difference ONNX "
                  f"Runtime vs PyTorch "
                  f"{verification['max_action_diff']:.2g} (tolerance {verification['tolerance']:g})")
    quantization = manifest["quantization"]
    if quantization is not None:
        console.print(f"int8: largest action difference vs PyTorch {quantization['max_action_diff']:.3g}; success "
                      f"{quantization['success_rate_int8']:.0%} vs float {quantization['success_rate_float']:.0%} "
                      f"on {quantization['episodes']} episodes ({quantization['success_difference']:+.0%})")
    return 0
