"""Train a policy by imitation from recorded demonstrations (behaviour cloning, then optional DAgger rounds).

examples:
  navigator train --data datasets/summer --model cfc-ncp --out runs/cfc-ncp
  navigator train --config launch/train/fly_to_target.yaml      # collects the data first if it is missing
  navigator train --data datasets/summer --model lstm --out runs/lstm --epochs 10
  navigator train --out runs/cfc-ncp --resume                       # after an interruption
  navigator train --out runs/cfc-ncp --epochs 40 --extend           # the same run, trained longer
  navigator fly --pilot runs/cfc-ncp/best.pt                        # fly the result

Writes OUT/run.json (the settings), OUT/best.pt (the policy with the best validation loss), OUT/last.pt (the state to
resume from), OUT/history.json and TensorBoard logs in OUT/tensorboard (tensorboard --logdir OUT). With --resume or
--extend and no --config, the settings are those OUT/run.json recorded: flags given on top must match them
(--extend: or raise --epochs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from navigator.commands.common import add_continuation_flags
from navigator.config import ConfigFlags, RecordedSettings, field_default


def _config_class() -> type:
    from navigator.training.config import TrainConfig

    return TrainConfig


FLAGS = ConfigFlags(_config_class)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML training recipe (see launch/train/); flags override it")
    FLAGS.add(parser, "--data", "data", "dataset folder (repeat to merge several)", action="append",
              default_text="none")
    FLAGS.add(parser, "--out", "out", "run folder for checkpoints and logs")
    FLAGS.add(parser, "--model", "model", "cfc-ncp | cfc | ltc-ncp | lstm | gru | mlp")
    FLAGS.add(parser, "--epochs", "epochs", "training epochs", type=int)
    FLAGS.add(parser, "--batch-size", "batch_size", "windows per batch", type=int)
    FLAGS.add(parser, "--lr", "lr", "peak learning rate", type=float)
    FLAGS.add(parser, "--seed", "seed", "seed of initialisation, split, shuffling and augmentation", type=int)
    FLAGS.add(parser, "--dagger", "dagger.rounds", "DAgger rounds after the first training", type=int,
              metavar="ROUNDS")
    add_continuation_flags(
        parser, resume_help="continue an interrupted run in --out; without --config, the settings are those "
                            "OUT/run.json recorded, so no flag needs retyping",
        extend_help="train the run in --out for a larger --epochs (the only setting that may change; to continue an "
                    "interrupted --extend, use --resume)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from navigator.commands.common import progress_bar
    from navigator.training.pipeline import Hooks, run_recipe

    config = FLAGS.load(args, _source(args))
    _check_folders(config, args)
    console = Console()

    with progress_bar(console) as progress:
        bar = progress.add_task("", total=None, status="")

        class Show(Hooks):
            def stage(self, name: str, detail: str) -> None:
                progress.update(bar, description=name, completed=0, total=None, status="")
                console.print(f"[bold]{name}[/bold]: {detail}")

            def episode(self, collected) -> None:
                progress.update(bar, advance=1, status=f"{collected.frames} frames")

            def batch(self, index: int, batches: int, frames: int, loss: float) -> None:
                progress.update(bar, completed=index + 1, total=batches, status=f"loss {loss:.4f} · {frames} frames")

            def warning(self, message: str) -> None:
                console.print(f"[yellow]warning[/yellow]: {escape(message)}", soft_wrap=True)

            def epoch(self, report) -> None:
                mark = " *" if report.best else ""
                console.print(f"  epoch {report.epoch:3d}  train {report.train_loss:.4f}  val {report.val_loss:.4f}"
                              f"  {report.frames_per_second:,.0f} frames/s  lr {report.lr:.2e}{mark}")

        best = run_recipe(config, args.resume, Show(), extend=args.extend)
    from navigator.training.pipeline import load_trained

    policy, metadata = load_trained(best)
    counts = policy.parameter_counts()
    console.print(f"{config.model}: {counts['head']:,} head + {counts['cnn']:,} CNN = {counts['total']:,} parameters"
                  f" · best validation loss {metadata['val_loss']:.4f} (epoch {metadata['epoch']}, "
                  f"{metadata['stage']})")
    console.print(f"best policy: {best}  ·  fly it: navigator fly --pilot {best}")
    return 0


def _source(args: argparse.Namespace) -> Path | RecordedSettings | None:
    """Where the settings come from before the flags: --config; or, continuing a run without one, what the run's
    OUT/run.json recorded. A folder without that record is refused here, before the defaults' missing --data could
    hide the real problem."""
    from navigator.commands.common import recorded_settings
    from navigator.errors import UserError
    from navigator.training.pipeline import RUN_RECORD

    if args.config is not None or not (args.resume or args.extend):
        return args.config
    out = Path(args.out if args.out is not None else field_default(FLAGS.cls, "out"))
    if not (out / RUN_RECORD).is_file():
        flag = "--extend" if args.extend else "--resume"
        raise UserError(f"{flag}: {out} holds no training run to continue (no {RUN_RECORD}); give the run's folder "
                        f"as --out, or drop {flag} to start a run")
    return recorded_settings(out / RUN_RECORD, "config")


def _check_folders(config, args: argparse.Namespace) -> None:
    """Before any work: the run folder can be written and holds nothing of the user's, and every dataset exists
    (or, for the first one of a recipe with a `collect` section, can be collected)."""
    from navigator.commands.common import check_output_folder
    from navigator.dataset.reader import open_datasets

    out_flag = "--out" if args.out is not None or args.config is None else f"out in {args.config}:"
    check_output_folder(Path(config.out), out_flag, continuing=args.resume or args.extend, kind="training run")
    existing = list(config.data)
    if config.collect is not None:
        check_output_folder(Path(existing.pop(0)), "the dataset to collect, data[0],", continuing=True,
                            kind="dataset")
    if existing:
        open_datasets([Path(path) for path in existing])
