"""The saliency methods by name, with what an evaluation needs to know of them, importable without torch (settings
and `--help` read them; `saliency` computes the maps)."""

from __future__ import annotations


from navigator.errors import UserError

METHODS = ("visualbackprop", "integrated-gradients")
# Camera steps between two attention measurements in `navigator eval --attention` unless set: each method's cost
# (bench/bench_attention.py) keeps an evaluation within about 30% of its time without --attention.
DEFAULT_EVERY = {"visualbackprop": 5, "integrated-gradients": 30}


def canonical_method(name: str) -> str:
    """The method's name as METHODS spell it, however typed (" Integrated Gradients", "INTEGRATED_GRADIENTS" ->
    "integrated-gradients": names compared as `sim_envs.normal_name` compares them); a ValueError listing METHODS for
    any other."""
    from sim_envs import normal_name

    if isinstance(name, str) and normal_name(name) in METHODS:
        return normal_name(name)
    raise ValueError(f"unknown saliency method {name!r}; valid methods are: {', '.join(METHODS)}")


def check_method(method: str) -> str:
    """`method` as METHODS spell it (`canonical_method`), else a UserError listing them."""
    try:
        return canonical_method(method)
    except ValueError as error:
        raise UserError(str(error)) from None
