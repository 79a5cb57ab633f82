"""Train a policy by imitation from recorded demonstrations (behaviour cloning, then optional DAgger rounds).

examples:
  navigator train --data datasets/summer --model cfc-ncp --out runs/cfc-ncp
  navigator train --config launch/train/fly_to_target.yaml      # collects the data first if it is missing
  navigator train --data datasets/summer --model lstm --out runs/lstm --epochs 10
  navigator train --out runs/cfc-ncp --resume                       # after an interruption
  navigator train --out runs/cfc-ncp --epochs 40 --extend           # the same run, trained longer
  navigator train --config launch/train/fly_to_target.yaml --dagger 3 --backend ray --address auto  # roll-outs on Ray
  navigator train --data datasets/summer --out runs/ddp --nproc 2  # 2 data-parallel processes (torchrun)
  torchrun --nproc-per-node 2 -m navigator train --data datasets/summer --out runs/ddp   # the same, by hand
  navigator fly --pilot runs/cfc-ncp/best.pt                        # fly the result

Writes OUT/run.json (the settings), OUT/best.pt (the policy with the best validation loss), OUT/last.pt (the state to
resume from), OUT/history.json and TensorBoard logs in OUT/tensorboard (tensorboard --logdir OUT). With --resume or
--extend and no --config, the settings are those OUT/run.json recorded: flags given on top must match them
(--extend: or raise --epochs).

--backend ray (or `backend: {kind: ray, address: ...}` in the recipe) flies the recipe's collection and its DAgger
roll-outs on Ray actors, as `navigator collect --backend ray` does (the DAgger pilot, OUT/best.pt, must be readable
at the same path on every node); training itself runs here. The backend may change when a run is resumed.

--nproc N (or `torchrun --nproc-per-node N -m navigator train ...`, also across machines) trains data-parallel:
DistributedDataParallel over gloo on CPUs, --batch-size being the global batch that the processes share. Rank 0
writes everything and prints the progress; the others write nothing. Any number of processes may resume a run.
--nproc makes every check (settings, folders, datasets, what --resume or --extend continues) before torchrun starts;
torchrun's logs go to a temporary folder removed at the end; Ctrl-C stops every process, keeping the saved epochs.
"""

from __future__ import annotations

import argparse
import shlex
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
    FLAGS.add(parser, "--batch-size", "batch_size", "windows per batch (with --nproc or torchrun: per step of all "
                                                     "processes together, each training its share)", type=int)
    FLAGS.add(parser, "--lr", "lr", "peak learning rate", type=float)
    FLAGS.add(parser, "--seed", "seed", "seed of initialisation, split, shuffling and augmentation", type=int)
    FLAGS.add(parser, "--device", "device", "where the network trains: cpu, cuda (the first GPU) or cuda:N; the same "
                                            "seed gives the same result on the same device")
    FLAGS.add(parser, "--dagger", "dagger.rounds", "DAgger rounds after the first training", type=int,
              metavar="ROUNDS")
    FLAGS.add(parser, "--backend", "backend.kind", "where the recipe's roll-outs fly (its collection, DAgger): "
                                                   "local | ray")
    FLAGS.add(parser, "--address", "backend.address", "with --backend ray: auto or the Ray head's HOST:PORT",
              default_text="start a local Ray instance")
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="train with N data-parallel processes on this machine (DistributedDataParallel over "
                             "gloo, started through torchrun); the result matches one process with the same "
                             "--batch-size within float rounding. At most the machine's CPU cores. For several "
                             "machines run torchrun yourself (see the README)")
    add_continuation_flags(
        parser, resume_help="continue an interrupted run in --out; without --config, the settings are those "
                            "OUT/run.json recorded, so no flag needs retyping",
        extend_help="train the run in --out, finished or not, for a larger --epochs (the only setting that may "
                    "change; the learning-rate schedule is stretched over the new count, so the rate rises again; to "
                    "continue an interrupted --extend, use --resume)")


