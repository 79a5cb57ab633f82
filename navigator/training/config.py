"""The training recipe: what `navigator train` reads from YAML (launch/train/*.yaml) and flags.

Every number has its valid range declared beside its default, and the model name is checked (and normalised: "LSTM"
is `lstm`) here, so that a bad recipe is refused before any data is collected or read, and a DAgger round whose
seeds would pass the largest seed is refused before the hours of training that precede it."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from navigator.backends import Backend
from navigator.collect import CollectConfig
from navigator.config import MAX_SEED, SettingError, check_settings, setting, setting_check
from navigator.resume import section_of

# DAgger round r flies seeds DAGGER_SEED_STRIDE * r, ... (navigator/training/pipeline.py): far above demonstration
# seeds (0, 1, ...), and one round's seeds never reach the next round's.
DAGGER_SEED_STRIDE = 1_000_000
# Epoch counts: far beyond any useful run, yet refused above it, where a mistyped count would run (and record) a
# learning-rate schedule that never decays.
MAX_EPOCHS = 100_000
# Where the network trains: the CPU, or a CUDA GPU ("cuda" is the first, "cuda:1" the second).
DEVICE_PATTERN = re.compile(r"cpu|cuda(:(0|[1-9][0-9]{0,3}))?")  # an index as torch parses it: no leading zeros


def check_device(device: object) -> str:
    """`device` normalised ("CUDA:1" -> "cuda:1"), or a SettingError naming what it may be."""
    name = device.strip().lower() if isinstance(device, str) else device
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise SettingError("device", f"must be cpu, cuda or cuda:N (the GPU's index), got {device!r}")
    return name
# Settings added to the recipe after run records were first written (dotted: inside a section), with the value every
# run recorded before them had: what a record without them is compared as, so that resuming it compares like with
# like.
ADDED_SETTINGS: dict[str, Any] = {"device": "cpu", "collect.dart_near_target": 0.0}


def with_added_settings(recorded: dict[str, Any]) -> dict[str, Any]:
    """A copy of a recorded recipe (run.json's `config`, a comparison's `base`) with the settings added since it was
    written filled in as such runs had them; one inside a section only where the record has that section (a recipe
    without `collect` collected nothing)."""
    filled = copy.deepcopy(recorded)
    for dotted, value in ADDED_SETTINGS.items():
        section, name = section_of(filled, dotted)
        if section is not None:
            section.setdefault(name, value)
    return filled


@dataclass(frozen=True)
class AugmentConfig:
    """Image augmentation of training windows (navigator/training/augment.py applies it, in this order). Each
    amount is the largest; every window draws its own, uniformly up to it (exposure: log-uniformly)."""

    saturation: float = setting(0.3, ge=0.0, lt=1.0)  # factor in [1 - s, 1 + s] on the distance from grey
    contrast: float = setting(0.3, ge=0.0, lt=1.0)  # factor in [1 - c, 1 + c] on the distance from the mean
    brightness: float = setting(0.3, ge=0.0, lt=1.0)  # multiplicative, factor in [1 - b, 1 + b]
    color: float = setting(0.0, ge=0.0, lt=1.0)  # per-channel gain in [1 - c, 1 + c]: white balance, tints
    exposure_min: float = setting(1.0, gt=0.0, le=1.0)  # darkest exposure factor (dusk, night): log-uniform to 1
    blur_sigma: float = setting(0.0, ge=0.0, le=3.0)  # Gaussian blur (defocus, motion), in pixels
    noise_std: float = setting(4.0, ge=0.0, le=255.0)  # per-pixel sensor noise after exposure, 0..255 units
    shift_px: int = setting(2, ge=0, le=16)  # translation of up to this many pixels in each direction
    cutouts: int = setting(0, ge=0, le=16)  # black rectangles (up to this many per window, 1/8 to 1/3 a side)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = setting(0, ge=0)  # DAgger rounds after the first training
    # policy roll-outs per round, relabelled by the expert; more would fly the next round's seeds
    episodes: int = setting(16, ge=1, le=DAGGER_SEED_STRIDE)
    epochs: int = setting(5, ge=1, le=MAX_EPOCHS)  # training epochs after each round (from the current weights)

    def __post_init__(self) -> None:
        check_settings(self)
        last = DAGGER_SEED_STRIDE * self.rounds + self.episodes - 1
        if self.rounds and last > MAX_SEED:
            raise SettingError("rounds", f"must be at most {(MAX_SEED - self.episodes + 1) // DAGGER_SEED_STRIDE}, "
                                         f"got {self.rounds}: round {self.rounds} would fly seeds up to {last}, past "
                                         f"the largest seed {MAX_SEED}")

    def unread(self, given: set[str]) -> list[SettingError]:
        """Of the settings `given` (other than their defaults), those no DAgger round reads because none runs
        (config.unread_problems)."""
        if self.rounds:
            return []
        return [SettingError(name, "is read only by DAgger rounds, and {rounds} is 0: give {rounds} above 0, or "
                                   "drop it", ("rounds",)) for name in ("episodes", "epochs") if name in given]


def _canonical_model(name: str) -> str:
    """The model's name, normalised like every name ("CfC-NCP" -> "cfc-ncp"), or a ValueError listing the valid
    ones."""
    from policies.config import MODEL_NAMES
    from sim_envs import normal_name

    if not isinstance(name, str) or normal_name(name) not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid models are: {', '.join(MODEL_NAMES)}")
    return normal_name(name)


@dataclass(frozen=True)
class TrainConfig:
    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"nproc": "--nproc", "resume": "--resume", "extend": "--extend"}
    # A section's setting that another setting of the recipe gives (config.from_dict says so for a file that sets it).
    TAKEN_FROM: ClassVar[dict[str, str]] = {
        "collect.out": "data's first folder, where the collection is written: name the folder there (data: [FOLDER])"}
    data: tuple[str, ...] = ()  # dataset folders (merged; image sizes and action conventions must agree)
    out: str = "runs/cfc-ncp"
    model: str = "cfc-ncp"  # cfc-ncp | cfc | ltc-ncp | lstm | gru | mlp
    # How frames are normalised before the CNN (policies/preprocessing.py): "per_frame" (grey-world white balance and
    # automatic exposure, each frame by its own statistics) or "fixed" (one mean and std for all frames).
    normalisation: str = "per_frame"
    feature_size: int = 32  # checked with head_size (policies.config.size_problem)
    head_size: int | None = None  # None: the model's ~20k-parameter default; its range depends on the model
    epochs: int = setting(20, ge=1, le=MAX_EPOCHS)
    batch_size: int = setting(16, ge=1)
    window: int = setting(32, ge=1)  # frames per training window (truncated backpropagation through time)
    stride: int = setting(16, ge=1)  # at most `window`: a larger stride would leave frames out of every window
    lr: float = setting(3e-3, gt=0.0, le=1.0)  # Adam's step is about lr per weight: above 1 training only diverges
    lr_final_fraction: float = setting(0.05, gt=0.0, le=1.0)  # cosine decay from lr to lr * this
    weight_decay: float = setting(1e-4, ge=0.0)
    grad_clip: float = setting(1.0, gt=0.0)
    patience: int = setting(6, ge=1, le=MAX_EPOCHS)  # early stopping: epochs without a better validation loss
    val_fraction: float = setting(0.1, gt=0.0, lt=1.0)
    seed: int = setting(0, ge=0, le=MAX_SEED)
    threads: int = setting(2, ge=1, le=1024)  # torch intra-op threads
    # cpu, cuda or cuda:N. Not a free setting: a GPU computes in another order than the CPU (same seed, same result
    # on the same device), so a run continues on the device it started on.
    device: str = "cpu"
    cache_mb: int = setting(4096, ge=0)  # decoded episodes kept in RAM
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    collect: CollectConfig | None = None  # when set and data[0] holds no dataset yet, collect it first
    # Where roll-outs fly (that collection and the DAgger rounds): one setting for both, so it is not `collect`'s.
    backend: Backend = field(default_factory=Backend)
    dagger: DaggerConfig = field(default_factory=DaggerConfig)

    def __post_init__(self) -> None:
        check_settings(self)
        if not self.data:
            raise SettingError("data", "no training data: name the dataset folders to train on, such as "
                                       "datasets/summer-fly-to-target")
        if not self.out:
            raise SettingError("out", "must name a folder, got ''")
        if self.collect is not None and self.collect.backend != Backend():
            raise SettingError("collect.backend", "is set for the whole recipe in a training recipe: move it to "
                                                  "`backend:` at the top level (it applies to the DAgger roll-outs "
                                                  "too)")
        if self.stride > self.window:
            raise SettingError("stride", f"must be at most window ({self.window}), got {self.stride}: frames "
                                         f"between windows would never be trained on")
        with setting_check("model"):
            object.__setattr__(self, "model", _canonical_model(self.model))
        from policies.config import size_problem

        problem = size_problem(self.model, self.feature_size, self.head_size)
        if problem is not None:
            raise SettingError(*problem)
        object.__setattr__(self, "device", check_device(self.device))
        from policies.preprocessing import NORMALISATIONS
        from sim_envs import normal_name

        if isinstance(self.normalisation, str):  # "Per-Frame" is per_frame, as every name is normalised first
            object.__setattr__(self, "normalisation", normal_name(self.normalisation).replace("-", "_"))
        if self.normalisation not in NORMALISATIONS:
            raise SettingError("normalisation", f"must be one of {', '.join(NORMALISATIONS)}, got "
                                                f"{self.normalisation!r}")
