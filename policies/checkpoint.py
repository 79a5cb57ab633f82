"""Policy checkpoints: tensors plus JSON-able data only, so they load with `torch.load(weights_only=True)` (no
pickled code runs on load) and rebuild the policy from the config they carry."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from policies.config import PolicyConfig
from policies.policy import Policy, build_policy

FORMAT = "liquid-navigator/policy-checkpoint"
VERSION = 1


def save_checkpoint(policy: Policy, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> None:
    """Write `policy` (config, weights, normalisation buffers) and JSON-able `metadata` (epoch, losses, dataset...)
    to `path`, atomically: an interrupted save leaves any previous file intact."""
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
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Policy, dict[str, Any]]:
    """Rebuild the policy saved at `path`; returns (policy in eval mode, metadata). A file that is not a readable
    checkpoint of this format, or whose weights do not fit its config, raises ValueError saying which."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, corrupt or foreign files
        raise ValueError(f"{path} is not a readable policy checkpoint: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a policy checkpoint (expected format {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path} has checkpoint version {payload.get('version')!r}; this code reads {VERSION}")
    try:
        policy = build_policy(PolicyConfig.from_dict(payload["config"]))
        policy.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{path} does not match its own config: {error}") from None
    return policy.eval(), dict(payload.get("metadata", {}))