def run(args: argparse.Namespace) -> int:
    from navigator.errors import UserError
    from navigator.training import launcher

    launch = launcher.launch_environment()  # a half-set one is no group: every process says so
    try:
        launcher.check_local_processes(launch)
        if launch is not None and args.nproc is not None:
            raise UserError("--nproc starts its own torchrun group, but this process already runs in one; drop "
                            "--nproc (torchrun's --nproc-per-node says how many)")
    except UserError:
        if launch is not None and launch.follower:  # every process of the group refuses alike: rank 0 says it
            return 2
        raise
    if args.nproc is not None:
        launched = _launch(args)
        if launched is not None:
            return launched
    try:
        return _train(args)
    except KeyboardInterrupt:  # Ctrl-C, or torchrun stopping the group
        if launcher.interrupted_by_launcher():  # navigator train --nproc says how to continue
            return 0
        if launch is not None and launch.follower:  # rank 0 says how to continue
            return 130
        raise


def _train(args: argparse.Namespace) -> int:
    """Train in this process: alone, or as one process of a torchrun group (rank 0 running the recipe, the others
    following it)."""
    from navigator.errors import UserError
    from navigator.training import launcher

    launch = launcher.launch_environment()
    if launch is None or not launch.joins:  # no group to join: torch is imported only after the settings' checks
        return _run(args)
    from navigator.training import distributed

    with distributed.joined() as group:
        if group is None or group.leader:
            return _run(args)
        from navigator.training.pipeline import follow_recipe

        try:
            follow_recipe(group)
        except UserError as error:  # rank 0 reports the run's errors unmarked; this says whose it is
            raise UserError(str(error) if isinstance(error, distributed.GroupFailed) else
                            f"rank {group.rank}: {error}") from None
        return 0


def _launch(args: argparse.Namespace) -> int | None:
    """--nproc N: make here every check the command makes before any work (settings, folders, datasets, what a
    --resume or --extend continues), before any process starts, then run this command as N processes of one
    torchrun group on this machine; returns their exit status (None for N = 1: train here)."""
    from navigator.errors import UserError
    from navigator.training import launcher

    launcher.check_process_count(args.nproc, "--nproc")
    config = FLAGS.load(args, _source(args))
    _check_folders(config, args)
    if args.nproc > 1 and config.device != "cpu":
        raise UserError(f"--nproc {args.nproc} trains with processes on CPUs (DistributedDataParallel over gloo), "
                        f"not on --device {config.device}: drop --nproc to train on the GPU, or give --device cpu")
    from navigator.training.pipeline import check_recipe  # torch, seconds to import: after the quick checks

    check_recipe(config, args.resume, extend=args.extend, given_as=FLAGS.given_as(args))
    if args.nproc == 1:
        return None
    launcher.launch(args.nproc, ["train", *_arguments_without_nproc(args)], config.threads)
    return 0


