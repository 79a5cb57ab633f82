"""Policy checkpoints: tensors plus JSON-able data only, so they load with `torch.load(weights_only=True)` (no
pickled code runs on load) and rebuild the policy from the config they carry.

Every way a file can fail to be a usable checkpoint (missing, empty, not a PyTorch file, truncated, pickled code,
someone else's weights, another format version, weights that do not fit their config, content changed after it was
written, NaN or infinite weights, a training state given for a policy) raises one error type,
`CheckpointError`, whose message names the file, what is wrong with it in the user's terms and what to do; it is a
ValueError, so callers outside this package (which may not import the CLI's error types) catch one thing.

A checkpoint carries the sha256 of its content (`content_sha256`), because torch's zip container does not check its
own CRCs: a flipped bit in a weight would otherwise load and fly. Files written before checksums existed (no
`sha256` key) still load; their weights are still checked to be finite.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from policies.config import PolicyConfig
from policies.policy import Policy, build_policy

FORMAT = "liquid-navigator/policy-checkpoint"
# What `navigator train` writes as last.pt (defined here so that loading one as a policy can say what it is).
TRAINING_STATE_FORMAT = "liquid-navigator/training-state"
VERSION = 1
_KEYS = ("format", "version", "config", "state_dict", "metadata")
CHECKSUM_KEY = "sha256"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive
DEFAULT_ADVICE = "re-run navigator train or pick another file"


class CheckpointError(ValueError):
    """A file that cannot be used as what it was loaded for; `reason` says why in a few words. `verdict` replaces
    "is not a liquid-navigator checkpoint" where the file is one, but damaged or unusable."""

    def __init__(self, path: Path, reason: str, advice: str = DEFAULT_ADVICE, what: str = "checkpoint",
                 verdict: str | None = None) -> None:
        super().__init__(f"{path} {verdict or f'is not a liquid-navigator {what}'} ({reason}): {advice}")
        self.path = path
        self.reason = reason
        self.arguments = (path, reason, advice, what, verdict)

    def __reduce__(self):  # pickled (from a worker process) by its arguments, not the message alone
        return type(self), self.arguments


def _feed(digest: Any, value: Any) -> None:
    """Feed `value` (nested dicts, lists, tensors and JSON scalars) into `digest`, each item tagged with its kind and
    length so that different structures never feed the same bytes; dict keys in a stable (sorted) order."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}:".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        digest.update(f"S{len(encoded)}:".encode() + encoded)
    elif value is None or isinstance(value, (bool, int, float)):
        text = repr(value).encode()  # repr round-trips floats exactly
        digest.update(f"{type(value).__name__}{len(text)}:".encode() + text)
    else:
        raise TypeError(f"cannot checksum a {type(value).__name__}")


def content_sha256(payload: Mapping[str, Any]) -> str:
    """The sha256 of everything in `payload` but its own checksum: tensors by dtype, shape and bytes, plain data by
    value, in a stable order, so that it is the same after a torch.save / torch.load round trip."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in payload.items() if key != CHECKSUM_KEY})
    return digest.hexdigest()


def check_checksum(path: Path, payload: Mapping[str, Any], advice: str = DEFAULT_ADVICE) -> None:
    """Refuse `payload` read from `path` when it carries a checksum that does not match its content."""
    if CHECKSUM_KEY in payload and payload[CHECKSUM_KEY] != content_sha256(payload):
        raise CheckpointError(path, "its checksum does not match its content: it changed after it was written, e.g. "
                                    "in a disk or copy error", advice, verdict="is damaged")


def with_checksum(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with its content's checksum added, ready for torch.save."""
    return {**payload, CHECKSUM_KEY: content_sha256(payload)}


