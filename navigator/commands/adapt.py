"""Adapt a trained policy to new surroundings from a few demonstrations, and measure what that costs elsewhere.

examples:
  navigator collect --preset night --episodes 20 --seed 20000 --out datasets/night-20
  navigator adapt --data datasets/night-20 --out runs/night                      # the shipped policy, fine-tuned
  navigator adapt --data datasets/night-20 --strategy freeze-cnn --out runs/night-frozen
  navigator adapt --data datasets/night-20 --strategy replay --replay datasets/OLD --out runs/r  # OLD: its own data
  navigator adapt --pilot runs/NAME/best.pt --data datasets/night-20 --strategy l2-anchor --anchor 100 --out runs/x
  navigator adapt --data datasets/wind-20 --dagger 1 --dagger-episodes 10 --dagger-epochs 4 --out runs/wind-dagger
  navigator adapt --out runs/night --resume                                       # after an interruption
  navigator eval --pilot pretrained --pilot runs/night/best.pt --suites night,summer --out reports/night
  navigator adapt curve --config launch/adapt/night_small.yaml                    # the learning-curve report
  navigator adapt curve --out reports/adapt-shipped-hard --resume                 # its recorded settings, continued

Strategies: finetune (all weights, new data only), replay (new data mixed with replayed old data: --replay-fraction
of each batch's windows), freeze-cnn (the perception CNN frozen, only the liquid head trains), l2-anchor (an L2
penalty pulling the weights to the starting ones, a simple EWC-like regulariser). With any strategy, --weight-mix
0.5 keeps half of the trained weight change (WiSE-FT's interpolation back to the starting weights): less forgetting
for some of what was learnt. The adaptation continues the starting policy's recipe (model, windows, augmentation);
it writes a training run in OUT (run.json, best.pt, last.pt,
history.json, tensorboard/) whose best.pt flies with navigator fly and eval and exports with navigator export, and
records where it came from (starting checkpoint and its sha256, strategy, the new and replayed datasets' world seeds:
navigator eval refuses those seeds, and the starting policy's). The new data must be recorded with the policy's
camera, airframe and task. With --resume the settings are those OUT/run.json recorded; flags given must match them.

DAgger (--dagger ROUNDS): clean demonstrations do not show how to recover from the policy's own drift. After the
training on the new data, each round the adapted policy flies --dagger-episodes worlds of the new data's scenery
(the task, preset, camera and time limit of the first --data; world seeds 1000000 * round on, never evaluation
worlds), the expert labels every frame (OUT/dagger/round-R), and training continues --dagger-epochs epochs on the new
data plus every round's roll-outs, under the same strategy (replay still mixes old data in, freeze-cnn keeps the CNN
frozen, l2-anchor anchors to the starting weights). The roll-outs' seeds join the checkpoint's training seeds.

`navigator adapt curve --config FILE` makes the learning-curve report: for each new scenery of the config, each
number of new demonstrations (prefixes of one collected dataset), each strategy and each training seed, it collects,
adapts and then evaluates all adapted policies and the starting one together on the new sceneries and the old
suites: success against demonstrations, forgetting on the old suites (curve.md, curve.json, curve.png in --out).
With --resume the curve continues with the settings OUT/adapt-curve.json recorded; --config, when given, must match
them.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

from navigator.config import ConfigFlags, RecordedSettings


def _config_class() -> type:
    from navigator.adapt.config import AdaptConfig

    return AdaptConfig


FLAGS = ConfigFlags(_config_class)
# The single adaptation's flags: (flag, setting, help, argparse options); each flag's argparse dest is its name
# (--dagger-episodes: dagger_episodes).
ADAPT_FLAGS = (
    ("--pilot", "pilot", "the policy to adapt: pretrained (the shipped policy of --task) or a policy checkpoint (.pt)",
     {}),
    ("--task", "task", "whose shipped policy pretrained is: fly-to-target | hike | follow", {}),
    ("--data", "data", "dataset of new demonstrations (repeat to merge several)",
     {"action": "append", "default_text": "none"}),
    ("--strategy", "strategy", "finetune | replay | freeze-cnn | l2-anchor", {}),
    ("--replay", "replay", "old dataset to replay (--strategy replay; repeat for several)",
     {"action": "append", "default_text": "none"}),
    ("--replay-fraction", "replay_fraction", "share of each batch's windows replayed from --replay", {"type": float}),
    ("--anchor", "anchor", "l2-anchor's weight on the mean squared change of the weights", {"type": float}),
    ("--weight-mix", "weight_mix", "share of the trained weight change the adapted policy keeps: start + MIX * "
                                   "(trained - start), WiSE-FT's interpolation (1: the trained weights)",
     {"type": float, "metavar": "MIX"}),
    ("--epochs", "epochs", "training epochs on the new data", {"type": int}),
    ("--lr", "lr", "peak learning rate", {"type": float}),
    ("--batch-size", "batch_size", "windows of new data per batch", {"type": int}),
    ("--seed", "seed", "seed of the split, shuffling, augmentation and replay draws", {"type": int}),
    ("--device", "device", "where the network trains: cpu, cuda (the first GPU) or cuda:N", {}),
    ("--dagger", "dagger.rounds", "DAgger rounds after the training on the new data: the adapted policy flies the new "
                                  "scenery, the expert labels it", {"type": int, "metavar": "ROUNDS"}),
    ("--dagger-episodes", "dagger.episodes", "roll-outs the adapted policy flies per DAgger round", {"type": int}),
    ("--dagger-epochs", "dagger.epochs", "training epochs after each DAgger round", {"type": int}),
)
# The flags of the learning-curve mode, besides --out and --resume.
CURVE_FLAGS = ("config", "workers")


# `navigator adapt curve --help` describes the curve's own options, not the single adaptation's: see _Help.
PARSER_OPTIONS = {"add_help": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action=_Help, nargs=0, default=argparse.SUPPRESS,
                        help="show this help message and exit (after curve: the learning curve's options)")
    # The value of an option adapt does not have (`--patience 3`) lands here too: navigator.cli then names the
    # unknown option as the error, not "invalid choice: '3'".
    parser.add_argument("mode", nargs="?", choices=("curve",), metavar="curve",
                        help="make the learning-curve report of --config instead of one adaptation")
    for flag, key, text, options in ADAPT_FLAGS:
        FLAGS.add(parser, flag, key, text, **options)
    _add_shared_arguments(parser, out="the adaptation's run folder (default: runs/adapted); with curve: the report's "
                                      "folder (default: the config's out)",
                          resume="continue the adaptation (or, with curve, the learning curve) in --out, with its "
                                 "recorded settings")
    _add_curve_arguments(parser, prefix="curve: ")


def _add_shared_arguments(parser: argparse.ArgumentParser, out: str, resume: str) -> None:
    parser.add_argument("--out", type=Path, default=None, help=out)
    parser.add_argument("--resume", action="store_true", help=resume)


def _add_curve_arguments(parser: argparse.ArgumentParser, prefix: str) -> None:
    parser.add_argument("--config", type=Path, help=f"{prefix}the learning-curve config (see launch/adapt/); with "
                                                    "--resume it may be left out: the settings OUT/adapt-curve.json "
                                                    "recorded")
    parser.add_argument("--workers", type=int, default=None, help=f"{prefix}parallel processes of the collection "
                                                                  "and evaluation; the results do not depend on it "
                                                                  "(default: one per CPU core)")


def curve_parser() -> argparse.ArgumentParser:
    """The parser whose help `navigator adapt curve --help` prints: the learning curve's options only."""
    from navigator.config import DefaultsHelpFormatter

    doc = __doc__ or ""
    description = doc[doc.index("`navigator adapt curve --config FILE`"):].strip()
    examples = "\n".join(line for line in doc.splitlines() if line.startswith("  navigator adapt curve"))
    parser = argparse.ArgumentParser(prog="navigator adapt curve", formatter_class=DefaultsHelpFormatter,
                                     description=f"{description}\n\nexamples:\n{examples}", allow_abbrev=False)
    _add_shared_arguments(parser, out="the report's folder (default: the config's out)",
                          resume="continue the learning curve in --out with its recorded settings")
    _add_curve_arguments(parser, prefix="")
    return parser


