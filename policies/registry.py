"""Heads by model name, each with a default size that gives it about 20k trainable parameters (with the default
32 CNN features + 7 state inputs), so that the liquid heads and the baselines compare at matched budgets."""

from __future__ import annotations

from collections.abc import Callable

from policies.config import ACTION_SIZE, MODEL_NAMES, PolicyConfig
from policies.heads import CfCHead, CfCNCPHead, GRUHead, Head, LSTMHead, LTCNCPHead, MLPHead

# name -> (builder(config, input size, head size), default head size)
_MODELS: dict[str, tuple[Callable[[PolicyConfig, int, int], Head], int]] = {
    "cfc-ncp": (lambda c, n, size: CfCNCPHead(n, size, ACTION_SIZE, c.ncp_sparsity, c.seed), 70),
    "cfc": (lambda c, n, size: CfCHead(n, size, ACTION_SIZE), 53),
    "ltc-ncp": (lambda c, n, size: LTCNCPHead(n, size, ACTION_SIZE, c.ncp_sparsity, c.seed), 53),
    "lstm": (lambda c, n, size: LSTMHead(n, size, ACTION_SIZE), 52),
    "gru": (lambda c, n, size: GRUHead(n, size, ACTION_SIZE), 63),
    "mlp": (lambda c, n, size: MLPHead(n, size, ACTION_SIZE), 120),
}

assert tuple(_MODELS) == MODEL_NAMES, "policies.config.MODEL_NAMES lists the heads built here, in order"


def head_size(config: PolicyConfig) -> int:
    """The configured head size, or the model's default."""
    if config.model not in _MODELS:
        raise ValueError(f"unknown model {config.model!r}; valid models: {', '.join(MODEL_NAMES)}")
    return config.head_size if config.head_size is not None else _MODELS[config.model][1]


def build_head(config: PolicyConfig, input_size: int) -> Head:
    size = head_size(config)  # validates the name first
    return _MODELS[config.model][0](config, input_size, size)
