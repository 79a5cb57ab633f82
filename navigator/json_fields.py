"""Checking the fields of a JSON document that another run wrote and a person may have edited (a bundle's
policy.json, its `source` record), so that a damaged field is named by its path in the user's terms
(`camera.width must be a number (got "abc")`) before anything uses it, not reported in Python's words
(`string indices must be integers`) from wherever it was first touched.

Torch-free and dependency-free: the onboard runtime uses it.

A field is given as a dotted path and a kind: `("camera.width", "positive number")`. A path segment ending in `[]`
stands for every element of a list (`"hidden[].size"`, named `hidden[1].size` in a problem), one ending in `{}` for
every value of a mapping (`"datasets.data{}.episodes"`, named `datasets.data.NAME.episodes`). A kind starting with
"optional " accepts a missing field, one ending in " or null" accepts null. A field inside a missing or null parent
is not checked: list the parent itself with its own kind.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def is_number(value: Any) -> bool:
    """A finite JSON number (true and false are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    """A JSON whole number (true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "number": ("a number", is_number),
    "positive number": ("a number above 0", lambda value: is_number(value) and value > 0),
    "integer": ("a whole number", is_integer),
    "positive integer": ("a whole number above 0", lambda value: is_integer(value) and value > 0),
    "non-negative integer": ("a whole number, 0 or more", lambda value: is_integer(value) and value >= 0),
    "text": ("text", lambda value: isinstance(value, str)),
    "bool": ("true or false", lambda value: isinstance(value, bool)),
    "mapping": ("a mapping of names to values", lambda value: isinstance(value, dict)),
    "list": ("a list", lambda value: isinstance(value, list)),
}
_OPTIONAL, _OR_NULL = "optional ", " or null"
_ABSENT = object()


def read_problem(error: BaseException) -> str:
    """Why a JSON file could not be read, in the user's terms rather than Python's ("it is a folder, not a file",
    "it is cut short (...)"), for a message of the form "PATH cannot be read (PROBLEM)"."""
    if isinstance(error, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(error, FileNotFoundError):
        return "it is missing"
    if isinstance(error, PermissionError):
        return "this user may not read it"
    if isinstance(error, UnicodeDecodeError):
        return "it is not text: it holds bytes that are not UTF-8"
    if isinstance(error, json.JSONDecodeError):
        if not error.doc.strip():
            return "it is empty"
        if error.pos >= len(error.doc.rstrip()) or error.msg.startswith("Unterminated string"):
            return f"it is cut short: its JSON stops at line {error.lineno} before it is complete"
        return f"it is not valid JSON: {error.msg[:1].lower()}{error.msg[1:]} at line {error.lineno}, column " \
               f"{error.colno}"
    if isinstance(error, KeyError) and error.args:
        return f"it has no field {show(error.args[0])}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    return str(error)


def show(value: Any, limit: int = 60) -> str:
    """A JSON value as the file has it, shortened to `limit` characters (what JSON cannot hold, such as a date YAML
    read, as its text)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _walk(document: Any, path: str, problems: list[str]) -> Iterator[tuple[str, Any]]:
    """(name, value) of every field `path` reaches (_ABSENT where missing); a parent of the wrong kind is added to
    `problems` and not walked into."""
    reached: list[tuple[str, Any]] = [("", document)]
    for segment in path.split("."):
        key, each = (segment[:-2], segment[-2:]) if segment.endswith(("[]", "{}")) else (segment, "")
        following: list[tuple[str, Any]] = []
        for name, value in reached:
            if value is _ABSENT or value is None:
                continue  # a missing or null parent is its own entry's problem (or allowed)
            if not isinstance(value, dict):
                problems.append(f"{name or 'the file'} must be {KINDS['mapping'][0]} (got {show(value)})")
                continue
            child_name = f"{name}.{key}" if name else key
            child = value.get(key, _ABSENT)
            if not each:
                following.append((child_name, child))
            elif child is _ABSENT or child is None:
                continue  # a missing or null container is its own entry's problem (or allowed)
            elif each == "[]" and isinstance(child, list):
                following += [(f"{child_name}[{index}]", element) for index, element in enumerate(child)]
            elif each == "{}" and isinstance(child, dict):
                following += [(f"{child_name}.{member}", element) for member, element in child.items()]
            else:
                container = "list" if each == "[]" else "mapping"
                problems.append(f"{child_name} must be {KINDS[container][0]} (got {show(child)})")
        reached = following
    yield from reached


def field_problems(document: Any, fields: Iterable[tuple[str, str]]) -> list[str]:
    """Every problem of `document`'s `fields` ((dotted path, kind) pairs, kinds as in KINDS, optionally prefixed by
    "optional " or followed by " or null"), in the order given, each once; an empty list when all are sound."""
    problems: list[str] = []
    for path, kind in fields:
        may_be_missing, may_be_null = kind.startswith(_OPTIONAL), kind.endswith(_OR_NULL)
        described, fits = KINDS[kind.removeprefix(_OPTIONAL).removesuffix(_OR_NULL)]
        for name, value in _walk(document, path, problems):
            if value is _ABSENT:
                if not may_be_missing:
                    problems.append(f"{name} is missing")
            elif value is None:
                if not may_be_null:
                    problems.append(f"{name} must be {described} (got null)")
            elif not fits(value):
                problems.append(f"{name} must be {described} (got {show(value)})")
    return list(dict.fromkeys(problems))


# The key of a record's checksum: the sha256 of its other fields. A record navigator continues from (an evaluation's
# eval.json and episode records, a training run's run.json, a study's record, a dataset's manifest) carries one, so
# that a record edited by hand, or damaged in a way that still parses, is refused rather than continued with values
# navigator never wrote. Each record's version says whether it carries one (a version written since checksums must:
# one without was edited); records of the versions before carry none and are read as they are.
CHECKSUM_KEY = "sha256"


def fields_sha256(fields: dict[str, Any]) -> str:
    """The sha256 of `fields` as canonical JSON (sorted keys): the same fields give the same checksum whatever
    their order or the file's indentation."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def with_checksum(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` (which must not hold CHECKSUM_KEY) with their checksum added, to write."""
    if CHECKSUM_KEY in fields:
        raise ValueError(f"the fields already hold {CHECKSUM_KEY!r}: pass them without it (see without_checksum)")
    return {**fields, CHECKSUM_KEY: fields_sha256(fields)}


def without_checksum(document: Any, required: bool = False) -> Any:
    """A record's fields without its checksum, as read; ValueError when the checksum does not match them (the
    record was edited or damaged), or is missing where `required` (the record's version carries one). A document
    without one (written before checksums, or not a mapping) is otherwise returned as it is."""
    if isinstance(document, dict) and CHECKSUM_KEY not in document and required:
        raise ValueError(f"it has no {CHECKSUM_KEY}, which every record of its version carries: it was edited by hand "
                         f"or damaged since navigator wrote it")
    if not isinstance(document, dict) or CHECKSUM_KEY not in document:
        return document
    fields = {key: value for key, value in document.items() if key != CHECKSUM_KEY}
    if document[CHECKSUM_KEY] != fields_sha256(fields):
        raise ValueError("it does not match its sha256: it was edited by hand or damaged since navigator wrote it")
    return fields
