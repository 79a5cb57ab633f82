"""Explain a policy on one episode: where it looks, what its neurons do, how it is wired, which neurons matter.

examples:
  navigator explain --out reports/explain-summer          # the shipped policy, one summer fly-to-target episode
  navigator explain --preset winter --seed 100007 --method integrated-gradients --out reports/explain-winter
  navigator explain --pilot runs/NAME/best.pt --task hike --out reports/explain-hike --max-seconds 20
  navigator explain --from-dataset datasets/summer --episode 3 --out reports/explain-demo3  # a recorded episode
  navigator explain --out reports/explain-summer --ablation-episodes 20 --overwrite

It writes into --out: saliency.mp4 (the camera with the saliency heat map, the target outlined, beside the chase
view), traces.png and traces.npz (every neuron of the head per step, by layer, with the actions and the flight's
events), wiring.png (the NCP wiring with synapse polarities), ablation.md/.png/.json (each command neuron silenced:
the change in action over the episode, open loop, and closed-loop success on --ablation-episodes worlds against the
intact policy, with Wilson 95% intervals) and explain.json (what was run, the ending, the mean attention on target).
Heads without an NCP wiring (lstm, gru, cfc, mlp) get no wiring or ablation files. Pilots are pretrained or a policy
checkpoint: the expert and exported bundles have no torch graph to explain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from navigator.config import ConfigFlags
from navigator.errors import UserError
from navigator.explain.settings import ExplainConfig

FLAGS = ConfigFlags(ExplainConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML launch file (default: the built-in defaults, the same as "
                                                    "launch/explain.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the explanation into")
    FLAGS.add(parser, "--pilot", "pilot", "pretrained (the shipped policy of --task) | a policy checkpoint (.pt)")
    FLAGS.add(parser, "--task", "scenario.task", "fly-to-target | hike | follow",
              default_text="fly-to-target; a dataset episode's own with --from-dataset")
    FLAGS.add(parser, "--preset", "scenario.preset", "scenery preset, composable with +, e.g. winter+wind",
              default_text="summer; a dataset episode's own with --from-dataset")
    FLAGS.add(parser, "--airframe", "scenario.airframe", "x500 | cf2x")
    FLAGS.add(parser, "--seed", "seed", "world seed of the flown episode; the ablation's closed-loop episodes fly "
                                        "seeds SEED, SEED+1, ...; none the policy trained on", type=int)
    FLAGS.add(parser, "--max-seconds", "scenario.max_seconds", "end each flown episode after this many simulated "
                                                               "seconds (not with --from-dataset: a recorded episode "
                                                               "is explained whole)",
              type=float, default_text="the task's own limit")
    FLAGS.add(parser, "--method", "method", "saliency method: visualbackprop | integrated-gradients (any case, "
                                            "spaces or underscores for hyphens)")
    FLAGS.add(parser, "--ablation-episodes", "ablation_episodes", "closed-loop episodes per silenced command neuron "
                                                                  "(and for the intact policy); 0: open loop only",
              type=int, metavar="N")
    FLAGS.add(parser, "--from-dataset", "from_dataset", "explain a recorded episode of this dataset instead of "
                                                        "flying one", metavar="DATASET", default_text="fly one")
    FLAGS.add(parser, "--episode", "episode", "which episode of --from-dataset, by its index in the manifest "
                                              "(0: the first)", type=int, metavar="K", default_text="0")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier explanation in --out (only its "
                                                                 "own files)")


def run(args: argparse.Namespace) -> int:
    from navigator.commands.common import output_console, progress_bar
    from navigator.explain.folder import check_out

    config = FLAGS.load(args, args.config)
    if config.from_dataset is not None and config.ablation_episodes == 0 and args.seed is not None:
        raise UserError("--seed picks the worlds flown, and a recorded episode explained with --ablation-episodes 0 "
                        "flies none; drop --seed, or give --ablation-episodes N for the closed-loop ablation")
    check_out(args.out, args.overwrite)
    # Only now the pipeline (and torch, seconds to import): bad settings above are refused at once.
    from navigator.explain.pipeline import Hooks, explain
    console = output_console()

    with progress_bar(console, transient=True) as progress:

        class BarHooks(Hooks):
            bar = None

            def stage(self, text: str, total: int | None = None) -> None:
                if self.bar is not None:
                    progress.remove_task(self.bar)
                self.bar = progress.add_task(text, total=total, status="")

            def advance(self, status: str = "") -> None:
                progress.update(self.bar, advance=1, status=status)

        document = explain(config, args.out, BarHooks())

    episode, attention = document["episode"], document["attention_on_target"]
    console.print(f"{episode['task']} · {episode['preset']} · seed {episode['seed']} ({episode['kind']}): "
                  f"{episode['ending']} after {episode['steps']} steps ({episode['duration_s']:.1f} s)")
    if attention["mean"] is not None:
        console.print(f"attention on target ({attention['method']}): mean {attention['mean']:.3f} over the "
                      f"{attention['frames_measured']} of {attention['frames']} frames showing the target")
    else:
        console.print(f"attention on target: not measured ({attention['note']})")
    ablation = document["ablation"]
    if ablation is not None and ablation["largest_action_change"] is not None:
        strongest = ablation["largest_action_change"]
        console.print(f"ablation of {ablation['command_neurons']} command neurons: silencing neuron "
                      f"{strongest['neuron']} changes the action most "
                      f"(mean |Δa| {strongest['mean_abs_action_change']:.3f})"
                      f"; see ablation.md")
    console.print(f"written to {args.out}: {', '.join(document['files'] + ['explain.json'])} "
                  f"({document['wall_seconds']:.0f} s)")
    return 0