class _Help(argparse.Action):
    """-h/--help: the learning curve's help after `curve`, the adaptation's otherwise."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        if getattr(namespace, "mode", None) == "curve":
            curve_parser().print_help()
        else:
            parser.print_help()
        parser.exit()


def _dest(flag: str) -> str:
    """The argparse dest ConfigFlags gives `flag`."""
    return flag.lstrip("-").replace("-", "_")


def run(args: argparse.Namespace) -> int:
    from navigator.errors import UserError

    given = [flag for flag, _, _, _ in ADAPT_FLAGS if getattr(args, _dest(flag)) is not None]
    if args.mode == "curve":
        if given:
            raise UserError(f"{', '.join(given)}: not read by navigator adapt curve (its config sets the pilots, "
                            f"data, strategies and training); give only --config, --out, --resume, --workers")
        return _curve(args)
    extra = [f"--{name}" for name in CURVE_FLAGS if getattr(args, name) is not None]
    if extra:
        raise UserError(f"{', '.join(extra)}: only read by navigator adapt curve; drop it, or run navigator adapt "
                        f"curve --config FILE")
    return _adapt(args)


def _given(args: argparse.Namespace) -> dict[str, str]:
    """The adaptation's flags given: setting (dotted) -> flag."""
    return {key: flag for flag, key, _, _ in ADAPT_FLAGS if getattr(args, _dest(flag)) is not None}


