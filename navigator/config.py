"""Dataclass configurations loaded from YAML files (the ones in `launch/`), overridable from the command line.

A config is a plain (possibly nested) dataclass. `load_config(Cls, path, overrides, flags)` reads a YAML mapping into
it and refuses unknown keys, duplicate keys, wrongly typed values, non-finite numbers and values out of a field's
range, with a message in the user's terms: the flag (`--max-seconds`) when the value came from one, else the key and
the file (`scenario.max_seconds in launch/fly.yaml`). Continued work (`--resume`) may load the settings it recorded
(`RecordedSettings`) in place of a file. Ranges are declared once per field with `setting(...)` and
checked by `check_settings(self)` in the dataclass's `__post_init__`, so a config built in code is held to them too.
`ConfigFlags` declares a command's flags once: argparse options whose help shows the dataclass default, the
overrides they give, and the flag names errors use.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from navigator.errors import UserError, refuse_if_denied
from navigator.json_fields import read_problem, show
from navigator.resume import GivenAs, is_within

T = TypeVar("T")

MAX_SEED = 2**31 - 1  # seeds are combined and offset (seed + episode index, seed * 1_000_003 + epoch) below 2**64
# Episodes one command may plan (per suite and pilot, per collected part): its plan is held in memory before the
# first flight, and a count past this is a typo (a million episodes is days of flight on a 2-core machine).
MAX_EPISODES = 1_000_000
_BOUNDS = "navigator.bounds"  # field metadata key: a Bounds
_NONFINITE = "navigator.nonfinite"  # field metadata key: True where NaN and infinities are meaningful
_SETTINGS_OF = "navigator.settings_of"  # field metadata key: (config class, names) a mapping field holds


class ConfigError(UserError, ValueError):
    """A configuration file or value that cannot be used; the message says what and how to fix it.

    `key` is the dotted setting (`scenario.max_seconds`, `parts[0].preset`) when one setting is at fault, and
    `problem` what is wrong with it, so that the loader can name the setting as the user wrote it (flag or file).
    `mentions` are other dotted settings the problem names as `{key}` (see SettingError)."""

    def __init__(self, message: str, key: str | None = None, problem: str | None = None,
                 mentions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.key = key
        self.problem = problem
        self.mentions = mentions

    def __reduce__(self):  # pickled (from a worker process) by its arguments, not the message alone
        return type(self), (self.args[0], self.key, self.problem, self.mentions)


class SettingError(ValueError):
    """Raised by a dataclass's own checks: one field `name` is invalid; `problem` says why ("must be > 0, got -1").

    A problem that involves other settings too (the last seed depends on `seed` and `episodes`) names each one it
    lists in `mentions` as `{dotted.name}`, so that the loader can write it as the user gave it (`--episodes`, or
    `episodes in fly.yaml`); `str()` of the error shows the plain names. A ValueError, so that code building configs
    directly sees the usual exception type."""

    def __init__(self, name: str, problem: str, mentions: tuple[str, ...] = ()) -> None:
        super().__init__(_phrase(name, _named(problem, mentions, lambda mention: mention)))
        self.name = name
        self.problem = problem
        self.mentions = mentions

    def __reduce__(self):  # pickled (from a worker process) by its arguments, not the message alone
        return type(self), (self.name, self.problem, self.mentions)


def _named(problem: str, mentions: tuple[str, ...], name: Callable[[str], str]) -> str:
    """`problem` with each `{mention}` written as `name(mention)`."""
    for mention in mentions:
        problem = problem.replace(f"{{{mention}}}", name(mention))
    return problem


def _phrase(where: str, problem: str) -> str:
    """'episodes' + 'must be at least 1' -> 'episodes must be at least 1' (and 'is ...'); other problems follow a
    colon."""
    return f"{where} {problem}" if problem.startswith(("must ", "is ")) else f"{where}: {problem}"


@dataclasses.dataclass(frozen=True)
class Bounds:
    """An interval a number must lie in; None leaves that side open-ended."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        """What is wrong with `value`, or None when it lies inside."""
        if (self.ge is not None and not value >= self.ge) or (self.gt is not None and not value > self.gt) or (
                self.le is not None and not value <= self.le) or (self.lt is not None and not value < self.lt):
            return f"must be {self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        """"at least 1", ">= 0", "> 0", "in (0, 1)", "in [10, 170]"."""
        if self.le is None and self.lt is None:
            if self.ge is not None:
                return f"at least {_number(self.ge)}" if self.ge != 0 else ">= 0"
            return f"> {_number(self.gt)}"
        low = (f"[{_number(self.ge)}" if self.ge is not None
               else f"({_number(self.gt)}" if self.gt is not None else "(-inf")
        high = f"{_number(self.le)}]" if self.le is not None else f"{_number(self.lt)})"
        return f"in {low}, {high}"


def _number(value: float) -> str:
    """1.0 -> "1", 2147483647 -> "2147483647", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
            nonfinite: bool = False) -> Any:
    """A dataclass field with its valid range declared beside its default, e.g. `episodes: int = setting(5, ge=1)`.
    Floats are finite unless `nonfinite=True`."""
    metadata: dict[str, Any] = {_NONFINITE: nonfinite}
    if (ge, gt, le, lt) != (None, None, None, None):
        metadata[_BOUNDS] = Bounds(ge, gt, le, lt)
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def settings_of(settings: Callable[[], type], names: tuple[str, ...] | None = None) -> Any:
    """A mapping field that holds settings of another config, the dataclass `settings()` (only those in `names`, if
    given), passed on as written: free-form to the loader, known to the hint for a key given at the wrong level
    ("epochs is set as train.epochs"). `settings` is called only for such a hint."""
    return dataclasses.field(default_factory=dict, metadata={_SETTINGS_OF: (settings, names)})


