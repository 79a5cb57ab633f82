"""Behaviour cloning, top to bottom: windows of expert demonstrations in, a policy checkpoint out.

`train(config, out)` runs the recipe's first training; a DAgger round runs the same loop as another `Stage` (its
name, its datasets, its epochs) of the same config. Per epoch: shuffled training windows (truncated backpropagation
through time over each window, from a zero hidden state), augmented images, masked MSE against the expert's labels,
AdamW with a cosine schedule and gradient clipping; then the validation loss, checkpoints and TensorBoard scalars.
`last.pt` holds everything needed to resume exactly (model, optimiser, schedule, counters); `best.pt` is the policy
with the best validation loss, the file to fly and export. Both are tensors and plain data only:
`torch.load(..., weights_only=True)` reads them.

Batches are read, decoded and augmented ahead in a background thread (`prefetched`), overlapping the optimiser step
(zlib and torch release the GIL); they come in the same order from the same generator, so a seeded run computes
exactly what it would serially.
"""

from __future__ import annotations

import io
import json
import math
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from navigator.config import to_dict
from navigator.dataset import ACTION_CONVENTION, Batch, WindowLoader, open_datasets
from navigator.dataset.atomic import atomic_write_bytes
from navigator.errors import UserError
from navigator.training.augment import augment
from navigator.training.config import TrainConfig
from policies.checkpoint import (TRAINING_STATE_FORMAT, CheckpointError, check_checksum, checkpoint_bytes,
                                 read_torch_file, with_checksum)
from policies.config import PolicyConfig
from policies.policy import Policy, build_policy
from policies.preprocessing import ImageSpec

RESUME_FORMAT = TRAINING_STATE_FORMAT
# Batches waiting for the step: enough to absorb a slow one (episodes decoded on the first epoch), few enough to hold
# little memory (an augmented batch of 16 windows of 32 frames of 48x64 is 19 MB).
PREFETCH_BATCHES = 2

T = TypeVar("T")


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the message says where and what to try."""


@dataclass(frozen=True)
class Stage:
    """One training of a run: its name in the resume state ("train", "dagger-1", ...), the datasets it trains on
    and its epochs (the cosine schedule spans them)."""

    name: str
    data: tuple[str, ...]
    epochs: int


def first_stage(config: TrainConfig) -> Stage:
    """The recipe's training before any DAgger round: its datasets, for its epochs."""
    return Stage("train", tuple(config.data), config.epochs)


@dataclass
class EpochReport:
    epoch: int
    train_loss: float
    val_loss: float
    frames_per_second: float
    lr: float
    best: bool


class TrainHooks:
    """What a caller sees of a training while it runs (nothing, unless overridden)."""

    def epoch(self, report: EpochReport) -> None: ...

    def batch(self, index: int, batches: int, frames: int, loss: float) -> None: ...


def git_commit() -> str | None:
    """The commit this code runs from, for provenance (None outside a git checkout)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` with its checksum, so that a resume never continues from silently damaged weights."""
    buffer = io.BytesIO()
    torch.save(with_checksum(payload), buffer)
    atomic_write_bytes(path, buffer.getvalue())


_STATE_ADVICE = "it cannot be resumed; start the run over in another --out"


def read_training_state(path: Path) -> dict[str, Any]:
    """The resume state saved at `path` (last.pt); a damaged or foreign file is a UserError saying so. States written
    before checksums existed are read unchecked."""
    try:
        state = read_torch_file(path, _STATE_ADVICE, what="training state")
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise CheckpointError(path, "a PyTorch file of other content", _STATE_ADVICE, what="training state")
        check_checksum(path, state, _STATE_ADVICE)
    except CheckpointError as error:
        raise UserError(str(error)) from None
    except TypeError:  # content the training never writes, so it cannot be what was checksummed
        raise UserError(str(CheckpointError(path, "its checksum does not match its content", _STATE_ADVICE,
                                            verdict="is damaged"))) from None
    return state


def _diverged(what: str, state_path: Path, config: TrainConfig) -> TrainingDiverged:
    """The error for a non-finite loss, raised before anything of the diverged epoch is saved: the stage is not
    marked completed, and last.pt (when an epoch was saved) keeps the last good state to resume or inspect."""
    if state_path.exists():
        saved = read_training_state(state_path)
        kept = f"{state_path} keeps the last good state ({saved['stage']}, epoch {saved['epoch']})"
    else:
        kept = "no epoch of it was saved"
    return TrainingDiverged(f"{what}; training stopped and {kept}. Try a lower --lr (now {config.lr}) or a smaller "
                            f"grad_clip, and run 'navigator data check' on the data")


