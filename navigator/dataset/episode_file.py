"""One episode as one file: a deterministic, deflate-compressed .npz that `np.load(path, allow_pickle=False)` opens.

Entries, in this order: `_format` and `_metadata` (UTF-8 JSON as uint8 arrays), the contract arrays, then
`privileged/<name>` sorted by name. Every zip entry carries a fixed timestamp and fixed attributes, so the same
episode always gives the same bytes (and the same sha256) with the same zlib. Images are stored raw inside the
deflated zip entry: on rendered frames that is smaller and faster to decode than PNG (measured; see the README).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from navigator.dataset.atomic import atomic_output
from navigator.dataset.episode import Episode
from navigator.dataset.errors import (ChecksumError, CorruptEpisodeError, DatasetError, InvalidEpisodeError,
                                      SchemaVersionError)
from navigator.errors import ACCESS_ERRORS, access_problem
from navigator.dataset.schema import FIELDS, FORMAT_NAME, SCHEMA_VERSION, episode_problems
from navigator.json_fields import read_problem

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip format's epoch: no wall-clock time leaks into the bytes
_COMPRESS_LEVEL = 6  # level 9 saves under 1% on rendered frames and writes slower
_PRIVILEGED = "privileged/"
# What a damaged container raises from zipfile, zlib and numpy's npy parser.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError, UnicodeDecodeError)


def _json_default(value: Any) -> Any:
    # Collectors hand numpy scalars and small arrays in metadata; store them as plain JSON numbers and lists.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-able")


def _json_array(value: Any) -> np.ndarray:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def _entries(episode: Episode) -> Iterable[tuple[str, np.ndarray]]:
    yield "_format", _json_array({"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION})
    yield "_metadata", _json_array(episode.metadata)
    yield from ((name, np.asarray(array)) for name, array in episode.arrays().items())
    for name in sorted(episode.privileged):
        yield _PRIVILEGED + name, np.asarray(episode.privileged[name])


def _write_zip(handle: BinaryIO, episode: Episode) -> None:
    with zipfile.ZipFile(handle, "w") as archive:
        for name, array in _entries(episode):
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # otherwise it depends on the OS that wrote the file
            info.external_attr = 0o644 << 16
            archive.writestr(info, _npy_bytes(array), compresslevel=_COMPRESS_LEVEL)


def _sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return _sha256_of(handle)


def _require_writable(episode: Episode, where: str) -> None:
    episode.require_valid(f"episode not written to {where}")
    try:
        _json_array(episode.metadata)
    except (TypeError, ValueError) as error:
        raise InvalidEpisodeError(f"episode not written to {where}: metadata is not JSON-able: {error}") from None


def save_episode(path: Path, episode: Episode) -> str:
    """Validate `episode`, write it atomically to `path`, and return the sha256 of the bytes on disk."""
    _require_writable(episode, str(path))
    with atomic_output(path) as handle:
        _write_zip(handle, episode)
        handle.seek(0)
        return _sha256_of(handle)


def episode_bytes(episode: Episode) -> bytes:
    """Validate `episode` and return the bytes `save_episode` would write for it (the same bytes: the zip is built
    the same way, only in memory), for a worker that cannot write into the dataset folder itself: a Ray worker on
    another machine returns them to the process that owns the dataset."""
    _require_writable(episode, "memory")
    buffer = io.BytesIO()
    _write_zip(buffer, episode)
    return buffer.getvalue()


def checksum_mismatch(path: Path, actual: str, recorded: str, fix: str = "") -> ChecksumError:
    """The error of an episode file whose sha256 `actual` is not the manifest's `recorded` one; `fix` says what to
    do about it."""
    return ChecksumError(f"{path}: sha256 {actual[:12]}… differs from {recorded[:12]}… in the manifest; the file was "
                         f"changed or damaged after it was written" + (f"; {fix}" if fix else ""))


def _unreadable(path: Path, error: OSError) -> DatasetError:
    """A file the system would not let this process read (no permission, ...): not damage, whose way out is to
    record it again; a damaged one is `_corrupt`."""
    if error.errno in ACCESS_ERRORS:
        return DatasetError(access_problem(error))
    return _corrupt(path, error)


def _corrupt(path: Path, error: BaseException) -> CorruptEpisodeError:
    return CorruptEpisodeError(f"{path}: cannot be read as an episode file, it is truncated or damaged "
                               f"({_what_is_wrong(error)}); `navigator data check` on its dataset lists every damaged "
                               f"file, and `navigator collect --out DATASET --resume` records them again")


def _what_is_wrong(error: BaseException) -> str:
    """What a reading error says of the file, in the user's terms where numpy's or zipfile's words are not."""
    if isinstance(error, (zipfile.BadZipFile, EOFError)):
        return "it is not a whole .npz (zip) archive"
    if "Object arrays" in str(error):  # numpy refuses object arrays: nothing a file holds is ever unpickled
        return "it holds pickled Python objects, which are never loaded"
    if "pickled" in str(error):  # numpy's word for a file that is neither .npz nor .npy
        return "it is not an .npz (zip) archive"
    if isinstance(error, (OSError, UnicodeDecodeError, json.JSONDecodeError)):
        return read_problem(error)
    return f"{type(error).__name__}: {error}"


