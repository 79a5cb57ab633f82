"""The `navigator` command: one entry point, one subcommand per user journey.

Each subcommand lives in its own module under `navigator/commands/` with two functions, `add_arguments(parser)` and
`run(args) -> int`. Modules keep their heavy imports (torch, pybullet) inside `run`, so that `navigator --help` is fast
and the onboard runtime works on a companion computer that has neither.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import re
import signal
import sys
import threading
import typing
from pathlib import Path

from navigator import __version__
from navigator.config import YAML_INTEGER, DefaultsHelpFormatter, SettingError, from_home, integer_of
from navigator.console import INTERRUPTED_BEFORE_START
from navigator.errors import ACCESS_ERRORS, UserError, access_problem
from navigator.output_folders import RECORDS
from navigator.workers import WorkerLost

# name -> (module under navigator.commands, one-line help). Order is the order users meet them.
COMMANDS: dict[str, tuple[str, str]] = {
    "fly": ("fly", "fly simulated episodes (the shipped policy, the expert or a checkpoint) and report metrics"),
    "collect": ("collect", "record expert demonstrations (with recovery noise) into a dataset"),
    "train": ("train", "train a policy by imitation (behaviour cloning, then optional DAgger rounds)"),
    "data": ("data", "inspect, verify, preview and export recorded demonstration datasets"),
    "eval": ("eval", "evaluate pilots in closed loop on the same held-out worlds per suite; report with intervals"),
    "compare": ("compare", "train every model on the same data and seeds, evaluate all on the same worlds; table"),
    "explain": ("explain", "explain a policy on one episode: saliency video, neuron traces, wiring, neuron ablation"),
    "adapt": ("adapt", "adapt a trained policy to new surroundings from a few demonstrations; learning curves"),
    "onboard": ("onboard", "fly an exported bundle over MAVLink on the companion computer; plot its flight logs"),
    "export": ("export", "export a policy to an ONNX bundle for the onboard runtime, verified against PyTorch"),
    "deploy": ("deploy", "put a bundle on the companion computer over SSH: self-tested, switched atomically, "
                         "reversible (--rollback, --status)"),
    "sitl": ("sitl", "run a simulated world in real time as a PX4/ArduPilot MAVLink vehicle with a camera stream"),
}


# Third-party module -> the extra of pyproject.toml that installs it, for the message when a command needs a part that
# is not installed (`navigator fly` on a companion computer that has only `liquid-navigator[onboard]`).
EXTRA_OF_MODULE = {
    "pybullet": "sim", "gymnasium": "sim", "av": "sim",
    "torch": "train", "ncps": "train", "tensorboard": "train", "matplotlib": "train", "h5py": "train",
    "onnxruntime": "onboard", "pymavlink": "onboard", "onnx": "all", "captum": "explain",
    "ray": "cluster",
}


class UsageError(UserError):
    """A command line argparse cannot parse; `parser` is the (sub)command's parser, for its usage line."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """argparse, raising instead of exiting on a bad command line, so that `main` reports every user error the same
    way (and in-process callers get exit code 2 back rather than a SystemExit). Options are taken as spelt in full
    only: argparse's abbreviations (`--ep` for `--episodes`) slip past the refusal of a repeated option, and would
    change meaning when a later release adds an option with the same start."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # `type=int` and `type=float` read numbers as a YAML file's are read (navigator.config), not as Python's
        # int() and float() do, which take `1_000`, ` 5 ` and `1e3` (float) where a file's value would be refused.
        self.register("type", int, whole_number)
        self.register("type", float, number)

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(self, message)


_NUMBER = re.compile(r"[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?|[-+]?(inf|infinity|nan)", re.IGNORECASE)


def whole_number(text: str) -> int:
    """A flag's whole number, as a file's is written: decimal digits with an optional sign, or 0o octal and 0x
    hexadecimal. Refused with how to write it: `1_000` (1000), `0b11` (3), `1e3` or `3.0` (a fraction to a file's
    loader too)."""
    return _flag_number(text, YAML_INTEGER, integer_of, "whole number", _whole_digits)


def _whole_digits(text: str) -> int | None:
    """The whole number `text` means, exactly (`1e30` is 10**30, which a float is not; `0x10` is 16), or None for a
    fraction, a non-finite value, or one of more than 30 digits (which no setting takes, and which would be long to
    print)."""
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        try:
            value = decimal.Decimal(int(text, 0))  # hexadecimal, octal or binary with Python's prefix
        except ValueError:
            return None
    if not value.is_finite() or value.adjusted() >= 30 or value != value.to_integral_value():
        return None
    return int(value)