def _refuse_unread(args: argparse.Namespace, strategy: str, pilot: str) -> None:
    """Refuse a flag whose setting would be ignored silently: a strategy-specific one given for a strategy that does
    not read it, or --task when the pilot is not `pretrained` (a DAgger round's size without DAgger rounds is the
    loader's to refuse: config._refuse_unread)."""
    from navigator.adapt.config import unread_settings
    from navigator.errors import UserError

    given = _given(args)
    if "task" in given and pilot != "pretrained":
        raise UserError(f"--task only picks whose shipped policy pretrained is; the pilot {pilot} learnt its own "
                        f"task, which its checkpoint records: drop --task")
    unread = unread_settings(given, (strategy,))
    if unread:
        name, owner = unread[0]
        raise UserError(f"{given[name]} is read by the {owner} strategy only, not {strategy}: drop it, or give "
                        f"--strategy {owner}")


def _adapt(args: argparse.Namespace) -> int:
    from navigator.adapt.config import changed_settings
    from navigator.commands.common import check_output_folder, output_console, progress_bar
    from navigator.resume import GivenAs

    source = _source(args)
    if source is not None:  # a flag that differs from the run's is named as such, before the merged settings' checks
        from navigator.adapt.run import refuse_changed

        flags = _given(args)
        given = {key: getattr(args, _dest(flag)) for key, flag in flags.items()}
        # named as typed (--epochs), as every other command's resume refusal names them
        named = GivenAs(flags)
        refuse_changed(_run_folder(args), [dataclasses.replace(difference, name=named.name(difference.name))
                                           for difference in changed_settings(source.data, given)])
    config = FLAGS.load(args, source, lambda overrides: {**overrides, "out": args.out and str(args.out)})
    _refuse_unread(args, config.strategy, config.pilot)
    check_output_folder(Path(config.out), "--out", continuing=args.resume, kind="training run")
    args.output_folder = Path(config.out)  # where an interrupted adaptation is continued (its config's out, or --out)
    # Only now the pipeline (and torch, seconds to import): bad settings above are refused at once.
    from navigator.adapt.run import adapt, data_presets
    from navigator.commands.display import TrainingDisplay
    from navigator.pilots import pretrained_checkpoint
    from navigator.training.pipeline import load_trained

    console = output_console()
    with progress_bar(console) as progress:
        best = adapt(config, args.resume, TrainingDisplay(console, progress, indent="  "))
    _, metadata = load_trained(best)
    lineage = metadata["adapted_from"]
    mix = lineage.get("weight_mix", 1.0)
    mixed = f", of the trained weights; best.pt keeps {mix:g} of their change from the start" if mix < 1 else ""
    console.print(f"adapted {lineage['checkpoint']} ({lineage['strategy']}): best validation loss "
                  f"{metadata['val_loss']:.4f} (epoch {metadata['epoch']}{mixed})")
    suites = ",".join(dict.fromkeys([*data_presets(config.data), "summer"]))
    tasks = {record.get("task") for record in metadata.get("training_seeds") or []} - {None, "fly-to-target"}
    task = f" --task {tasks.pop()}" if len(tasks) == 1 else ""  # what it learnt: fly and eval default to fly-to-target
    start = config.pilot  # a resumed run recorded the shipped policy's path: named as the user would type it
    if Path(start).resolve() == pretrained_checkpoint(config.task).resolve():
        start = "pretrained"
    quoted = shlex.quote(str(best))
    console.print(f"adapted policy: {best}  ·  fly it: navigator fly --pilot {quoted}{task}  ·  measure it: navigator "
                  f"eval --pilot {shlex.quote(str(start))} --pilot {quoted}{task} --suites {suites} --out reports/NAME")
    return 0