def _read_json(npz: Any, name: str, path: Path) -> Any:
    if name not in npz.files:
        raise CorruptEpisodeError(f"{path}: entry {name} is missing; this is not an episode file of this format")
    array = npz[name]
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CorruptEpisodeError(f"{path}: entry {name} is not UTF-8 JSON bytes")
    return json.loads(array.tobytes().decode("utf-8"))


def _check_format(npz: Any, path: Path) -> None:
    header = _read_json(npz, "_format", path)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CorruptEpisodeError(f"{path}: not a {FORMAT_NAME} episode file (header {header!r})")
    if header.get("schema_version") != SCHEMA_VERSION:
        raise SchemaVersionError(f"{path}: episode schema version {header.get('schema_version')!r}, but this "
                                 f"software reads version {SCHEMA_VERSION}; use the software that wrote it, or "
                                 f"re-collect")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CorruptEpisodeError(f"{path}: episode file is missing") from None
    except OSError as error:
        raise _unreadable(path, error) from None


def load_episode(path: Path, sha256: str | None = None) -> Episode:
    """Read and validate a whole episode; with `sha256`, first refuse a file whose checksum differs."""
    data = _read_bytes(path)
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise checksum_mismatch(path, actual, sha256)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            _check_format(npz, path)
            metadata = _read_json(npz, "_metadata", path)
            arrays = {name: npz[name] for name in npz.files
                      if name not in ("_format", "_metadata") and not name.startswith(_PRIVILEGED)}
            privileged = {name[len(_PRIVILEGED):]: npz[name] for name in npz.files if name.startswith(_PRIVILEGED)}
    except _READ_ERRORS as error:
        raise _corrupt(path, error) from None
    problems = episode_problems(arrays, privileged, metadata)
    if problems:
        raise CorruptEpisodeError(f"{path}: " + "; ".join(problems))
    return Episode(privileged=privileged, metadata=metadata, **arrays)


def load_arrays(path: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Read only some contract arrays (a zip entry is inflated only when asked for): what training and statistics
    need, without decoding images they do not use. dtypes and shapes are checked; checksums are not (that is check's
    job, and it would cost reading the whole file)."""
    names = list(names)
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise ValueError(f"unknown episode arrays {unknown}; choose from {list(FIELDS)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            _check_format(npz, path)
            arrays = {name: npz[name] for name in names}
    except FileNotFoundError:
        raise CorruptEpisodeError(f"{path}: episode file is missing") from None
    except _READ_ERRORS as error:
        raise _unreadable(path, error) if isinstance(error, OSError) else _corrupt(path, error) from None
    frames = {array.shape[0] if array.ndim else None for array in arrays.values()}
    for name, array in arrays.items():
        spec = FIELDS[name]
        tail_ok = len(array.shape) == len(spec.tail) + 1 and all(
            want is None or got == want for got, want in zip(array.shape[1:], spec.tail, strict=True))
        if array.dtype not in spec.dtypes or not tail_ok or len(frames) != 1:
            raise CorruptEpisodeError(f"{path}: {name} is {array.dtype} {array.shape}, expected {spec.describe()} "
                                      f"with the same T as the other arrays")
    return arrays