def _arguments_without_nproc(args: argparse.Namespace) -> list[str]:
    """The command line that gives `args` again, less --nproc: what each launched process runs."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    arguments = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest == "nproc" or value is None or value is False:
            continue
        flag = action.option_strings[0]
        if value is True:
            arguments.append(flag)
        else:  # FLAG=VALUE, so that a value starting with '-' is not read as a flag
            arguments += [f"{flag}={item}" for item in (value if isinstance(value, list) else [value])]
    return arguments


def _run(args: argparse.Namespace) -> int:
    from navigator.commands.common import output_console, progress_bar

    config = FLAGS.load(args, _source(args))
    _check_folders(config, args)
    # Only now the pipeline (and torch, seconds to import): bad settings above are refused at once.
    from navigator.commands.display import TrainingDisplay
    from navigator.training.pipeline import run_recipe

    console = output_console()
    with progress_bar(console) as progress:
        best = run_recipe(config, args.resume, TrainingDisplay(console, progress), extend=args.extend,
                          given_as=FLAGS.given_as(args))
    from navigator.training.pipeline import load_trained

    policy, metadata = load_trained(best)
    counts = policy.parameter_counts()
    console.print(f"{config.model}: {counts['head']:,} head + {counts['cnn']:,} CNN = {counts['total']:,} parameters"
                  f" · best validation loss {metadata['val_loss']:.4f} (epoch {metadata['epoch']}, "
                  f"{metadata['stage']})")
    console.print(f"best policy: {best}  ·  fly it: navigator fly --pilot {shlex.quote(str(best))}")
    return 0


def _source(args: argparse.Namespace) -> Path | RecordedSettings | None:
    """Where the settings come from before the flags: --config; or, continuing a run without one, what the run's
    OUT/run.json recorded. A folder without that record is refused here, before the defaults' missing --data could
    hide the real problem."""
    if args.config is not None or not (args.resume or args.extend):
        return args.config
    from navigator.commands.common import recorded_settings
    from navigator.errors import UserError
    from navigator.resume import nothing_to_continue
    from navigator.training.run_record import RUN_RECORD, read_record

    out = Path(args.out if args.out is not None else field_default(FLAGS.cls, "out"))
    if not (out / RUN_RECORD).is_file():
        flag = "--extend" if args.extend else "--resume"
        raise nothing_to_continue(out, flag, "training run", RUN_RECORD)
    read_record(out)  # a damaged record is said as such, not as the defaults' missing --data
    recorded = recorded_settings(out / RUN_RECORD, "config")
    if recorded is not None and "adapt" in recorded.data:  # `navigator adapt` made this run, with its own settings
        from navigator.training.run_record import finished

        flag = "--extend" if args.extend else "--resume"
        dagger = recorded.data.get("dagger")
        rounds = dagger.get("rounds", 0) if isinstance(dagger, dict) else 0
        if finished(out, rounds if isinstance(rounds, int) else 0):
            raise UserError(f"{flag}: {out} is an adaptation made by navigator adapt, not a training run, and it is "
                            f"finished; to train it longer, adapt again in another --out with a larger --epochs")
        raise UserError(f"{flag}: {out} is an adaptation made by navigator adapt, not a training run; continue it "
                        f"with: navigator adapt --out {shlex.quote(str(out))} --resume")
    if recorded is not None and args.backend is not None:
        # Where roll-outs run is not part of the run: --backend replaces the recorded backend whole (a recorded Ray
        # address does not carry over to the local backend).
        recorded = RecordedSettings({key: value for key, value in recorded.data.items() if key != "backend"},
                                    recorded.where)
    return recorded


def _check_folders(config, args: argparse.Namespace) -> None:
    """Before any work: the run folder can be written and holds nothing of the user's, every dataset exists (or,
    for the first one of a recipe with a `collect` section, can be collected), and the Ray cluster the roll-outs
    would fly on answers (not found only when the first DAgger round starts, after the training)."""
    from navigator.backends import check_reachable
    from navigator.commands.common import check_output_folder, print_warning
    from navigator.dataset.errors import DatasetNotFoundError
    from navigator.dataset.reader import open_datasets, require_episodes, require_one_scenario
    from navigator.errors import UserError
    from navigator.resume import relative_path_advice

    out_flag = "--out" if args.out is not None or args.config is None else f"out in {args.config}:"
    check_output_folder(Path(config.out), out_flag, continuing=args.resume or args.extend, kind="training run")
    args.output_folder = Path(config.out)  # where an interrupted run is continued (a recipe's out, or --out)
    existing = list(config.data)
    if config.collect is not None:
        check_output_folder(Path(existing.pop(0)), "the dataset to collect, data[0],", continuing=True,
                            kind="dataset")
    if existing:
        given = "--data" if args.data is not None else f"data in {args.config}" if args.config else "data"
        try:
            datasets = open_datasets([Path(path) for path in existing])
        except DatasetNotFoundError as error:  # named where the user gave it: the flag or the recipe's key
            missing = next((path for path in existing if not Path(path).exists()), None)
            advice = "" if missing is None else relative_path_advice(missing)
            raise UserError(f"{given}: {error}{advice}") from None
        require_episodes(datasets, f"{given}:")
        require_one_scenario(datasets, f"{given}:")
    if config.backend.kind != "local" and config.collect is None and not config.dagger.rounds:
        print_warning(f"backend {config.backend.kind}: this recipe flies nothing (no collect section, no DAgger "
                      f"rounds) and training itself runs here, so the backend is not used")
    check_reachable(config.backend)
