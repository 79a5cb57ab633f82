"""Policy checkpoints: tensors plus JSON-able data only, so they load with `torch.load(weights_only=True)` (no
pickled code runs on load) and rebuild the policy from the config they carry.

Every way a file can fail to be a usable checkpoint (missing, empty, not a PyTorch file, truncated, pickled code,
someone else's weights, another format version, weights that do not fit their config) raises one error type,
`CheckpointError`, whose message names the file, what is wrong with it in the user's terms and what to do; it is a
ValueError, so callers outside this package (which may not import the CLI's error types) catch one thing.
"""

from __future__ import annotations

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
VERSION = 1
_KEYS = ("format", "version", "config", "state_dict", "metadata")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive
DEFAULT_ADVICE = "re-run navigator train or pick another file"


class CheckpointError(ValueError):
    """A file that cannot be used as what it was loaded for; `reason` says why in a few words."""

    def __init__(self, path: Path, reason: str, advice: str = DEFAULT_ADVICE, what: str = "checkpoint") -> None:
        super().__init__(f"{path} is not a liquid-navigator {what} ({reason}): {advice}")
        self.path = path
        self.reason = reason


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
    with path.open("rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
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
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Policy, dict[str, Any]]:
    """Rebuild the policy saved at `path`; returns (policy in eval mode, metadata). Raises CheckpointError when the
    file is not a usable checkpoint, saying why."""
    path = Path(path)
    payload = read_torch_file(path)
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
        policy = build_policy(PolicyConfig.from_dict(payload["config"]))
        policy.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(path, f"its weights do not match its own config: {error}") from None
    if not isinstance(payload["metadata"], dict):
        raise CheckpointError(path, "incomplete: its metadata is not a mapping")
    return policy.eval(), dict(payload["metadata"])