def _run_folder(args: argparse.Namespace) -> Path:
    """The adaptation's run folder: --out, or the default one."""
    from navigator.config import field_default

    return Path(args.out if args.out is not None else field_default(FLAGS.cls, "out"))


def _source(args: argparse.Namespace) -> RecordedSettings | None:
    """With --resume: the settings OUT/run.json recorded (flags given on top must match them); else none."""
    if not args.resume:
        return None
    from navigator.resume import nothing_to_continue
    from navigator.training.run_record import RUN_RECORD

    out = _run_folder(args)
    if not (out / RUN_RECORD).is_file():  # said before the pipeline (and torch) is imported to read the record
        raise nothing_to_continue(out, "--resume", "adaptation", RUN_RECORD)
    from navigator.adapt.config import recorded_adaptation
    from navigator.adapt.run import read_run_config

    return RecordedSettings(recorded_adaptation(read_run_config(out / RUN_RECORD)), f"{out / RUN_RECORD}")


def _curve(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from navigator.adapt.curve_config import CurveConfig
    from navigator.commands.common import check_output_folder, output_console, progress_bar
    from navigator.config import load_config
    from navigator.workers import check_workers

    workers = check_workers(0 if args.workers is None else args.workers)
    source = _curve_source(args)
    overrides = {"out": None if args.out is None else str(args.out)}
    if isinstance(source, RecordedSettings):  # the record holds no out: it is where the record was found
        overrides["out"] = str(_curve_folder(args))
    config = load_config(CurveConfig, source, overrides, {"out": "--out"} if args.out is not None else {})
    out_flag = "--out" if args.out is not None or args.config is None else f"out in {args.config}:"
    check_output_folder(Path(config.out), out_flag, continuing=args.resume, kind="learning curve")
    # Only now the pipelines (and torch, seconds to import): bad settings above are refused at once.
    from navigator.adapt.curve import Hooks, run_curve
    from navigator.commands.display import EvaluationDisplay, TrainingDisplay
    from navigator.comparison.table import cell

    console = output_console()
    with progress_bar(console) as progress:
        training = TrainingDisplay(console, progress, indent="  ")
        bar = training.bar
        evaluation = EvaluationDisplay(console, progress, heading="  ")

        class Show(Hooks):
            def collecting(self, scenery: str, todo: int) -> None:
                console.print(f"[bold]collect {escape(scenery)}[/bold]: {todo} demonstrations to fly")
                progress.update(bar, description=f"collect {scenery}", completed=0, total=todo, status="")

            def collected(self, episode) -> None:
                progress.update(bar, advance=1, status=f"{episode.frames} frames")

            def run(self, name: str, index: int, total: int, done: bool) -> None:
                training.label = f"{name} ({index + 1}/{total}) · "
                console.print(f"[bold]{escape(name)}[/bold] ({index + 1}/{total})" + (": finished before" if done
                                                                                        else ""))

            def training(self):
                return training

            def evaluation(self, scenery: str) -> EvaluationDisplay:
                console.print(f"[bold]evaluation of the {escape(scenery)} adaptations[/bold]")
                return evaluation

        args.output_folder = Path(config.out)  # where an interrupted curve is continued (the config's out)
        document = run_curve(config, args.resume, workers, Show(), str(source))
    for entry in document["cells"]:
        scenery = entry["scenery"]
        console.print(f"{scenery} N={entry['demonstrations']:<3} {entry['strategy']:>10}: {scenery} "
                      f"{cell(entry['success'][scenery])}  " + "  ".join(
                          f"{suite} {cell(entry['success'][suite])}" for suite in document["old_suites"]))
    console.print(f"learning curve written to {Path(config.out) / 'curve.md'} (and curve.json, curve.png)")
    return 0


def _curve_folder(args: argparse.Namespace) -> Path:
    """The learning curve's folder without --config: --out, or the default one."""
    from navigator.adapt.curve_config import CurveConfig
    from navigator.config import field_default

    return Path(args.out if args.out is not None else field_default(CurveConfig, "out"))


def _curve_source(args: argparse.Namespace) -> Path | RecordedSettings:
    """Where the curve's settings come from: --config; or, continuing one without it, what OUT/adapt-curve.json
    recorded (less the starting checkpoint's sha256, which resuming compares). A folder without that record is
    refused here, naming both ways to give the settings."""
    from navigator.commands.common import recorded_settings
    from navigator.errors import UserError

    if args.config is not None:
        return args.config
    if not args.resume:
        raise UserError("navigator adapt curve needs --config FILE (see launch/adapt/, e.g. "
                        "launch/adapt/night_small.yaml), or --resume to continue the curve in --out")
    from navigator.adapt.curve_config import CURVE_RECORD, CURVE_RECORD_FORMAT, CURVE_RECORD_VERSION
    from navigator.resume import require_record_format

    out = _curve_folder(args)
    recorded = recorded_settings(out / CURVE_RECORD, "settings", dropped=("start_sha256",),
                                 check_format=lambda document: require_record_format(
                                     document, out / CURVE_RECORD, CURVE_RECORD_FORMAT, (1, CURVE_RECORD_VERSION),
                                     "start the learning curve over in another --out", flag="--resume"))
    if recorded is None and (out / CURVE_RECORD).exists():
        raise UserError(f"--resume: {out / CURVE_RECORD} cannot be read or records no settings (it is damaged); "
                        f"start the learning curve over in another --out")
    if recorded is None:
        from navigator.resume import another_commands_output

        other = another_commands_output(out, "--resume", "learning curve")
        if other is not None:
            raise other
        start = ("start one with --config FILE in a new or empty --out" if out.is_dir() and any(out.iterdir())
                 else "start one with --config FILE")
        raise UserError(f"--resume: {out} holds no learning curve to continue (no readable {CURVE_RECORD}); give the "
                        f"curve's folder as --out, or {start}")
    # The resources it was started with (threads: the rounding of its training), which the record keeps apart.
    resources = recorded_settings(out / CURVE_RECORD, "resources")
    if resources is None or not isinstance(recorded.data.get("train", {}), dict):
        return recorded
    return RecordedSettings({**recorded.data, "train": {**recorded.data.get("train", {}), **resources.data}},
                            recorded.where)
