"""The saliency methods by name, with what an evaluation needs to know of them, importable without torch (settings
and `--help` read them; `saliency` computes the maps)."""

from __future__ import annotations

from navigator.errors import UserError

METHODS = ("visualbackprop", "integrated-gradients")
# Camera steps between two attention measurements in `navigator eval --attention` unless set: each method's cost
# (bench/bench_attention.py) keeps an evaluation within about 30% of its time without --attention.
DEFAULT_EVERY = {"visualbackprop": 5, "integrated-gradients": 30}


def check_method(method: str) -> str:
    """`method` if it is one of METHODS, else a UserError listing them."""
    if method not in METHODS:
        raise UserError(f"unknown saliency method {method!r}; valid methods are: {', '.join(METHODS)}")
    return method