def check_settings(config: Any) -> None:
    """Check every field of dataclass instance `config` against its declared range, and its floats for NaN and
    infinities; call from `__post_init__`. Raises SettingError naming the first bad field."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value) and not f.metadata.get(_NONFINITE, False):
            raise SettingError(f.name, f"must be a finite number, got {value!r}")
        bounds = f.metadata.get(_BOUNDS)
        problem = bounds.problem(value) if bounds is not None else None
        if problem is not None:
            raise SettingError(f.name, problem)


def check_seed_span(seed: int, count: int, seed_name: str, count_name: str) -> None:
    """Episodes fly seeds `seed`, `seed` + 1, ..., `seed` + `count` - 1: the last must not pass MAX_SEED either.
    `seed_name` and `count_name` are the fields (dotted, relative to the dataclass that checks) that set them."""
    last = seed + count - 1
    if last > MAX_SEED:
        fix = (f"give {{{seed_name}}} at most {MAX_SEED - count + 1}, or {{{count_name}}} at most {MAX_SEED - seed + 1}"
               if count <= MAX_SEED + 1
               else f"give at most {MAX_SEED - seed + 1} {{{count_name}}} from {{{seed_name}}} {seed}: no more seeds "
                    f"exist")
        raise SettingError(seed_name if count <= MAX_SEED + 1 else count_name,
                           f"with {{{count_name}}} {count} the last episode's seed would be {last}, past the largest "
                           f"seed {MAX_SEED}; {fix}", (seed_name, count_name))


@contextmanager
def setting_check(name: str) -> Iterator[None]:
    """Turn a ValueError raised inside (an unknown name, say) into a SettingError for field `name`."""
    try:
        yield
    except SettingError:
        raise
    except ValueError as error:
        raise SettingError(name, str(error)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would silently keep the last). Merge keys
    (`<<: *defaults`) work as YAML defines them: the mapping's own keys override the merged ones."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            # A merge key is merged by flatten_mapping below; given twice, it is a duplicate all the same.
            merge = key_node.tag == "tag:yaml.org,2002:merge"
            key = key_node.value if merge else self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen.setdefault(key, line)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise ConfigError(f"{self.name}: line {line}: duplicate key {key!r} (first given on line {first}); "
                                  f"keep one of them")
        return super().construct_mapping(node, deep=deep)  # merges through flatten_mapping below

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's merge, with YAML's precedence among merged mappings: of `<<: [*a, *b]`, a's value wins a key
        both give (PyYAML keeps the last, as it tells keys apart by object identity). Own keys, after, win anyway."""
        own = sum(key_node.tag != "tag:yaml.org,2002:merge" for key_node, _ in node.value)
        super().flatten_mapping(node)
        merged, seen = [], set()
        for key_node, value_node in node.value[:len(node.value) - own]:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    continue
                seen.add(key_node.value)
            merged.append((key_node, value_node))
        node.value = merged + node.value[len(node.value) - own:]


