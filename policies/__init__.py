"""Torch policies: perception CNN, liquid (CfC/LTC with NCP wiring) and baseline heads, the single-step policy.

The package import stays torch-free, so that the onboard runtime can import `policies.preprocessing` on a
companion computer without torch; the torch-side names below load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "MODEL_NAMES": "policies.config",
    "PolicyConfig": "policies.config",
    "Policy": "policies.policy",
    "PolicyStep": "policies.policy",
    "build_policy": "policies.policy",
    "checkpoint_bytes": "policies.checkpoint",
    "load_checkpoint": "policies.checkpoint",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
