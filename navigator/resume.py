"""Resuming recorded work honestly: what differs between the settings a dataset or run recorded when it started and
the settings given now, named setting by setting in the user's terms.

`collect --resume` and `train --resume` continue exactly what was started, so any difference in a setting that
decides the result is refused, with every differing setting named ("batch_size: run has 16, you gave 32") instead of
a vague "other settings". Extending (more episodes, more epochs) is the one change allowed, and only when asked for
(`extend`), so that a typo in --epochs never silently lengthens a finished run; a count given lower than the recorded
one is named as such ("--extend only raises epochs: the run has 10, you gave 5"), since work done cannot be undone.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

from navigator.errors import UserError
from navigator.json_fields import field_problems, show, without_checksum
from navigator.output_folders import other_output, with_article


@dataclass(frozen=True)
class Difference:
    """One setting, by its dotted name (`parts[0].episodes`), with the recorded and the given value."""

    name: str
    recorded: Any
    given: Any

    def describe(self, owner: str) -> str:
        # None is a setting left unset (YAML's null), said in words rather than as Python's None.
        recorded = f"{owner} leaves it unset" if self.recorded is None else f"{owner} has {show_setting(self.recorded)}"
        given = "you left it unset" if self.given is None else f"you gave {show_setting(self.given)}"
        return f"{self.name}: {recorded}, {given}{self._elsewhere()}"

    def _elsewhere(self) -> str:
        """Advice where the recorded value is a relative path naming nothing from here, and the given one the same
        path from another folder: the work was started elsewhere, and its records name paths as typed there."""
        if not (isinstance(self.recorded, str) and isinstance(self.given, str) and self.recorded and self.given):
            return ""
        recorded = PurePath(self.recorded)
        if recorded.is_absolute() or Path(recorded).exists() or not Path(self.given).exists():
            return ""
        tail = PurePath(os.path.abspath(self.given)).parts[-len(recorded.parts):]
        return relative_path_advice(self.recorded) if tail == recorded.parts else ""

    @property
    def is_count(self) -> bool:
        """True when both values are whole numbers (not booleans)."""
        return (isinstance(self.recorded, int) and isinstance(self.given, int) and not isinstance(self.recorded, bool)
                and not isinstance(self.given, bool))

    @property
    def raises_a_count(self) -> bool:
        """True when both values are whole numbers and the given one is larger (an extension)."""
        return self.is_count and self.given > self.recorded


_MISSING = object()


def is_within(setting: str, group: str) -> bool:
    """Whether dotted `setting` is `group` or inside it (`camera.width` in `camera`, `parts[0].task` in `parts`)."""
    return setting == group or setting.startswith((f"{group}.", f"{group}["))


def show_setting(value: Any) -> str:
    """A setting's value as a message shows it: text quoted, yes/no as true/false, a list or mapping as its JSON (as
    the YAML and JSON files spell them; never Python's repr)."""
    if value is _MISSING:
        return "nothing"
    return show(value, limit=240) if isinstance(value, (dict, list, tuple, bool)) else repr(value)


def without(settings: dict[str, Any], dotted_names: tuple[str, ...]) -> dict[str, Any]:
    """A copy of nested `settings` without the dotted names ("collect.workers") that cannot change a result, so that
    a resumption compares only what matters; names absent are ignored."""
    kept = copy.deepcopy(settings)
    for dotted in dotted_names:
        section, leaf = section_of(kept, dotted)
        if section is not None:
            section.pop(leaf, None)
    return kept


