"""Record expert demonstrations into a dataset (see datasets/README.md for the format).

examples:
  navigator collect --out datasets/summer --episodes 200
  navigator collect --task hike --preset autumn --episodes 50 --out datasets/autumn-hike --workers 2
  navigator collect --config launch/collect/mixed.yaml --out datasets/mixed
  navigator collect --out datasets/summer --resume                   # after an interruption
  navigator collect --out datasets/summer --episodes 400 --extend     # 200 more episodes of the same recipe
  navigator collect --out datasets/big --episodes 5000 --backend ray --address 10.0.0.1:6379   # on a Ray cluster

Each episode is (task, preset, seed) and deterministic: the same recipe gives the same dataset, whatever the number
of workers, and --resume flies only the episodes still missing. With --resume or --extend and no --config, the
settings are the recipe the dataset's manifest recorded: flags given on top must match it (--extend: or raise
--episodes).

--backend ray flies the episodes on Ray actors (pip install 'liquid-navigator[cluster]'; every node needs
liquid-navigator[sim]): on the cluster at --address (auto: the one `ray start` runs on this machine), or without it
on a Ray instance started for this run. The workers return each episode file's bytes and this process writes them
into --out, so the nodes need no shared storage; the files are the same bytes as the local backend's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from navigator.commands.common import add_continuation_flags
from navigator.config import ConfigFlags, RecordedSettings
from navigator.errors import UserError, counted


def _config_class() -> type:
    from navigator.collect import CollectConfig

    return CollectConfig


FLAGS = ConfigFlags(_config_class)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create (or continue with --resume)")
    parser.add_argument("--config", type=Path, help="YAML recipe (see launch/collect/); flags override it")
    FLAGS.add(parser, "--task", "parts[0].task", "fly-to-target | hike | follow (with --preset and --episodes: the "
                                                 "one part to collect; a --config of several parts is changed in "
                                                 "the file)")
    FLAGS.add(parser, "--preset", "parts[0].preset", "scenery preset, e.g. summer or winter+wind")
    FLAGS.add(parser, "--episodes", "parts[0].episodes", "episodes to record", type=int)
    FLAGS.add(parser, "--airframe", "airframe", "x500 | cf2x")
    FLAGS.add(parser, "--seed", "seed", "seed of the first episode of each part", type=int)
    FLAGS.add(parser, "--max-seconds", "max_seconds", "end each episode after this many simulated seconds",
              type=float, default_text="the task's own limit")
    FLAGS.add(parser, "--workers", "workers", "worker processes; 0: one per CPU core (of the Ray cluster with "
                                              "--backend ray)", type=int)
    FLAGS.add(parser, "--backend", "backend.kind", "local (processes on this machine) | ray (Ray actors)")
    FLAGS.add(parser, "--address", "backend.address", "with --backend ray: auto or the Ray head's HOST:PORT",
              default_text="start a local Ray instance")
    FLAGS.add(parser, "--dart-noise", "dart_noise", "std of the noise added to executed actions (normalised units; "
                                                    "0 disables)", type=float)
    FLAGS.add(parser, "--dart-near-target", "dart_near_target", "share of that noise kept within 1 m of the target, "
                                                                "where the expert holds (0: none)", type=float)
    failed = parser.add_mutually_exclusive_group()
    FLAGS.add(failed, "--keep-failed", "keep_failed", "store failed episodes too, marked as failed",
              action="store_const", const=True, default_text="keep")
    FLAGS.add(failed, "--drop-failed", "keep_failed", "store only successful episodes; failures are only marked in "
                                                      "the manifest", dest="keep_failed", action="store_const",
              const=False, default_text="keep")
    add_continuation_flags(
        parser, resume_help="continue an interrupted collection in --out; without --config, the settings are those "
                            "its manifest recorded, so no flag needs retyping",
        extend_help="add episodes to the dataset in --out: its recorded recipe with a larger --episodes (to continue "
                    "an interrupted --extend, use --resume)")


def _one_part(source: Path | RecordedSettings | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Places the flags that describe one part (--task, --preset, --episodes): on top of the recipe's part (from the
    YAML file or the recorded recipe `source`) when it has exactly one, else of the defaults; that one part replaces
    the recipe's parts."""
    from navigator.config import read_yaml_mapping

    def place(overrides: dict[str, Any]) -> dict[str, Any]:
        single = {key.removeprefix("parts[0]."): overrides.pop(key) for key in list(overrides)
                  if key.startswith("parts[0].")}
        single = {name: value for name, value in single.items() if value is not None}
        if single:
            recipe = (source.data if isinstance(source, RecordedSettings)
                      else read_yaml_mapping(source) if source is not None else {})
            parts = recipe.get("parts")
            if isinstance(source, Path) and isinstance(parts, list) and len(parts) > 1:
                flags = " and ".join(f"--{name}" for name in single)
                raise UserError(f"{flags} describe{'s' if len(single) == 1 else ''} one part, and --config {source} "
                                f"has {len(parts)} parts, which {'it' if len(single) == 1 else 'they'} would replace "
                                f"by one: set {' and '.join(f'parts[i].{name}' for name in single)} in the file for "
                                f"each part to change, or drop --config to collect one part")
            base = parts[0] if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict) else {}
            overrides["parts"] = [{**base, **single}]
        return overrides

    return place


def run(args: argparse.Namespace) -> int:
    from navigator.backends import check_reachable
    from navigator.collect import EXTENSIONS_KEY, collect, open_for_collection
    from navigator.commands.common import check_output_folder, output_console, progress_bar, recorded_settings
    from navigator.dataset.manifest import manifest_path, require_format

    source: Path | RecordedSettings | None = args.config
    if source is None and (args.resume or args.extend):
        path = manifest_path(args.out)
        source = recorded_settings(path, "recipe", dropped=(EXTENSIONS_KEY,),
                                   check_format=lambda document: require_format(document, str(path)))
    config = FLAGS.load(args, source, _one_part(source))
    check_output_folder(args.out, "--out", continuing=args.resume or args.extend, kind="dataset")
    check_reachable(config.backend)
    console = output_console()
    writer, notes = open_for_collection(args.out, config, args.resume, extend=args.extend,
                                        given_as=FLAGS.given_as(args))
    for note in notes:
        console.print(f"resume: {note}")
    total = len(config.keys())
    already = total - len(writer.missing(config.keys()))
    counts = {"frames": 0, "successes": 0, "flown": 0}
    with progress_bar(console) as progress:
        bar = progress.add_task("collecting", total=total, completed=already, status="")

        def on_episode(collected) -> None:
            counts["frames"] += collected.frames
            counts["successes"] += collected.success
            counts["flown"] += 1
            progress.update(bar, advance=1, status=f"{counts['frames']} frames · success "
                                                   f"{counts['successes'] / counts['flown']:.0%}")

        def on_ready(cluster) -> None:
            if cluster.backend.kind == "ray":
                progress.update(bar, description=f"collecting on {cluster.cpus} CPUs")
                console.print(f"running on the {cluster.describe()}")

        collect(args.out, config, writer, on_episode, on_ready)
    manifest = writer.manifest
    kept = len(manifest.episodes)
    console.print(f"{args.out}: {counted(kept, 'episode')} stored "
                  f"({counted(sum(e.frames for e in manifest.episodes), 'frame')}), "
                  f"{len(manifest.dropped):,} dropped; flew {counts['flown']:,} this run "
                  f"({counted(counts['frames'], 'frame')}, success {counts['successes']:,}/{counts['flown']:,})")
    return 0
