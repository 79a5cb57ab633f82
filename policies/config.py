"""The policy configuration: everything needed to rebuild a policy's modules, so a checkpoint describes itself."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from policies.preprocessing import ImageSpec, require_known_keys

STATE_SIZE = 7  # [vx, vy, vz (heading frame FLU, m/s), roll, pitch (rad), yaw_rate (rad/s, CCW+), height (m)]
ACTION_SIZE = 4  # [vx forward, vy left, vz up, yaw_rate CCW], each divided by the airframe's limit
# The heads `policies.registry` builds, named here (torch-free) so that configs can be checked without loading torch.
MODEL_NAMES: tuple[str, ...] = ("cfc-ncp", "cfc", "ltc-ncp", "lstm", "gru", "mlp")
# Wider heads and feature vectors than these are far past a ~20k-parameter policy: 1024 NCP neurons already hold
# about 3M head parameters, and a mistyped 100000 would ask for tens of GB before the first step.
MAX_HEAD_SIZE = 1024
MAX_FEATURE_SIZE = 1024
# ncps's LTC unfolds its ODE solver six times per step over dense per-synapse tensors: 1024 neurons would need tens
# of GB to train; 256 trains in a few.
MAX_HEAD_SIZES = {"ltc-ncp": 256}
# An NCP wiring (ncps's AutoNCP) needs more neurons than its motor neurons (one per action) plus two.
NCP_MODELS = ("cfc-ncp", "ltc-ncp")
MIN_NCP_HEAD_SIZE = ACTION_SIZE + 3


def size_problem(model: str, feature_size: int, head_size: int | None) -> tuple[str, str] | None:
    """(the setting, what is wrong with it) when `feature_size` or `head_size` cannot make a policy of `model`, else
    None: checked before any work, in the terms of the settings."""
    if not 1 <= feature_size <= MAX_FEATURE_SIZE:
        return "feature_size", f"must be in [1, {MAX_FEATURE_SIZE}], got {feature_size}"
    if head_size is None:
        return None
    low = MIN_NCP_HEAD_SIZE if model in NCP_MODELS else 1
    high = MAX_HEAD_SIZES.get(model, MAX_HEAD_SIZE)
    if not isinstance(head_size, int) or isinstance(head_size, bool) or not low <= head_size <= high:
        why = (f" ({model}'s NCP wiring needs more neurons than its {ACTION_SIZE} motor neurons plus two)"
               if model in NCP_MODELS and isinstance(head_size, int) and head_size < low else "")
        return "head_size", f"must be in [{low}, {high}] for {model}, got {head_size}{why}"
    return None


@dataclass(frozen=True)
class PolicyConfig:
    model: str = "cfc-ncp"
    image: ImageSpec = field(default_factory=ImageSpec)
    feature_size: int = 32  # CNN features, concatenated with the normalised state before the head
    head_size: int | None = None  # hidden width (NCP: neurons); None: the model's ~20k-parameter default
    ncp_sparsity: float = 0.5  # AutoNCP sparsity level of the wired heads
    seed: int = 0  # parameter initialisation and NCP wiring
    # The heads measure time in units of this many seconds (dt / time_unit_s): at the nominal 30 Hz they see
    # dt = 1, the regime ncps's initialisation is made for (its default time span is 1). Measured in seconds, an
    # LTC's state barely moves per step at initialisation and it learns far more slowly.
    time_unit_s: float = 1.0 / 30.0

    def __post_init__(self) -> None:
        problem = size_problem(self.model, self.feature_size, self.head_size)
        if problem is not None:
            raise ValueError(f"{problem[0]} {problem[1]}")
        if self.time_unit_s <= 0:
            raise ValueError(f"time_unit_s must be positive, got {self.time_unit_s}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["image"] = self.image.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        require_known_keys(cls, data)
        values = dict(data)
        if "image" in values:
            values["image"] = ImageSpec.from_dict(values["image"])
        return cls(**values)
