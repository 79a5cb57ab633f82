"""Compare models fairly: train each one on the same data with the same recipe, for several training seeds, then fly
every checkpoint on the same held-out worlds of each suite; a table and a figure give each model's mean success per
suite with a 95% hierarchical bootstrap interval over its training seeds and the worlds.

examples:
  navigator compare --config launch/compare/fly_to_target.yaml                  # six models x three seeds
  navigator compare --config launch/compare/fly_to_target.yaml --out reports/cmp --workers 2
  navigator compare --config launch/compare/fly_to_target.yaml --resume         # after an interruption
  navigator compare --out reports/comparison --resume                            # the same: settings from compare.json

The config names the base training recipe (`recipe:` a launch/train/*.yaml, `train:` settings on top of it), the
`models`, the training `seeds` and the `evaluation` settings (as navigator eval's: task, suites, episodes, seed).
Runs go seed by seed, model by model. Each trains in OUT/runs/MODEL-seedSEED (the first collects the shared data if
the recipe has a `collect` section and it is missing) and is evaluated as soon as it is trained, in
OUT/eval/MODEL-seedSEED. After every run the comparison is written again over the runs so far: OUT/comparison.json
(every run's outcome in every world), OUT/comparison.md (the table; an unfinished one says which runs it lacks) and
OUT/comparison.png. --resume trains nothing that finished, continues the run or evaluation that was interrupted, and
refuses settings that changed; without --config it takes the settings OUT/compare.json recorded. A finished and
evaluated run is read from the report (comparison.json, eval/RUN/results.json), so a comparison committed without its
runs/ folder continues in a fresh clone (the recipe's demonstrations, when missing, are collected again first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from navigator.config import ConfigFlags, RecordedSettings


def _config_class() -> type:
    from navigator.comparison.config import CompareConfig

    return CompareConfig


FLAGS = ConfigFlags(_config_class)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML comparison config (see launch/compare/); with --resume it "
                                                    "may be left out: the settings are then those OUT/compare.json "
                                                    "recorded")
    FLAGS.add(parser, "--out", "out", "folder for the runs, the evaluation and the comparison (refused if it is "
                                      "not empty, unless --resume)")
    parser.add_argument("--workers", type=int, default=0, help="parallel processes of the evaluation; the results "
                                                               "do not depend on it (default: one per CPU core)")
    parser.add_argument("--resume", action="store_true", help="continue the comparison in --out: train only the "
                                                              "runs not finished, then evaluate what is missing")


def _recorded(args: argparse.Namespace) -> RecordedSettings:
    """The settings of the comparison in --out (or the default out) as compare.json recorded them, in the shape of a
    comparison config: its resolved training recipe is given as `train`. UserError when there is no readable
    record."""
    from navigator.commands.common import recorded_settings
    from navigator.comparison.config import RECORD, RECORD_FORMAT, RECORD_VERSION, CompareConfig
    from navigator.config import field_default
    from navigator.errors import UserError
    from navigator.evaluation.folder import with_added_settings
    from navigator.resume import require_record_format
    from navigator.training.config import with_added_settings as with_added_training_settings

    out = Path(args.out if args.out is not None else field_default(CompareConfig, "out"))
    recorded = recorded_settings(out / RECORD, "settings", check_format=lambda document: require_record_format(
        document, out / RECORD, RECORD_FORMAT, (1, RECORD_VERSION), "start the comparison over in another --out",
        flag="--resume"))
    if recorded is None and (out / RECORD).exists():
        raise UserError(f"--resume: {out / RECORD} cannot be read or records no settings (it is damaged); start the "
                        f"comparison over in another --out")
    if recorded is None:
        from navigator.resume import another_commands_output

        other = another_commands_output(out, "--resume", "comparison")
        if other is not None:
            raise other
        if out.is_dir() and any(out.iterdir()):  # runs or evaluations without the record: nothing can continue them
            raise UserError(f"--resume: {out} holds no comparison record ({RECORD}), which says what its runs were "
                            f"started with, so the comparison there cannot be continued; start it over in another "
                            f"--out, or choose the comparison's folder with --out")
        raise UserError(f"--resume: {out} holds no readable comparison record ({RECORD}) to take its settings from; "
                        f"give --config with the comparison's config, or choose the comparison's folder with --out")
    data = dict(recorded.data)
    # The resources it was started with (threads: the rounding of its training), which compare.json keeps apart.
    resources = recorded_settings(out / RECORD, "resources")
    data["train"] = {**with_added_training_settings(data.pop("base", {})), **(resources.data if resources else {})}
    data["evaluation"] = with_added_settings(data.get("evaluation", {}))
    return RecordedSettings(data, recorded.where)


def run(args: argparse.Namespace) -> int:
    from navigator.backends import check_reachable
    from navigator.commands.common import check_output_folder, output_console, progress_bar
    from navigator.comparison.config import all_runs_finished
    from navigator.dataset.reader import open_datasets, require_episodes
    from navigator.errors import UserError
    from navigator.workers import check_workers

    check_workers(args.workers)
    if args.config is None and not args.resume:
        raise UserError("give --config, a comparison config such as launch/compare/fly_to_target.yaml (or --resume "
                        "to continue the comparison in --out)")
    config = FLAGS.load(args, args.config if args.config is not None else _recorded(args))
    out_flag = "--out" if args.out is not None else f"out in {args.config}:"
    check_output_folder(Path(config.out), out_flag, continuing=args.resume, kind="comparison")
    args.output_folder = Path(config.out)  # where an interrupted comparison is continued (the config's out)
    if not (args.resume and all_runs_finished(config)):  # a finished one is only reported again: no data needed
        existing = list(config.base.data)
        if config.base.collect is not None:  # collected by the first run when missing; reused as it is by the others
            check_output_folder(Path(existing.pop(0)), "the dataset to collect, data[0],", continuing=True,
                                kind="dataset")
        datasets = open_datasets([Path(path) for path in existing]) if existing else []
        require_episodes(datasets, f"data in {args.config}:" if args.config else "data:")
        check_reachable(config.base.backend)
        _refuse_training_worlds(config, datasets, str(args.config) if args.config else f"{config.out}/compare.json")
    # Only now the pipelines (and torch, seconds to import): bad settings above are refused at once.
    from navigator.commands.display import EvaluationDisplay, TrainingDisplay
    from navigator.comparison.runner import Hooks, run_comparison
    from navigator.comparison.table import cell

    console = output_console()
    with progress_bar(console) as progress:
        class Show(Hooks):
            def __init__(self) -> None:
                self.training_hooks = TrainingDisplay(console, progress, indent="  ")
                self.evaluation_hooks = EvaluationDisplay(console, progress, heading="[bold]evaluation[/bold]: ")

            def run(self, model: str, seed: int, index: int, total: int, finished: bool) -> None:
                name = f"{model} seed {seed} ({index + 1}/{total})"
                self.training_hooks.label = f"{name} · "
                console.print(f"[bold]{name}[/bold]" + (": finished before" if finished else ""))

            def training(self) -> TrainingDisplay:
                return self.training_hooks

            def evaluation(self) -> EvaluationDisplay:
                return self.evaluation_hooks

        document = run_comparison(config, args.resume, args.workers, Show())

    for entry in document["models"]:
        console.print(f"{entry['model']:>8}: " + "  ".join(f"{suite} {cell(entry['suites'][suite])}"
                                                           for suite in document["suites"]))
    console.print(f"comparison written to {Path(config.out) / 'comparison.md'} (and comparison.json, comparison.png)")
    return 0


def _refuse_training_worlds(config, datasets: list, source: str) -> None:
    """Refuse, before any training, evaluation worlds that the runs will train on: the recipe's demonstrations (its
    `collect` parts, and the recorded seeds of the other `datasets` it reads) and its DAgger rounds. The evaluation
    would find the overlap in every checkpoint, but only after hours of training."""
    from navigator.config import to_dict
    from navigator.evaluation.seeds import SeedRange, TrainingSeeds, check_no_overlap, training_seeds

    recipe = training_seeds({"train_config": to_dict(config.base)})
    recorded = [SeedRange(r["task"], r["first"], r["count"], f"data in {dataset.path}")
                for dataset in datasets for r in dataset.manifest.seed_ranges()]
    evaluation = config.evaluation
    check_no_overlap(f"each run of the recipe (in {source})", TrainingSeeds((*recipe.ranges, *recorded), True),
                     evaluation.task, range(evaluation.seed, evaluation.seed + evaluation.episodes),
                     seed_option=f"evaluation.seed in {source}:")
