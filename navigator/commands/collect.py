"""Record expert demonstrations into a dataset (see datasets/README.md for the format).

examples:
  navigator collect --out datasets/summer --episodes 200
  navigator collect --task hike --preset autumn --episodes 50 --out datasets/autumn-hike --workers 2
  navigator collect --config launch/collect/mixed.yaml --out datasets/mixed
  navigator collect --out datasets/summer --episodes 200 --resume     # after an interruption

Each episode is (task, preset, seed) and deterministic: the same recipe gives the same dataset, whatever the number
of workers, and --resume flies only the episodes still missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create (or continue with --resume)")
    parser.add_argument("--config", type=Path, help="YAML recipe (see launch/collect/); flags override it")
    parser.add_argument("--task", help="fly-to-target | hike | follow (replaces the recipe's parts with one part)")
    parser.add_argument("--preset", help="scenery preset, e.g. summer or winter+wind")
    parser.add_argument("--episodes", type=int, help="episodes to record")
    parser.add_argument("--airframe", help="x500 | cf2x")
    parser.add_argument("--seed", type=int, help="seed of the first episode of each part")
    parser.add_argument("--max-seconds", type=float, help="end each episode after this many simulated seconds")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")
    parser.add_argument("--dart-noise", type=float, help="std of the noise added to executed actions "
                                                         "(normalised units; 0 disables)")
    failed = parser.add_mutually_exclusive_group()
    failed.add_argument("--keep-failed", dest="keep_failed", action="store_const", const=True,
                        help="store failed episodes too, marked as failed (default)")
    failed.add_argument("--drop-failed", dest="keep_failed", action="store_const", const=False,
                        help="store only successful episodes; failures are only marked in the manifest")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted collection in --out")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from navigator.collect import CollectConfig, collect, open_for_collection
    from navigator.config import load_config, read_yaml_mapping

    overrides = {"airframe": args.airframe, "seed": args.seed, "max_seconds": args.max_seconds, "workers": args.workers,
                 "dart_noise": args.dart_noise, "keep_failed": args.keep_failed}
    single = {k: v for k, v in (("task", args.task), ("preset", args.preset), ("episodes", args.episodes))
              if v is not None}
    if single:
        # Flags describe one part: on top of the recipe's part when it has exactly one, else of the defaults.
        parts = read_yaml_mapping(args.config).get("parts") if args.config else None
        base = parts[0] if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict) else {}
        overrides["parts"] = [{**base, **single}]
    config = load_config(CollectConfig, args.config, overrides)
    _validate_names(config)
    console = Console()
    writer, notes = open_for_collection(args.out, config, args.resume)
    for note in notes:
        console.print(f"resume: {note}")
    total = len(config.keys())
    already = total - len(writer.missing(config.keys()))
    counts = {"frames": 0, "successes": 0, "flown": 0}
    with Progress(TextColumn("[bold]collecting"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("collect", total=total, completed=already, status="")

        def on_episode(collected) -> None:
            counts["frames"] += collected.frames
            counts["successes"] += collected.success
            counts["flown"] += 1
            progress.update(bar, advance=1, status=f"{counts['frames']} frames · success "
                                                   f"{counts['successes'] / counts['flown']:.0%}")

        collect(args.out, config, writer, on_episode)
    manifest = writer.manifest
    kept = len(manifest.episodes)
    console.print(f"{args.out}: {kept} episodes stored ({sum(e.frames for e in manifest.episodes)} frames), "
                  f"{len(manifest.dropped)} dropped; flew {counts['flown']} this run "
                  f"({counts['frames']} frames, success {counts['successes']}/{counts['flown']})")
    return 0


def _validate_names(config) -> None:
    """Fail before spawning workers: unknown task, preset or airframe names, listed with the valid choices."""
    from navigator.errors import UserError
    from sim_envs import task_id
    from sim_envs.airframe import load_airframe
    from sim_envs.presets import resolve_preset

    try:
        load_airframe(config.airframe)
        for part in config.parts:
            task_id(part.task)
            resolve_preset(part.preset)
    except ValueError as error:
        raise UserError(str(error)) from None