def _masked_mse(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(predicted.dtype)
    return ((predicted - target) ** 2 * weights).sum() / (weights.sum() * predicted.shape[-1]).clamp_min(1.0)


def make_loader(config: TrainConfig, data: tuple[str, ...]) -> WindowLoader:
    datasets = open_datasets([Path(d) for d in data])
    for dataset in datasets:
        if dataset.manifest.action_convention != ACTION_CONVENTION:
            raise UserError(f"{dataset.path}: actions follow {dataset.manifest.action_convention!r}, but the "
                            f"policies learn {ACTION_CONVENTION!r}; re-collect it with this version")
        if not dataset.entries:
            raise UserError(f"{dataset.path}: the dataset holds no episodes")
    return WindowLoader(datasets, window=config.window, stride=config.stride, val_fraction=config.val_fraction,
                        split_seed=config.seed, cache_bytes=config.cache_mb * 2**20)


def data_scenario(loader: WindowLoader) -> dict[str, Any]:
    """The airframe and camera the demonstrations were flown with (from the first episode's metadata): a policy
    flies only what it learnt on, so its checkpoint records them."""
    first = loader.datasets[0]
    metadata = first.read(first.entries[0], verify=False).metadata
    return {"airframe": metadata.get("airframe"), "camera": metadata.get("camera", {})}


def new_policy(config: TrainConfig, loader: WindowLoader, camera: dict[str, Any]) -> Policy:
    height, width = loader.image_size
    fov = float(camera.get("fov_deg", ImageSpec.input_hfov_deg))
    image = ImageSpec(input_height=height, input_width=width, input_hfov_deg=fov, output_height=height,
                      output_width=width, output_hfov_deg=fov, normalisation=config.normalisation)
    try:
        policy = build_policy(PolicyConfig(model=config.model, image=image, feature_size=config.feature_size,
                                           head_size=config.head_size, seed=config.seed))
    except ValueError as error:
        raise UserError(str(error)) from None
    stats = loader.stats()
    policy.set_state_normalisation(torch.as_tensor(stats.state_mean, dtype=torch.float32),
                                   torch.as_tensor(stats.state_std, dtype=torch.float32))
    return policy


def check_fits(policy: Policy, loader: WindowLoader, where: str) -> None:
    """A policy trained on one camera cannot learn from another's images."""
    spec = policy.config.image
    if (spec.input_height, spec.input_width) != loader.image_size:
        raise UserError(f"{where} expects {spec.input_width}x{spec.input_height} camera images but the data has "
                        f"{loader.image_size[1]}x{loader.image_size[0]}; collect with the model's camera or train a "
                        f"new model")


_DONE = object()


def prefetched(items: Iterator[T], depth: int = PREFETCH_BATCHES) -> Iterator[T]:
    """`items` in their order, each made in a background thread up to `depth` ahead of the one being used. An error
    making one is raised here, in its place; when the consumer stops early, the thread stops after the item it is
    making."""
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, which raises it)
            put((_DONE, error))

    worker = threading.Thread(target=produce, name="training-batches", daemon=True)
    worker.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _augmented(loader: WindowLoader, config: TrainConfig, epoch: int) -> Iterator[tuple[Batch, torch.Tensor]]:
    """The epoch's shuffled training batches, each with its augmented images (one generator per epoch, drawn in
    batch order, so a resumed run augments its epochs as an uninterrupted one)."""
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    for batch in loader.batches("train", config.batch_size, shuffle=True, seed=config.seed, epoch=epoch):
        yield batch, augment(torch.from_numpy(batch.images), config.augment, generator)


def evaluate(policy: Policy, loader: WindowLoader, batch_size: int) -> float:
    """Mean masked MSE over the validation windows (over the training windows when there are none)."""
    split = "val" if loader.windows("val") else "train"
    policy.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in prefetched(loader.batches(split, batch_size, shuffle=False)):
            actions, _ = policy(torch.from_numpy(batch.images), torch.from_numpy(batch.state),
                                torch.from_numpy(batch.dt))
            mask = torch.from_numpy(batch.mask)
            total += float(_masked_mse(actions, torch.from_numpy(batch.action), mask)) * int(mask.sum())
            count += int(mask.sum())
    return total / max(1, count)


