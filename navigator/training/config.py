"""The training recipe: what `navigator train` reads from YAML (launch/train/*.yaml) and flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from navigator.collect import CollectConfig
from navigator.training.augment import AugmentConfig


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = 0  # DAgger rounds after the first training
    episodes: int = 16  # policy roll-outs per round, relabelled by the expert
    epochs: int = 5  # training epochs after each round (continuing from the current weights)

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.episodes < 1 or self.epochs < 1:
            raise ValueError("dagger.rounds must be >= 0, dagger.episodes and dagger.epochs >= 1")


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = ()  # dataset folders (merged; image sizes and action conventions must agree)
    out: str = "runs/cfc-ncp"
    model: str = "cfc-ncp"  # cfc-ncp | cfc | ltc-ncp | lstm | gru | mlp
    feature_size: int = 32
    head_size: int | None = None  # None: the model's ~20k-parameter default
    epochs: int = 20
    batch_size: int = 16
    window: int = 32  # frames per training window (truncated backpropagation through time)
    stride: int = 16
    lr: float = 3e-3
    lr_final_fraction: float = 0.05  # cosine decay from lr to lr * this
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 6  # early stopping: epochs without a better validation loss
    val_fraction: float = 0.1
    seed: int = 0
    threads: int = 2  # torch intra-op threads
    cache_mb: int = 4096  # decoded episodes kept in RAM
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    collect: CollectConfig | None = None  # when set and data[0] holds no dataset yet, collect it first
    dagger: DaggerConfig = field(default_factory=DaggerConfig)

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("no training data: give --data DATASET (or `data:` in the recipe)")
        for name in ("epochs", "batch_size", "window", "stride", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.lr_final_fraction <= 1 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be > 0 and lr_final_fraction in (0, 1]")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