# Numbers as YAML 1.2 (its core schema) writes them, whatever PyYAML's YAML 1.1 does:
# - integers: decimal (a leading zero changes nothing), 0o octal, 0x hexadecimal. YAML 1.1 read `seed: 010` as 8
#   (octal), `max_seconds: 1:30` as 90 (base 60) and `episodes: 1_0` as 10, and took `0o10` for text;
# - floats: a decimal point or an exponent (3e-3 included, which YAML 1.1 took for text), .inf and .nan. YAML 1.1
#   also read `1:30.5` as 90.5 and `1_0.5` as 10.5.
# Anything else that looks like a number (underscores, base 60, dates such as `out: 2024-01-15`, which YAML 1.1 made
# a date) is text, refused by the setting's check where a number is due: no setting is a date.
YAML_INTEGER = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_YAML_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
                         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# The loader's own copy of the resolvers: the loop below must not change PyYAML's SafeLoader for everyone else.
_UniqueKeyLoader.yaml_implicit_resolvers = dict(yaml.SafeLoader.yaml_implicit_resolvers)
for _first, _resolvers in list(_UniqueKeyLoader.yaml_implicit_resolvers.items()):
    _UniqueKeyLoader.yaml_implicit_resolvers[_first] = [
        (tag, pattern) for tag, pattern in _resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp")]
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:int", YAML_INTEGER, list("-+0123456789"))
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_FLOAT, list("-+.0123456789"))


def integer_of(text: str) -> int:
    """The integer that `text`, matched by YAML_INTEGER, stands for (`010` is 10, `0o10` 8, `0x10` 16)."""
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _yaml_integer(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return integer_of(loader.construct_scalar(node))


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _yaml_integer)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (an empty file is an empty mapping); duplicate keys are refused, a
    text value from home (`~/x`) is expanded as a flag's is, and top-level keys that start with `x-` are left out."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder, not a YAML file; give the path of a .yaml file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loader = _UniqueKeyLoader(path.read_text())
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    except ConfigError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        refuse_if_denied(error)
        raise ConfigError(f"cannot read config file {path} ({read_problem(error)})") from None
    except (ValueError, KeyError, TypeError, OverflowError) as error:  # an explicit tag (!!int abc) PyYAML cannot apply
        raise ConfigError(f"{path}: a value with an explicit type tag (!!int, !!float, !!bool, ...) cannot be read "
                          f"as that type ({error}); drop the tag or correct the value") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level, not a {type(data).__name__}")
    # Top-level keys that start with "x-" are the file's own, as docker-compose's extension fields: a place for what
    # merge keys reuse (`x-common: &common {...}`, then `<<: *common` in a section), never a setting.
    return from_home({key: value for key, value in data.items() if not (isinstance(key, str) and key.startswith("x-"))})