def train(config: TrainConfig, out: Path, stage: Stage | None = None, *, resume: bool = False,
          hooks: TrainHooks | None = None, initial: Policy | None = None) -> Policy:
    """Train `stage` of `config` (by default its first training), writing `out`/last.pt, best.pt and TensorBoard
    logs under `out`.

    `initial`: continue from these weights (DAgger rounds) instead of a fresh policy. `resume` is strict both ways:
    True continues the stage from `out`/last.pt and refuses when that holds no state of the stage; False starts the
    stage afresh and refuses to overwrite a state of it (a state of an earlier stage is what a DAgger round follows,
    and is replaced). Whether the settings match the run's is the caller's to check (`navigator.training.pipeline`
    compares them with the run's record).

    The cosine learning-rate schedule spans the stage's epochs: a run extended to more epochs continues on the
    cosine of its new length from the epoch it had reached.
    """
    from torch.utils.tensorboard import SummaryWriter

    stage = stage or first_stage(config)
    hooks = hooks or TrainHooks()
    epochs = stage.epochs
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    state_path, best_path = out / "last.pt", out / "best.pt"
    start_epoch, best_val, stale, history = 0, math.inf, 0, []
    state = read_training_state(state_path) if state_path.exists() else None
    if resume and (state is None or state.get("stage") != stage.name):
        raise UserError(f"{out} holds no {stage.name} to resume ({state_path} "
                        f"{'is missing' if state is None else 'holds ' + str(state.get('stage'))}); start it afresh")
    if not resume and state is not None and state.get("stage") == stage.name:
        raise UserError(f"{out} already holds a {stage.name} (its state is {state_path}); resume it, or choose "
                        f"another --out")
    out.mkdir(parents=True, exist_ok=True)
    loader = make_loader(config, stage.data)
    scenario = data_scenario(loader)
    policy = initial if initial is not None else new_policy(config, loader, scenario["camera"])
    check_fits(policy, loader, "the model")
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: config.lr_final_fraction + (
        1 - config.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * min(e, epochs) / epochs)))
    if resume:
        try:
            policy.load_state_dict(state["policy"])
        except RuntimeError:
            raise UserError(f"{state_path} holds a {stage.name} of another model or camera than --model "
                            f"{config.model} on this data; resume with the settings it was started with, or choose "
                            f"another --out") from None
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best_val, stale = state["epoch"], state["best_val"], state["stale"]
        history = json.loads(state["history"])
    tensorboard = SummaryWriter(str(out / "tensorboard"))
    commit = git_commit()
    per_epoch = math.ceil(len(loader.windows("train")) / config.batch_size)  # the progress bar's total
    for epoch in range(start_epoch, epochs):
        if stale >= config.patience:
            break
        policy.train()
        losses, frames, started = [], 0, time.perf_counter()
        for index, (batch, images) in enumerate(prefetched(_augmented(loader, config, epoch))):
            actions, _ = policy(images, torch.from_numpy(batch.state), torch.from_numpy(batch.dt))
            loss = _masked_mse(actions, torch.from_numpy(batch.action), torch.from_numpy(batch.mask))
            if not torch.isfinite(loss):
                raise _diverged(f"the training loss became {float(loss.detach())} at epoch {epoch + 1}, batch "
                                f"{index + 1}", state_path, config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            frames += int(batch.mask.sum())
            hooks.batch(index, per_epoch, frames, losses[-1])
        schedule.step()
        fps = frames / max(1e-9, time.perf_counter() - started)
        val_loss = evaluate(policy, loader, config.batch_size)
        if not math.isfinite(val_loss):  # the weights diverged in the epoch's last steps: nothing of it is kept
            raise _diverged(f"the validation loss became {val_loss} after epoch {epoch + 1}", state_path, config)
        improved = val_loss < best_val
        if improved:
            best_val, stale = val_loss, 0
            atomic_write_bytes(best_path, checkpoint_bytes(policy, {
                "epoch": epoch + 1, "val_loss": val_loss, "stage": stage.name, "data": list(stage.data),
                "train_config": to_dict(config), "commit": commit, **scenario,
                "parameter_counts": policy.parameter_counts(),
                "normalisation": loader.stats().to_dict(),
                "training_seeds": [{**seeds, "source": str(dataset.path)} for dataset in loader.datasets
                                   for seeds in dataset.manifest.seed_ranges()],
            }))
        else:
            stale += 1
        report = EpochReport(epoch + 1, float(np.mean(losses)) if losses else math.nan, val_loss, fps,
                             schedule.get_last_lr()[0], improved)
        history.append(report.__dict__)
        _atomic_torch_save({
            "format": RESUME_FORMAT, "stage": stage.name, "policy": policy.state_dict(),
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch + 1,
            "best_val": best_val, "stale": stale, "history": json.dumps(history),
        }, state_path)
        for name in ("train_loss", "val_loss", "frames_per_second", "lr"):
            tensorboard.add_scalar(f"{stage.name}/{name}", getattr(report, name), epoch + 1)
        tensorboard.flush()
        hooks.epoch(report)
    tensorboard.close()
    atomic_write_bytes(out / "history.json", (json.dumps(history, indent=1) + "\n").encode("utf-8"))
    return policy