def read_torch_file(path: str | os.PathLike[str], advice: str = DEFAULT_ADVICE, what: str = "checkpoint") -> Any:
    """`torch.load(path, weights_only=True)`, with every failure turned into a CheckpointError that says what is wrong
    with the file (torch's own messages are about its internals, and for pickled code advise disabling the very
    weights_only protection that keeps a downloaded file from running code)."""
    path = Path(path)

    def fail(reason: str) -> CheckpointError:
        return CheckpointError(path, reason, advice, what)

    if not path.exists():
        raise fail("no such file")
    if not path.is_file():
        raise fail("a folder, not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_ZIP_MAGIC))
    except PermissionError:
        raise CheckpointError(path, "permission denied", "give this user read access to it (ls -l shows who may "
                                                         "read it)", what, verdict="cannot be read") from None
    if not head:
        raise fail("empty file")
    if head != _ZIP_MAGIC:
        raise fail("not a PyTorch file")
    if not zipfile.is_zipfile(path):
        raise fail("truncated or damaged")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise fail("it holds pickled Python objects, not only tensors and plain data; loading it would run code "
                   "from the file") from None
    except Exception:  # torch raises several types (RuntimeError, EOFError, zipfile errors) for damage
        raise fail("truncated or damaged") from None


def checkpoint_bytes(policy: Policy, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The checkpoint of `policy` (config, weights, normalisation buffers) and JSON-able `metadata` (epoch, losses,
    dataset...) as bytes, for a caller that writes them with its own atomic-write helper."""
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint metadata must be JSON-able: {error}") from None
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": policy.config.to_dict(),
        "state_dict": {key: value.detach().cpu() for key, value in policy.state_dict().items()},
        "metadata": metadata,
    }
    buffer = io.BytesIO()
    torch.save(with_checksum(payload), buffer)
    return buffer.getvalue()


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Policy, dict[str, Any]]:
    """Rebuild the policy saved at `path`; returns (policy in eval mode, metadata). Raises CheckpointError when the
    file is not a usable checkpoint, saying why."""
    path = Path(path)
    payload = read_torch_file(path)
    if isinstance(payload, dict) and payload.get("format") == TRAINING_STATE_FORMAT:
        raise CheckpointError(path, "what navigator train --resume continues from", f"use the run's policy, "
                              f"{path.with_name('best.pt')}", verdict="is a training state, not a policy")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = sorted(map(str, payload))[:5] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(path, f"a PyTorch file of other content: {found}, not a policy checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(path, f"checkpoint format version {payload.get('version')!r}, and this version of "
                                    f"liquid-navigator reads version {VERSION}",
                              "re-train it, or load it with the liquid-navigator version that wrote it")
    missing = [key for key in _KEYS if key not in payload]
    if missing:
        raise CheckpointError(path, f"incomplete: no {', '.join(missing)}")
    try:
        check_checksum(path, payload)
    except TypeError:  # content no checkpoint_bytes writes, so it cannot be what was checksummed
        raise CheckpointError(path, "its checksum does not match its content", verdict="is damaged") from None
    try:
        policy = build_policy(PolicyConfig.from_dict(payload["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(path, f"its config cannot be used: {error}") from None
    try:
        policy.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError):
        # torch's own message spans lines (one per tensor) and names its internals: say what it means in one line.
        raise CheckpointError(path, "its weights do not match its own config (missing, unexpected or misshapen "
                                    "weights)") from None
    if not isinstance(payload["metadata"], dict):
        raise CheckpointError(path, "incomplete: its metadata is not a mapping")
    _check_finite(path, policy)
    return policy.eval(), dict(payload["metadata"])


def _check_finite(path: Path, policy: Policy) -> None:
    """Refuse NaN or infinite weights (or normalisation buffers): such a policy outputs NaN actions, which no
    flight can use."""
    bad = {name: int((~torch.isfinite(tensor)).sum()) for name, tensor in policy.state_dict().items()
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())}
    if bad:
        total = sum(bad.values())
        names = ", ".join(list(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(path, f"{total} of its weights are NaN or infinite, in {names}", "the training that "
                              "wrote it diverged or the file was altered; re-run navigator train (a lower --lr may "
                              "help) or pick another file", verdict="is unusable")