def from_home(value: Any) -> Any:
    """`value` with every text or path that starts with `~` (`out: ~/runs/x`, `--out=~/x`) expanded to the home
    folder, inside lists and mappings too, as a shell expands `~/x` where it stands alone: no name navigator takes
    starts with `~`, so such a text is a path, and left as it is it would make a folder named `~` in the current one."""
    if isinstance(value, (str, Path)) and str(value).startswith("~"):
        return type(value)(os.path.expanduser(value))
    if isinstance(value, dict):
        return {key: from_home(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_home(item) for item in value]
    return value


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line report in one line: "expected ',' or ']', but got ':' (line 2, column 2)"."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem is None:
        return " ".join(str(error).split())
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context = getattr(error, "context", None)
    return f"{problem}{where}" + (f", {context}" if context else "")


def _bad(key: str, problem: str, mentions: tuple[str, ...] = ()) -> ConfigError:
    return ConfigError(_phrase(key, _named(problem, mentions, lambda mention: mention)), key, problem, mentions)


def _read_as_text(value: Any, whole: bool) -> str:
    """For text that Python reads as a finite number: why YAML gave text, and how to write the number (else "").
    Quoted, a number is text; so is one with underscores, which YAML 1.2 (as this loader reads numbers) does not
    allow and Python's float() does."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if not math.isfinite(number) or (whole and not number.is_integer()):
        return ""
    text = value.strip()
    written = str(int(number)) if whole else text.replace("_", "")
    if "_" in text:
        return f" (YAML reads a number with underscores as text; write it as {written})"
    if written == text:
        return f" (YAML read it as text because it is quoted; write {written} without quotes)"
    return f" (YAML read it as text; write it as {written})"


def _read_as_fraction(value: Any) -> str:
    """For a float with no fractional part given where a whole number belongs: how to write it (else "").

    YAML reads 3.0, and 1E5 or 2e3 (exponents are floats in YAML 1.2, as this loader reads them), as floats, which a
    count such as epochs must not silently truncate; the value is whole, so say how to write it as one."""
    if isinstance(value, float) and value.is_integer():
        return f" (a decimal point or an exponent makes it a fraction to YAML; write it as {int(value)})"
    return ""


def _convert(value: Any, annotation: Any, key: str, nonfinite: bool = False, root: type | None = None) -> Any:
    """`value` as `annotation`; `root`: the dataclass the whole file configures (for hints on misplaced keys)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise _bad(key, f"must be a mapping, got {show(value)}")
        return from_dict(annotation, value, key, root)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, nonfinite, root)
            except ConfigError as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError("; ".join(map(str, errors)))
    if origin is typing.Literal:
        if value not in args:
            raise _bad(key, f"must be one of {', '.join(map(show, args))}, got {show(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            one = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            hint = f" (a list of one is written in brackets: {key.rsplit('.', 1)[-1]}: [{value}])" if one else ""
            raise _bad(key, f"must be a list, got {show(value)}{hint}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _bad(key, f"must have {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{key}[{i}]", nonfinite, root) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        converted = [_convert(v, item, f"{key}[{i}]", nonfinite, root) for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(key, f"must be a mapping, got {show(value)}")
        return dict(value)
    if annotation is Any:
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise _bad(key, f"must be true or false, got {show(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(key, f"must be a number, got {show(value)}{_read_as_text(value, whole=False)}")
        if not nonfinite and not math.isfinite(value):
            raise _bad(key, f"must be a finite number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(key, f"must be a whole number, got {show(value)}{_read_as_text(value, whole=True)}"
                            f"{_read_as_fraction(value)}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise _bad(key, f"must be a string, got {show(value)}")
        return value
    if annotation is Path:
        if not isinstance(value, (str, Path)):
            raise _bad(key, f"must be a path, got {show(value)}")
        return Path(value)
    return value


def _nested_paths(cls: type, name: str, prefix: str = "") -> list[str]:
    """Where a setting called `name` sits below `cls`'s own settings, as dotted keys ("scenario.max_seconds",
    "parts[].episodes"): what a key given at the wrong level of a file was meant to be."""
    found = []
    hints = typing.get_type_hints(cls)
    for field in (f for f in dataclasses.fields(cls) if f.init):
        annotation, path = hints[field.name], f"{prefix}{field.name}"
        if _SETTINGS_OF in field.metadata:
            settings, names = field.metadata[_SETTINGS_OF]
            inside = [f"{path}.{name}"] * any(f.name == name and f.init for f in dataclasses.fields(settings()))
            inside += _nested_paths(settings(), name, f"{path}.")
            found += [dotted for dotted in inside if names is None or dotted[len(path) + 1:].split(".")[0] in names]
            continue
        options = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_origin(annotation) in (
            typing.Union, types.UnionType) else [annotation]
        for option in options:
            if typing.get_origin(option) in (tuple, list) and typing.get_args(option):
                option, path = typing.get_args(option)[0], f"{path}[]"
            if dataclasses.is_dataclass(option) and isinstance(option, type):
                if any(sub.name == name and sub.init for sub in dataclasses.fields(option)):
                    found.append(f"{path}.{name}")
                found += _nested_paths(option, name, f"{path}.")
    return found


def _elsewhere(root: type, cls: type, key: str, name: str) -> list[str]:
    """Where a setting `name`, unknown to `cls` at `key` of a file that configures `root`, is set instead: below
    `cls` ("scenario.max_seconds"), or, given in a nested mapping (`key` non-empty), anywhere in `root` ("max_seconds
    at the top level", given in "parts[0]"), as dotted keys from the file's top."""
    below = [f"{key}.{path}" if key else path for path in _nested_paths(cls, name)]
    if not key:
        return below
    top = [f"{name} at the top level"] if any(field.name == name and field.init for field in dataclasses.fields(root)) \
        else []
    return top + [path for path in _nested_paths(root, name) if path not in below] + below


def from_dict(cls: type[T], data: dict[str, Any], key: str = "", root: type | None = None) -> T:
    """Build dataclass `cls` from a mapping, refusing unknown keys and converting nested dataclasses. Errors are
    ConfigErrors whose `key` is the dotted setting under `key`; `root` is the dataclass of the whole mapping that
    `key` is in (default `cls`), where an unknown key may belong at another level."""
    root = cls if root is None else root
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(map(str, set(data) - set(fields)))
    if unknown:
        where = f"{key}: unknown" if key else "unknown"
        # What the command takes as a flag only (how many workers, whether to resume) is no setting of its file.
        on_command_line = getattr(root, "COMMAND_LINE_ONLY", {})
        nested = [f"{name} is not set in the file: give {on_command_line[name]} on the command line"
                  for name in unknown if name in on_command_line]
        # What a section of the file takes from another of its settings, which a same-named one would hide.
        taken = {name: said for name in unknown if (said := getattr(root, "TAKEN_FROM", {}).get(f"{key}.{name}"))}
        nested += [f"{name} is {said}" for name, said in taken.items()]
        nested += [f"{name} is set as {' or '.join(paths)}" for name in unknown
                   if name not in on_command_line and name not in taken and (paths := _elsewhere(root, cls, key, name))]
        # A section pasted from a file that nests these settings (a recipe's `collect:` into a collect file).
        nested += [f"{name}'s settings are set here: remove the {name}: level" for name in unknown
                   if isinstance(data[name], dict) and data[name] and set(map(str, data[name])) <= set(fields)]
        # A mapping at the top may be there to be merged elsewhere (`shared: &s {...}`, then `<<: *s`).
        mappings = [name for name in unknown if not key and isinstance(data[name], dict) and data[name]]
        nested += [f"a mapping that merge keys (<<: *anchor) reuse goes under a key that starts with x-, such as "
                   f"x-{name[2:] if name.lower().startswith('x-') else name}: such keys are the file's own"
                   for name in mappings[:1]]
        names = f"{'setting' if len(unknown) == 1 else 'settings'} {', '.join(unknown)}"
        raise ConfigError(f"{where} {names}; valid settings are "
                          f"{', '.join(sorted(fields))}" + (f" ({'; '.join(nested)})" if nested else ""),
                          f"{key}.{unknown[0]}" if key else str(unknown[0]))
    kwargs = {name: _convert(value, hints[name], f"{key}.{name}" if key else name,
                             fields[name].metadata.get(_NONFINITE, False), root) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except SettingError as error:
        raise _keyed(error, key) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key}: {error}" if key else str(error)) from None


def _keyed(error: SettingError, key: str) -> ConfigError:
    """A dataclass's SettingError as the ConfigError of the setting it names, that dataclass lying at dotted `key`
    of the whole mapping ("" at its top)."""
    if not key:
        return _bad(error.name, error.problem, error.mentions)
    # The settings it mentions are the dataclass's: named from the top, in the problem's `{...}` as in the list.
    problem = _named(error.problem, error.mentions, lambda mention: f"{{{key}.{mention}}}")
    return _bad(f"{key}.{error.name}", problem, tuple(f"{key}.{mention}" for mention in error.mentions))


def unread_problems(config: Any, given: dict[str, Any], key: str = "") -> Iterator[ConfigError]:
    """The settings given (`given`: the file's settings with the flags' on top) that `config` will not read, given
    its other settings (`dagger.episodes` with no DAgger rounds), keyed from the top. A dataclass says which of the
    names given to it it ignores by an `unread(names) -> list[SettingError]` method; the settings nested in it (a
    section, a list of parts) are asked in turn. A setting given at its default is not one: a file that spells out
    every default (`dart_time_constant: 0.5` beside `dart_noise: 0`) changes nothing by it."""
    unread = getattr(config, "unread", None)
    defaults = {field.name: field.default if field.default is not dataclasses.MISSING else field.default_factory()
                for field in dataclasses.fields(config)
                if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING}
    changed = {str(name) for name in given if name not in defaults or getattr(config, name) != defaults[name]}
    for error in unread(changed) if unread is not None else ():
        yield _keyed(error, key)
    for field in dataclasses.fields(config):
        value, section = getattr(config, field.name, None), given.get(field.name)
        where = f"{key}.{field.name}" if key else field.name
        if dataclasses.is_dataclass(value) and isinstance(section, dict):
            yield from unread_problems(value, section, where)
        elif isinstance(value, tuple) and isinstance(section, list):
            for index, (item, item_given) in enumerate(zip(value, section)):
                if dataclasses.is_dataclass(item) and isinstance(item_given, dict):
                    yield from unread_problems(item, item_given, f"{where}[{index}]")


def _refuse_unread(config: Any, given: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse a setting given that nothing will read: silently ignored, it would look used. Except a file's setting
    that a flag makes unread (`--dagger 0` on a recipe with DAgger rounds): the flag says to run without it."""
    flagged = [dotted for dotted, value in overrides.items() if value is not None]
    for error in unread_problems(config, given):
        by_flag = any(is_within(mention, dotted) for mention in error.mentions for dotted in flagged)
        if not by_flag or any(is_within(error.key, dotted) for dotted in flagged):
            raise error


@dataclasses.dataclass(frozen=True)
class RecordedSettings:
    """Settings an earlier run recorded (a dataset manifest's recipe, a training run's run.json), standing in for a
    YAML file when that work is continued, so that `--resume` needs no flags retyped. `where` names the record in
    messages ("datasets/summer/manifest.json's recipe")."""

    data: dict[str, Any]
    where: str

    def __str__(self) -> str:
        return self.where


def load_config(cls: type[T], path: str | Path | RecordedSettings | None = None,
                overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None,
                all_flags: dict[str, str] | None = None) -> T:
    """Defaults of `cls`, then the YAML file at `path` (or the recorded settings; if any), then `overrides` (flags;
    None values are ignored).

    Overrides may address nested fields with dots: {"camera.width": 96}. `flags` maps the dotted keys that flags set
    to those flags ({"scenario.max_seconds": "--max-seconds"}), so that an error names what the user typed;
    `all_flags` maps every key the command has a flag for, to name the other settings a problem mentions.
    """
    if isinstance(path, RecordedSettings):
        data: dict[str, Any] = copy.deepcopy(path.data)
    else:
        data = read_yaml_mapping(path) if path is not None else {}
        if path is not None and not data:  # most often the wrong file, or one not saved yet
            raise ConfigError(f"config file {path} holds no settings (it is empty, or holds only comments and "
                              f"x- keys); write the settings into it, or give no config file to run on the defaults")
    given = copy.deepcopy(data)
    if isinstance(path, RecordedSettings) and any(value is not None for value in (overrides or {}).values()):
        # A record holds only values navigator accepted, so it loads alone (else it is damaged); what a flag makes
        # wrong in it (the record's --seed with a larger --episodes: the last seed) is the flag's, said below.
        # Without flags the record is loaded once, below, and a problem there is the record's.
        try:
            from_dict(cls, copy.deepcopy(data))
        except ConfigError as damage:
            message = _damaged_record(_located(damage, path, {}, all_flags or flags or {}, given), path)
            raise ConfigError(message, damage.key, damage.problem, damage.mentions) from None
    try:
        for dotted, value in (overrides or {}).items():
            if value is not None:
                _check_known(cls, dotted)
                _set(data, dotted, value)
        config = from_dict(cls, data)
        if isinstance(path, RecordedSettings):  # checked alone above: what is wrong now is the flags'
            return config
        _refuse_unread(config, data, overrides or {})
        overridden = _overridden_problem(cls, given, data, overrides or {})
        if overridden is None:
            return config
    except ConfigError as error:
        message = _located(error, path, flags or {}, all_flags or flags or {}, given)
        # A problem of a flag's value (or one that names it: the last seed, of --seed and --episodes) is the flag's,
        # not the record's, which navigator wrote with values it accepted.
        given_by_flag = error.key is None or any(value is not None and is_within(named, dotted)
                                                 for dotted, value in (overrides or {}).items()
                                                 for named in (error.key, *error.mentions))
        if isinstance(path, RecordedSettings) and not given_by_flag:
            message = _damaged_record(message, path)
        raise ConfigError(message, error.key, error.problem, error.mentions) from None
    error, dotted = overridden  # named as the file has it, not by the flag that overrides it
    message = _located(error, path, {}, all_flags or flags or {}, given)
    if isinstance(path, RecordedSettings):
        raise ConfigError(_damaged_record(message, path), error.key, error.problem, error.mentions)
    raise ConfigError(f"{message} (correct the file: {_flag_for(dotted, flags or {}) or 'the flag'} overrides it for "
                      f"this run only)", error.key, error.problem, error.mentions)


def without_yaml_advice(message: str) -> str:
    """`message` without the advice on how YAML reads a quoted number: for settings read from JSON records."""
    return re.sub(r" [(]YAML read it as text[^)]*[)]", "", message)


def _damaged_record(message: str, record: RecordedSettings) -> str:
    """`message` as a problem of recorded settings: a record navigator wrote holds only values it accepted, so a bad
    one was put there by hand or by damage, and no YAML advice applies. A path it records that is not there was
    most often recorded relative to another folder than the one the command now runs in."""
    if "does not exist" in message:
        return (f"{without_yaml_advice(message)} (as {record} records it): a relative path is read from the folder "
                f"the command runs in, so run it from the folder the work was started in, or put back what was moved")
    return (f"{without_yaml_advice(message)}: {record} holds what navigator never writes "
            f"(edited or damaged), so the work cannot be continued from it; restore the file, or start over in "
            f"another --out")


def _overridden_problem(cls: type, given: dict[str, Any], data: dict[str, Any],
                        overrides: dict[str, Any]) -> tuple[ConfigError, str] | None:
    """The problem of a value the file gives that a flag overrides, when the value itself is bad (`epochs: lots`
    under `--epochs 1`), with the override's key: a broken file is refused whatever flags are given, so that it does
    not break the next run made without them. Each such value is checked in place of its flag's, among the other
    settings as given, so that only a problem of that value (a ConfigError keyed by it) is returned."""
    for dotted, value in overrides.items():
        file_value = _get(given, dotted)
        if value is None or file_value is _ABSENT or (type(file_value) is type(value) and file_value == value):
            continue  # (True == 1 and 1.0 == 1 in Python, yet neither is a whole number to a setting)
        trial = copy.deepcopy(data)
        _set(trial, dotted, file_value)
        try:
            from_dict(cls, trial)
        except ConfigError as error:
            if error.key is not None and is_within(error.key, dotted):
                return error, dotted
        except Exception:  # noqa: BLE001 (a problem of another kind is the merged settings' to report)
            continue
    return None


_ABSENT = object()


def _get(data: dict[str, Any], dotted: str) -> Any:
    """data["a"]["b"] for dotted "a.b", or _ABSENT when the file does not give it."""
    node: Any = data
    for name in dotted.split("."):
        if not isinstance(node, dict) or name not in node:
            return _ABSENT
        node = node[name]
    return node


def _check_known(cls: type, dotted: str) -> None:
    """Refuse an override of a setting `cls` does not have, as a ConfigError keyed by the override, so that it is
    named as given (`train.epochz`) rather than blamed on the file the other settings came from."""
    owner: type | None = cls
    for depth, name in enumerate(dotted.split(".")):
        if owner is None:  # below a setting that is not a group of settings: from_dict names the problem
            return
        fields = {f.name for f in dataclasses.fields(owner) if f.init}
        if name not in fields:
            paths = _elsewhere(cls, owner, ".".join(dotted.split(".")[:depth]), name)
            hint = f" ({name} is set as {' or '.join(paths)})" if paths else ""
            raise _bad(dotted, f"is not a setting; valid settings {'here ' if depth else ''}are "
                               f"{', '.join(sorted(fields))}{hint}")
        owner = _dataclass_in(typing.get_type_hints(owner)[name])


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data["a"]["b"] = value for dotted "a.b", creating the mappings on the way."""
    node = data
    *parents, leaf = dotted.split(".")
    for depth, parent in enumerate(parents):
        child = node.setdefault(parent, {})
        if not isinstance(child, dict):
            raise _bad(".".join(parents[:depth + 1]), f"must be a mapping, got {show(child)}")
        node = child
    node[leaf] = value


def _flag_for(key: str, flags: dict[str, str]) -> str | None:
    """The flag that sets dotted setting `key` (`--preset` for `parts[0].preset`, given {"parts[0].preset":
    "--preset"}; `--sweep-levels (value 2)` for `sweep_levels[1]`), or None."""
    for dotted, flag in flags.items():
        if is_within(key, dotted):
            rest = key[len(dotted):]
            item = re.fullmatch(r"\[(\d+)\]", rest)  # one of a list flag's values: counted as typed, from 1
            return f"{flag} (value {int(item[1]) + 1})" if item else flag + rest
    return None


def _located(error: ConfigError, path: str | Path | RecordedSettings | None, flags: dict[str, str],
             all_flags: dict[str, str], given: dict[str, Any] | None = None) -> str:
    """The error's message with its setting named as the user gave it: a flag, or a key in the file (`given`, as
    read), or, not in it, as the default it is. Other settings the problem mentions are named by the flag typed;
    for a problem in the file, by their key where the file gives them too (what to change there); else by the
    command's flag for them (a flag overrides the file, so it is always a way out), else by their key."""
    in_file = (error.key is not None and _flag_for(error.key, flags) is None and path is not None
               and given is not None and "[" not in error.key and _get(given, error.key) is not _ABSENT)

    def mention(key: str) -> str:
        typed = _flag_for(key, flags)
        if typed is not None:
            return typed
        if in_file and "[" not in key and _get(given, key) is not _ABSENT:
            return key
        return _flag_for(key, all_flags) or key

    if error.key is not None and error.problem is not None:
        problem = _named(error.problem, error.mentions, mention)
        flag = _flag_for(error.key, flags)
        if flag is None and path is None:  # a default at fault (with another setting): named by the flag that sets it
            flag = _flag_for(error.key, all_flags)
        if flag is not None:
            return _phrase(flag, problem)
        if path is not None and given is not None and "[" not in error.key and _get(given, error.key) is _ABSENT:
            # A default at fault with a setting the file gives (stride against a small window): the file lacks it.
            return _phrase(f"{error.key} (not set in {path}: its default)", problem)
        if path is not None:
            return _phrase(f"{error.key} in {path}", problem)
        return _phrase(error.key, problem)
    return f"{path}: {error}" if path is not None else str(error)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a type hint holds (`X`, `X | None`, `tuple[X, ...]`), or None."""
    if dataclasses.is_dataclass(hint):
        return hint
    return next((found for arg in typing.get_args(hint) if (found := _dataclass_in(arg)) is not None), None)


def field_default(cls: type, dotted: str) -> Any:
    """The default value of a (nested) setting, e.g. field_default(FlyConfig, "scenario.max_seconds"); list items
    as `parts[0].episodes`."""
    owner: Any = cls
    value: Any = None
    for name, indices in re.findall(r"([A-Za-z_]\w*)((?:\[\d+\])*)", dotted):
        f = next(f for f in dataclasses.fields(owner) if f.name == name)
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for index in re.findall(r"\d+", indices):
            value = value[int(index)]
        owner = type(value) if dataclasses.is_dataclass(value) else _dataclass_in(typing.get_type_hints(owner)[name])
    return value


def _render_default(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each config flag's default, looked up in its dataclass only when help is printed, so that
    building the parser (every `navigator` call) imports no command's config module."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        describe = getattr(action, "describe_default", None)
        if text is None or describe is None:
            return text
        return f"{text} (default: {describe().replace('%', '%%')})"


class ConfigFlags:
    """The flags of one command that set fields of its config dataclass, declared once.

    Each flag's argparse default is None (so that an unset flag leaves the YAML file's value alone); help printed
    with DefaultsHelpFormatter shows the dataclass default instead. `load(args, path)` builds the config with errors
    naming the flags. `config_class` is the dataclass, or a function returning it (to import it only when needed).
    """

    def __init__(self, config_class: type | Callable[[], type]) -> None:
        self._config_class = config_class
        self._keys: dict[str, str] = {}  # argparse dest -> dotted key
        self._flags: dict[str, str] = {}  # dotted key -> flag
        self._dest_flags: dict[str, str] = {}  # argparse dest -> flag
        # Flags that share a dest, each storing its own value (--keep-failed, --drop-failed): dest -> value -> flag.
        self._const_flags: dict[str, dict[Any, str]] = {}

    @property
    def cls(self) -> type:
        return self._config_class if isinstance(self._config_class, type) else self._config_class()

    def add(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, key: str, help: str, *,
            default_text: str | None = None, **kwargs: Any) -> None:
        """Add option `flag` setting config key `key`; `default_text` describes a default that is not a plain value
        (e.g. None meaning "the task's own limit")."""
        dest = kwargs.pop("dest", flag.lstrip("-").replace("-", "_"))
        action = parser.add_argument(flag, dest=dest, default=None, help=help, **kwargs)
        if not kwargs.get("required"):  # a required option has no default to show
            action.describe_default = (lambda: default_text) if default_text is not None else (
                lambda: _render_default(field_default(self.cls, key)))
        self._keys[dest] = key
        self._flags[key] = flag
        self._dest_flags[dest] = flag
        if "const" in kwargs:
            self._const_flags.setdefault(dest, {})[kwargs["const"]] = flag

    def given_as(self, args: argparse.Namespace) -> GivenAs:
        """How the settings in `args` were given, for continuation messages: the flags given and whether a --config
        file was."""
        flags = {key: self._const_flags[dest].get(getattr(args, dest), self._dest_flags[dest])
                 if dest in self._const_flags else self._dest_flags[dest]
                 for dest, key in self._keys.items() if getattr(args, dest) is not None}
        return GivenAs(flags, getattr(args, "config", None) is not None)

    def load(self, args: argparse.Namespace, path: str | Path | RecordedSettings | None,
             place: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Any:
        """The config from defaults, the file at `path` (or recorded settings) and the flags in `args`; `place` may
        rewrite the overrides (e.g. to put flags into a list item)."""
        overrides = {key: getattr(args, dest) for dest, key in self._keys.items()}
        given = {key: flag for key, flag in self._flags.items() if overrides[key] is not None}
        return load_config(self.cls, path, place(overrides) if place else overrides, given, self._flags)


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML/JSON-ready data (paths as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
