"""Train a policy by imitation from recorded demonstrations (behaviour cloning, then optional DAgger rounds).

examples:
  navigator train --data datasets/summer --model cfc-ncp --out runs/cfc-ncp
  navigator train --config launch/train/fly_to_target.yaml      # collects the data first if it is missing
  navigator train --data datasets/summer --model lstm --out runs/lstm --epochs 10
  navigator train --config launch/train/fly_to_target.yaml --resume   # after an interruption
  navigator fly --pilot runs/cfc-ncp/best.pt                        # fly the result

Writes OUT/best.pt (the policy with the best validation loss), OUT/last.pt (the state to resume from),
OUT/history.json and TensorBoard logs in OUT/tensorboard (tensorboard --logdir OUT).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML training recipe (see launch/train/); flags override it")
    parser.add_argument("--data", action="append", help="dataset folder (repeat to merge several)")
    parser.add_argument("--out", help="run folder for checkpoints and logs")
    parser.add_argument("--model", help="cfc-ncp (default) | cfc | ltc-ncp | lstm | gru | mlp")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--batch-size", type=int, help="windows per batch")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, help="seed of initialisation, split, shuffling and augmentation")
    parser.add_argument("--dagger", type=int, metavar="ROUNDS", help="DAgger rounds after the first training")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from navigator.config import load_config
    from navigator.training.config import TrainConfig
    from navigator.training.pipeline import Hooks, run_recipe

    config = load_config(TrainConfig, args.config, {
        "data": args.data, "out": args.out, "model": args.model, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "dagger.rounds": args.dagger,
    })
    _validate_model(config.model)
    console = Console()

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("", total=None, status="")

        class Show(Hooks):
            def stage(self, name: str, detail: str) -> None:
                progress.update(bar, description=name, completed=0, total=None, status="")
                console.print(f"[bold]{name}[/bold]: {detail}")

            def episode(self, collected) -> None:
                progress.update(bar, advance=1, status=f"{collected.frames} frames")

            def batch(self, index: int, frames: int, loss: float) -> None:
                progress.update(bar, completed=index + 1, status=f"loss {loss:.4f} · {frames} frames")

            def epoch(self, report) -> None:
                mark = " *" if report.best else ""
                console.print(f"  epoch {report.epoch:3d}  train {report.train_loss:.4f}  val {report.val_loss:.4f}"
                              f"  {report.frames_per_second:,.0f} frames/s  lr {report.lr:.2e}{mark}")

        best = run_recipe(config, args.resume, Show())
    from policies.checkpoint import load_checkpoint

    policy, metadata = load_checkpoint(best)
    counts = policy.parameter_counts()
    console.print(f"{config.model}: {counts['head']:,} head + {counts['cnn']:,} CNN = {counts['total']:,} parameters"
                  f" · best validation loss {metadata['val_loss']:.4f} (epoch {metadata['epoch']}, {metadata['stage']})")
    console.print(f"best policy: {best}  ·  fly it: navigator fly --pilot {best}")
    return 0


def _validate_model(name: str) -> None:
    from navigator.errors import UserError
    from policies.registry import MODEL_NAMES

    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; valid models are: {', '.join(MODEL_NAMES)}")