def number(text: str) -> float:
    """A flag's number: decimal, with an optional exponent; `inf` and `nan` as Python spells them (the setting then
    says whether it takes them), or a whole number as `whole_number` reads it (`0x3`, as a file's). Underscores and
    spaces are refused, as in a file's numbers."""
    if YAML_INTEGER.fullmatch(text) is not None:
        return float(integer_of(text))
    return _flag_number(text, _NUMBER, float, "number", _float_or_none)


def _float_or_none(text: str) -> float | None:
    """The number Python's float() reads in `text`, or None."""
    try:
        return float(text)
    except ValueError:
        return None


def _flag_number(text: str, pattern: re.Pattern[str], read: typing.Callable[[str], typing.Any], kind: str,
                 written: typing.Callable[[str], typing.Any]) -> typing.Any:
    """`read(text)` where `pattern` matches all of it; else an ArgumentTypeError saying how to write the number
    Python would have read, underscores dropped (`written(text)`, None where there is no such way). An empty value
    (`--seed=`) is passed through, to be refused after parsing as every option's is (`_refuse_empty_values`)."""
    if pattern.fullmatch(text) is not None:
        return read(text)
    if text == "":
        return text
    hint = written(text.replace("_", "").strip())
    advice = f" (write it as {hint!r})" if hint is not None else ""
    raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}{advice}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="navigator",
        description="liquid-navigator: fly, record demonstrations for, train and evaluate liquid neural network "
                    "drone policies.",
        epilog="Run 'navigator COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"liquid-navigator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(f"navigator.commands.{module_name}")
        # A command with a mode of its own (adapt curve) adds its own -h/--help (PARSER_OPTIONS add_help False).
        sub = subparsers.add_parser(name, help=summary, description=module.__doc__,
                                    formatter_class=DefaultsHelpFormatter, **getattr(module, "PARSER_OPTIONS", {}))
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def _parsers_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.ArgumentParser]:
    """The parsers of the command `args` is of, outermost first: `navigator onboard plot` -> [onboard's, plot's].
    The last one's usage and help page are the ones a usage error points to."""
    chain, current = [], parser
    while True:
        sub = next((a for a in current._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = None if sub is None else getattr(args, sub.dest, None)
        if sub is None or chosen not in sub.choices:
            return chain
        current = sub.choices[chosen]
        chain.append(current)


def _refuse_repeated_options(chain: list[argparse.ArgumentParser], argv: list[str]) -> None:
    """argparse lets the last of `--epochs 1 --epochs 2` win silently; a repeated option that takes one value is
    refused instead (as a duplicate YAML key is), since one of the two values is not what the user meant."""
    given = [token.split("=", 1)[0] for token in argv[: argv.index("--") if "--" in argv else len(argv)]]
    for action in (action for command_parser in chain for action in command_parser._actions):
        if not action.option_strings or isinstance(action, (argparse._AppendAction, argparse._HelpAction)):
            continue
        count = sum(given.count(option) for option in action.option_strings)
        if count > 1:
            raise UsageError(chain[-1], f"{'/'.join(action.option_strings)} given {count} times; give it once")


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option of `parser` and of the sub-commands below it (`data preview`), by option string."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(_options(sub))
        found.update({option: action for option in action.option_strings})
    return found


def _refuse_empty_values(chain: list[argparse.ArgumentParser], argv: list[str]) -> None:
    """An empty value (`--out ''`, `--out=`, an empty argument) is refused: a path would become the current folder,
    a number or name could not be one; leaving the option out is how its default is asked for."""
    command_parser = chain[-1]
    options = _options(chain[0])
    for index, token in enumerate(argv[: argv.index("--") if "--" in argv else len(argv)]):
        option, equals, value = token.partition("=")
        if token.startswith("--") and equals and not value:
            empty = option
        elif token == "":
            before = argv[index - 1] if index else ""
            if not (before in options and options[before].nargs != 0):
                raise UsageError(command_parser, "an empty argument was given; give a value")
            empty = before
        else:
            continue
        action = options.get(empty)
        drop = "" if action is None or action.required else f", or omit {empty}"
        raise UsageError(command_parser, f"{empty}: empty value; give a value{drop}")


class _Termination:
    """SIGTERM (kill, timeout, systemctl stop, a batch scheduler) stops a command the way Ctrl-C does, so that the
    same clean-up runs (a new output folder with nothing saved is removed, workers are stopped, what finished is
    kept); `received` tells main to exit 143 rather than 130. Commands with their own stop semantics (onboard,
    torchrun training) install their own handler while they run."""

    received = False

    @classmethod
    def handle(cls, signum: int, frame: object) -> None:
        cls.received = True
        raise KeyboardInterrupt


_NEGATIVE_VALUE = re.compile(r"-(\.?[0-9]|inf|nan)", re.IGNORECASE)


def _negative_values_attached(argv: list[str], options: dict[str, argparse.Action]) -> list[str]:
    """argv with a value that starts with a minus sign joined to the option before it (`--sweep-levels -1,2` as
    `--sweep-levels=-1,2`): argparse takes such a value for an option unless it is one plain negative number, and
    says only "expected one argument", where the project's own check names what is wrong with the value. Only an
    option of `options` that takes a value gets one (`--gui -5` stays two arguments); nothing after `--` is joined."""
    joined: list[str] = []
    for index, token in enumerate(argv):
        previous = joined[-1] if joined else ""
        takes_value = previous in options and options[previous].nargs != 0
        if _NEGATIVE_VALUE.match(token) and takes_value and "--" not in argv[:index]:
            joined[-1] = f"{previous}={token}"
        else:
            joined.append(token)
    return joined


def _expand_home(args: argparse.Namespace) -> None:
    """`~/x` and `~user/x` in any value given as a path, as the shell expands them: it does not in `--out=~/x`, nor
    in a quoted '~/x', and a folder named `~` made in the current one would surprise. No name navigator takes (task,
    preset, model) starts with `~`, so every such text value is a path: one of this machine, except in the options a
    command lists as naming things on another (`TARGET_VALUES`: deploy's companion computer)."""
    remote = getattr(getattr(args, "_module", None), "TARGET_VALUES", ())
    for name, value in vars(args).items():
        if name not in remote:
            setattr(args, name, from_home(value))


def _misplaced(command_parser: argparse.ArgumentParser, unknown: list[str], argv: list[str]) -> str | None:
    """For options of the command run, given before its name (`navigator data --json info`), where they belong.
    What follows `--` is an argument, wherever it would belong as an option."""
    before_end = argv[: argv.index("--")] if "--" in argv else argv
    ours = [token for token in unknown if token.split("=", 1)[0] in _options(command_parser) and token in before_end]
    if not ours:
        return None
    return (f"{' '.join(ours)} {'is an option' if len(ours) == 1 else 'are options'} of '{command_parser.prog}': "
            f"give {'it' if len(ours) == 1 else 'them'} after '{command_parser.prog}'")


def _cause(error: UsageError, argv: list[str]) -> str:
    """What to tell about a usage error: argparse sets an option it does not know aside and reads the value after it
    as the next positional, so a mistyped option before a value (`navigator onboard --bundl b`) was reported as that
    value being an invalid choice of sub-command, and a mistyped required option (`--checkpont`) as a missing one.
    The unknown option is then the cause, and named."""
    if "invalid choice" not in str(error) and "arguments are required" not in str(error):
        return str(error)
    options = [token for token in argv[: argv.index("--") if "--" in argv else len(argv)]
               if token.startswith("-") and not _NUMBER.fullmatch(token)]
    own = {option for action in error.parser._actions for option in action.option_strings}
    unknown = [token for token in options if token.split("=", 1)[0] not in {*_options(error.parser), "-h", "--help"}]
    if unknown:
        return f"unrecognized arguments: {' '.join(unknown)}"
    if "invalid choice" in str(error) and any(token.split("=", 1)[0] not in own for token in options):
        # An option of a command given before the command's name, whose value was then read as that name.
        return f"{error}: give a command's options after its name (navigator COMMAND OPTIONS)"
    return str(error)


def main(argv: list[str] | None = None, exiting: bool = False) -> int:
    """Run one command; returns the exit code: 0 done, 1 a verdict of failure (e.g. an unsound dataset), 2 bad
    input (one line on stderr, no traceback), 130 interrupted (Ctrl-C), 143 stopped by SIGTERM. Anything else raised
    is a bug and shows its traceback.

    `exiting`: the process ends once this returns (the console script): Ctrl-C and SIGTERM are then ignored from
    the moment the command has finished, so that a stop arriving while the interpreter shuts down leaves the exit
    status as the command set it (it ended the process with -15, or a traceback, its work done and saved).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from navigator.commands.common import json_stdout

        parser = build_parser()
        argv = _negative_values_attached(argv, _options(parser))
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named with the command's own help, where its options are listed
            command_parser = _parsers_run(parser, args)[-1]
            said = _misplaced(command_parser, unknown, argv) or f"unrecognized arguments: {' '.join(unknown)}"
            raise UsageError(command_parser, said)
        _refuse_repeated_options(_parsers_run(parser, args), argv)
        _refuse_empty_values(_parsers_run(parser, args), argv)
        _expand_home(args)
    except UsageError as error:
        print(f"{error.parser.prog}: error: {_cause(error, argv)} (see '{error.parser.prog} --help')", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:  # --help shows defaults from the command's config, which may need an extra
        return _missing_extra(error, f"navigator {next((a for a in argv if not a.startswith('-')), '')}".strip())
    except KeyboardInterrupt:  # while the command line is still being read: nothing has started
        print(INTERRUPTED_BEFORE_START, file=sys.stderr)
        return 130
    _Termination.received = False
    if getattr(args, "extend", False) and getattr(args, "out", None) is not None:
        args.record_before = _record(Path(args.out))  # an interrupted --extend says whether it had recorded itself
    # Signal handlers can only be set from the main thread (main() called from another one keeps SIGTERM's default).
    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _Termination.handle) if installed else signal.SIG_DFL
    try:
        try:
            with json_stdout(getattr(args, "json", False)):
                return int(args._module.run(args) or 0)
        except (UserError, SettingError) as error:  # SettingError: a config dataclass refused a value
            print(f"{_command_name(args)}: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            if error.errno not in ACCESS_ERRORS:
                raise
            out = _output_folder(args)
            again = "run it again" if out is None or _record(out) is None else (
                "rerun the same command" + ("" if args.resume else " with --resume") + " to continue")
            print(f"{_command_name(args)}: error: {access_problem(error, out, again)}", file=sys.stderr)
            return 2
        except WorkerLost as error:
            print(f"{_command_name(args)}: {interrupted(args, str(error))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            stopped = "stopped by SIGTERM" if _Termination.received else "interrupted"
            print(f"{_command_name(args)}: {interrupted(args, stopped)}", file=sys.stderr)
            return 143 if _Termination.received else 130
        except ModuleNotFoundError as error:
            return _missing_extra(error, _command_name(args))
    except KeyboardInterrupt:  # a stop while an outcome was being said (torchrun stops every rank as soon as one
        # ends, and a rank may be saying why it ended): the stop ends it, without a traceback
        return 143 if _Termination.received else 130
    finally:
        if installed and exiting:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif installed:
            signal.signal(signal.SIGTERM, previous)


def _missing_extra(error: ModuleNotFoundError, command: str) -> int:
    """Exit status 2, having said which extra provides the module `command` lacks; re-raises `error` when no extra
    provides it (a broken install or a bug, shown in full)."""
    extra = EXTRA_OF_MODULE.get((error.name or "").partition(".")[0])
    if extra is None:
        raise error
    print(f"{command}: error: this command needs {error.name}, which this installation lacks (a companion computer "
          f"installs only the onboard extra); install it with: pip install 'liquid-navigator[{extra}]'",
          file=sys.stderr)
    return 2


def _command_name(args: argparse.Namespace) -> str:
    """The command as typed, with its action where it has one: "navigator data preview", "navigator adapt curve"."""
    action = next((value for value in (getattr(args, "action", None), getattr(args, "mode", None))
                   if isinstance(value, str)), None)
    return " ".join(["navigator", args.command, *([action] if action else [])])


def interrupted(args: argparse.Namespace, stopped: str = "interrupted") -> str:
    """What to say after Ctrl-C (or SIGTERM: `stopped` says which): for a command that can continue its work (it
    takes --resume: collect, train, eval, adapt, compare, adapt curve), how to continue it, since what it finished is
    kept. Its output folder is --out, or the config's `out` once the command has read it (`args.output_folder`);
    something was saved there once it holds its record."""
    if not hasattr(args, "resume"):
        return stopped
    out = _output_folder(args)
    if out is None or _record(out) is None:
        if args.command == "train":  # its recipe may have collected demonstrations before the run recorded itself
            return (f"{stopped} before the run recorded itself; rerun the same command to start it again (any "
                    f"demonstrations its recipe collected are kept, and their collection continued)")
        return f"{stopped} before anything was saved; rerun the same command to start again"
    if getattr(args, "extend", False):
        if _record(out) == getattr(args, "record_before", None):  # stopped before the extension was recorded
            return f"{stopped} before the extension was recorded; rerun the same command to extend it"
        return f"{stopped}; rerun the same command with --resume in place of --extend to continue"
    if args.resume:
        return f"{stopped}; rerun the same command to continue"
    return f"{stopped}; rerun the same command with --resume to continue"


def _output_folder(args: argparse.Namespace) -> Path | None:
    """The output folder of a command that continues its work (it takes --resume): --out, or the config's `out`
    once the command has read it (`args.output_folder`); None for other commands, or when it is not known yet."""
    if not hasattr(args, "resume"):
        return None
    out = getattr(args, "output_folder", None) or getattr(args, "out", None)
    return Path(out) if out is not None else None


def _record(out: Path) -> bytes | None:
    """The bytes of the record of the output folder `out` (its manifest.json, run.json, ...), or None if it holds
    none: an interrupted command compares them with what they were when it started."""
    for name in RECORDS.values():
        try:
            return (out / name).read_bytes()
        except OSError:  # missing, or unreadable: the next kind's
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