def section_of(settings: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping in nested `settings` that holds dotted name `dotted` ("collect.workers": settings["collect"]),
    None where there is none, and the name within it ("workers")."""
    *sections, leaf = dotted.split(".")
    node: Any = settings
    for section in sections:
        node = node.get(section) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def relative_path_advice(path: str) -> str:
    """What to add to a refusal of a relative `path` that names nothing from this folder ("" for an absolute one):
    recorded by a command started in another folder, it is read from the one this command runs in."""
    if Path(path).is_absolute():
        return ""
    return (f" (a relative path is read from the folder the command runs in, {Path.cwd()}: run it from the folder "
            f"the work was started in)")


def differences(recorded: Any, given: Any, name: str = "") -> list[Difference]:
    """Every leaf setting where `given` differs from `recorded` (plain data: dicts, lists, scalars), recursing into
    mappings and into lists of equal length so the names point at the one value that differs."""
    if isinstance(recorded, dict) and isinstance(given, dict):
        found = []
        for key in sorted(set(recorded) | set(given), key=str):
            child = f"{name}.{key}" if name else str(key)
            found += differences(recorded.get(key, _MISSING), given.get(key, _MISSING), child)
        return found
    if isinstance(recorded, (list, tuple)) and isinstance(given, (list, tuple)) and len(recorded) == len(given):
        found = []
        for index, (old, new) in enumerate(zip(recorded, given)):
            found += differences(old, new, f"{name}[{index}]")
        return found
    return [] if recorded == given or same_path(recorded, given) else [Difference(name, recorded, given)]


def same_path(recorded: Any, given: Any) -> bool:
    """Two spellings of one path, as the user may type it another time: the same once spelled one way
    (`path_spelling`), or two names of one existing file or folder (relative and absolute, through a link)."""
    if not (isinstance(recorded, str) and isinstance(given, str) and recorded and given):
        return False
    if path_spelling(recorded) == path_spelling(given):
        return True
    try:
        return os.path.samefile(recorded, given)
    except (OSError, ValueError):  # either is missing (or no path at all): only the spelling can tell
        return False


def recorded_paths(recorded: Any, given: Sequence[str]) -> tuple[str, ...] | None:
    """The paths a continued command `recorded`, where the user now gives the same ones spelled another way
    (`same_path`: "./x/" for "x", absolute for relative): what the records are keyed by. None where the recorded
    list is not such a respelling of `given` (equal, or naming other paths)."""
    if (isinstance(recorded, list) and len(recorded) == len(given) and recorded != list(given)
            and all(same_path(old, new) for old, new in zip(recorded, given))):
        return tuple(recorded)
    return None


def path_spelling(path: str) -> str:
    """One spelling of a path as the user typed it, without resolving it: "./datasets//night/" -> "datasets/night".
    A relative path stays relative, and ".." stays (through a symbolic link it can mean another folder)."""
    return str(PurePath(path))


def describe(found: list[Difference], owner: str) -> str:
    """The differences as one clause: "batch_size: run has 16, you gave 32; lr: ..."."""
    return "; ".join(difference.describe(owner) for difference in found)


@dataclass(frozen=True)
class GivenAs:
    """How the user gave the settings a continuation compares: `flags` maps each dotted setting a flag set to that
    flag ({"parts[0].preset": "--preset"}), so that a difference is named as typed; `config`, whether a --config
    file was given (the way to drop it is then part of the fix)."""

    flags: Mapping[str, str] = field(default_factory=dict)
    config: bool = True

    def name(self, setting: str) -> str:
        """The flag given for dotted `setting` (or for the group holding it: `--camera.width`), else the setting."""
        for key, flag in self.flags.items():
            if is_within(setting, key):
                return flag + setting[len(key):]
        return setting


@dataclass(frozen=True)
class Continued:
    """What is being continued, in the user's words: the `owner` ("dataset", "run"), the `record` that lists its
    settings ("its manifest's 'recipe'"), and what extending it grows ("episodes", flag "--episodes"). `grow_hint`,
    when given, replaces "give a larger FLAG" as the way to extend it (a dataset of several parts, which one
    --episodes would replace by a single part, grows through a --config YAML instead). `holds`, when given, says
    how much it holds now ("200"), `finished` that nothing is left to resume, and `extendable` False that it can no
    longer grow (a training run past its first training, in its DAgger rounds), so --extend is not suggested."""

    out: Any
    owner: str
    record: str
    grows: str
    flag: str
    grow_hint: str = ""
    given_as: GivenAs = field(default_factory=GivenAs)
    holds: str = ""
    finished: bool = False
    extendable: bool = True

    def describe(self, found: list[Difference]) -> str:
        """The differences as one clause, each named as the user gave it (a flag, else the setting). A flag that
        sets a yes/no setting (--drop-failed sets keep_failed to false) names the setting too: the values shown are
        the setting's."""
        return describe([replace(d, name=self._name(d)) for d in found], self.owner)

    def _name(self, difference: Difference) -> str:
        flag = self.given_as.name(difference.name)
        if isinstance(difference.given, bool) and flag.lstrip("-").replace("-", "_") != difference.name:
            return f"{flag} (setting {difference.name})"
        return flag

    @property
    def how_to_match(self) -> str:
        """The fix for settings that differ: drop what the user gave, so that the recorded settings apply."""
        config = "--config and " if self.given_as.config else ""
        return f"drop {config}the flags that differ (the {self.owner}'s settings are then taken from {self.record})"


def check_continuation(found: list[Difference], extendable: Callable[[Difference], bool], extend: bool,
                       what: Continued) -> list[Difference]:
    """Refuse, naming every differing setting, a continuation whose settings differ from the recorded ones; with
    `extend`, only larger counts that `extendable` accepts may differ, and at least one must. Returns those."""
    grown = [d for d in found if extendable(d) and d.raises_a_count]
    lowered = [d for d in found if extendable(d) and d.is_count and d not in grown]
    out, owner = what.out, what.owner
    if extend:
        others = [d for d in found if d not in grown]
        finished = f" (the {owner} is finished: nothing is left to resume)" if what.finished else ""
        if lowered and len(lowered) == len(others):
            # Named setting by setting where one flag does not grow it (a dataset of several parts).
            counts = (f"the {owner} has {lowered[0].recorded}, you gave {lowered[0].given}"
                      if len(lowered) == 1 and not what.grow_hint else what.describe(lowered))
            without = "" if what.grow_hint else f" (without {what.flag})"
            resume = finished or f", or pass --resume in place of --extend{without} to resume it as it is"
            fix = what.grow_hint or f"give a larger {what.flag} than {out} has"
            raise UserError(f"--extend only raises {what.grows}: {counts}; {fix}{resume}")
        if others:
            fix = what.grow_hint if what.grow_hint else f"{what.how_to_match} and give a larger {what.flag}"
            raise UserError(f"--extend: {out} can only gain {what.grows}, but other settings differ from the "
                            f"{owner}'s: {what.describe(others)}; {fix}")
        if not grown:
            holds = f" ({what.holds})" if what.holds else ""
            grow = what.grow_hint or f"give a larger {what.flag}" + (f" than {what.holds}" if what.holds else "")
            rest = finished or ", or pass --resume in place of --extend to resume it"
            # Said of what it is set to (its start or last extension), not of what it holds: an interrupted one
            # holds less.
            raise UserError(f"--extend needs more {what.grows} than {out} is set to{holds}; "
                            f"{grow} to extend it{rest}")
    elif found:
        hint = f"; to add {what.grows} pass --extend" if found == grown and what.extendable else ""
        raise UserError(f"--resume: {out} was started with other settings: {what.describe(found)}; "
                        f"{what.how_to_match}, or choose another --out{hint}")
    return grown


def require_record_format(record: Any, path: Path, fmt: str, versions: tuple[int, ...], start_over: str,
                          what: str = "record", flag: str = "") -> int:
    """The version of `record` (parsed from `path`) when it is a `fmt` record of one of `versions`, else UserError
    ending with the fix `start_over`. A higher version is said to come from a newer release (continued with that
    release), before its checksum is looked at: checked by this release's rules, it would read as edited by hand.
    `what` names the file ("file", "record"); `flag` ("--resume") opens the message."""
    prefix = f"{flag}: " if flag else ""
    listed = " or ".join(str(version) for version in versions)
    version = record.get("version") if isinstance(record, dict) else None
    if isinstance(record, dict) and record.get("format") == fmt:
        if isinstance(version, int) and not isinstance(version, bool):
            if version in versions:
                return version
            if version > max(versions):
                raise UserError(f"{prefix}{path} was written by a newer release of liquid-navigator ({fmt} version "
                                f"{version}; this release reads version {listed}): continue with that release, or "
                                f"{start_over}")
    raise UserError(f"{prefix}{path} is not a {fmt} version {listed} {what}; {start_over}")


def continuable_record(record: dict[str, Any], fields: Sequence[tuple[str, str]], path: Path, what: str,
                       start_over: str, checksummed: bool) -> dict[str, Any]:
    """The fields of `record` (read from `path`), without its checksum, when a `what` ("run") can be continued from
    it; else UserError naming the damaged fields (`fields`, as navigator.json_fields checks them) or saying it was
    edited since navigator wrote it (its checksum no longer matches, or is missing where its version, `checksummed`,
    carries one), with the fix: restore it, or `start_over`."""
    problems = field_problems(record, fields)
    if problems:
        raise UserError(f"{path} is damaged ({'; '.join(problems)}), so the {what} cannot be continued from it; "
                        f"restore it, or {start_over}")
    try:
        return without_checksum(record, required=checksummed)
    except ValueError as error:  # continued, the work would go on under settings it did not start with
        raise UserError(f"{path} cannot be continued from: {error}; restore it, or {start_over}") from None


def another_commands_output(out: Path, flag: str, what: str) -> UserError | None:
    """The refusal of `flag` on a folder `out` that holds another command's output (an evaluation given to continue
    a training run), naming what it holds; None when it holds none. The likelier mistake is then the folder given,
    not a lost record."""
    other = other_output(out, what)
    if other is None:
        return None
    return UserError(f"{flag}: {out} holds {other}, not {with_article(what)} to continue; give the {what}'s folder as "
                     f"--out")


def nothing_to_continue(out: Path, flag: str, what: str, record: str) -> UserError:
    """The refusal of `flag` (--resume, --extend) on a folder `out` that holds no `what` ("training run") to
    continue, its `record` file ("run.json") missing; a folder that does not exist is named as such (a misspelt
    name is the likelier mistake, and a `record` that is a folder too), one holding another command's output as that.
    """
    if not out.exists():
        return UserError(f"{flag}: {out} does not exist, so there is no {what} to continue; check the folder's name, "
                         f"or drop {flag} to start one there")
    if (out / record).exists():  # there, but not a file (put there by hand)
        found = "a folder" if (out / record).is_dir() else "neither a file nor a folder"
        return UserError(f"{flag}: {out / record} is {found} where the {what} in {out} keeps its record (a file): "
                         f"move it out of {out}, then continue")
    # Without the flag a folder that holds files is refused as not empty: a new one is then the way to start.
    start = (f"drop {flag} and choose a new or empty --out to start one" if out.is_dir() and any(out.iterdir())
             else f"drop {flag} to start one")
    return another_commands_output(out, flag, what) or UserError(
        f"{flag}: {out} holds no {what} to continue (no {record}); give the {what}'s folder as --out, or {start}")
