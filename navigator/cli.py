"""The `navigator` command: one entry point, one subcommand per user journey.

Each subcommand lives in its own module under `navigator/commands/` with two functions, `add_arguments(parser)` and
`run(args) -> int`. Modules keep their heavy imports (torch, pybullet) inside `run`, so that `navigator --help` is fast
and the onboard runtime works on a companion computer that has neither.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from navigator import __version__
from navigator.errors import UserError

# name -> (module under navigator.commands, one-line help). Order is the order users meet them.
COMMANDS: dict[str, tuple[str, str]] = {
    "fly": ("fly", "fly simulated episodes (the shipped policy, the expert or a checkpoint) and report metrics"),
    "collect": ("collect", "record expert demonstrations (with recovery noise) into a dataset"),
    "train": ("train", "train a policy by imitation (behaviour cloning, then optional DAgger rounds)"),
    "data": ("data", "inspect, verify, preview and export recorded demonstration datasets"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="navigator",
        description="liquid-navigator: fly, record demonstrations for and train liquid neural network drone "
                    "policies.",
        epilog="Run 'navigator COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"liquid-navigator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(f"navigator.commands.{module_name}")
        sub = subparsers.add_parser(name, help=summary, description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except UserError as error:
        print(f"navigator {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"navigator {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
