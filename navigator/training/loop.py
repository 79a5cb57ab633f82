"""Behaviour cloning, top to bottom: windows of expert demonstrations in, a policy checkpoint out.

`train(config, out)` runs the recipe's first training; a DAgger round runs the same loop as another `Stage` (its
name, its datasets, its epochs) of the same config. Per epoch: shuffled training windows (truncated backpropagation
through time over each window, from a zero hidden state), augmented images, masked MSE against the expert's labels,
AdamW with a cosine schedule and gradient clipping; then the validation loss, checkpoints and TensorBoard scalars.
`last.pt` holds everything needed to resume exactly (model, optimiser, schedule, counters); `best.pt` is the policy
with the best validation loss, the file to fly and export. Both are tensors and plain data only:
`torch.load(..., weights_only=True)` reads them.

Batches are read, decoded and augmented ahead in a background thread (`prefetched`), overlapping the optimiser step
(zlib and torch release the GIL); they come in the same order from the same generators, so a seeded run computes
exactly what it would serially.

The network trains on the recipe's `device` (the CPU, or a CUDA GPU with deterministic kernels); batches are made
on the CPU and moved there, and everything saved is on the CPU, so a run's files load on any machine.

Under torchrun (navigator/training/distributed.py) every process runs this loop on its rows of each global batch:
the loss is normalised over the global batch, DistributedDataParallel averages the gradients, and only rank 0 reads
and writes `out`.
"""

from __future__ import annotations

import io
import json
import math
import os
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
from navigator.dataset.reader import require_episodes, require_one_scenario
from navigator.errors import UserError, counted
from navigator.threads import join_through_interrupts
from navigator.training import distributed
from navigator.training.augment import augment
from navigator.training.config import TrainConfig
from navigator.workers import usable_cpus
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
    # The patience when training stops early after this epoch (no better validation loss for that many epochs);
    # None while it goes on. Not kept in history.json.
    stops_early: int | None = None

    def record(self) -> dict[str, Any]:
        """The epoch as history.json keeps it."""
        return {name: value for name, value in self.__dict__.items() if name != "stops_early"}


class TrainHooks:
    """What a caller sees of a training while it runs (nothing, unless overridden)."""

    def epoch(self, report: EpochReport) -> None: ...

    def batch(self, index: int, batches: int, frames: int, loss: float) -> None: ...

    def warning(self, message: str) -> None: ...


class TrainingExtras:
    """What a training may change in the plain recipe, each part overridable: where the weights start, which of them
    train, what each batch holds, what the loss adds, and what the checkpoint records. The defaults are the plain
    recipe; `navigator.adapt.strategies` overrides them to continue a trained policy (frozen CNN, replayed old data,
    an L2 anchor to the starting weights)."""

    def policy(self, config: TrainConfig, loader: WindowLoader, camera: dict[str, Any]) -> Policy:
        """The policy a stage without `initial` weights starts from: fresh weights of config's model."""
        return new_policy(config, loader, camera)

    def parameters(self, policy: Policy) -> Iterator[torch.nn.Parameter]:
        """The parameters the optimiser updates."""
        return policy.parameters()

    def batches(self, loader: WindowLoader, config: TrainConfig, epoch: int) -> Iterator[Batch]:
        """The epoch's shuffled training batches (un-augmented)."""
        return loader.batches("train", config.batch_size, shuffle=True, seed=config.seed, epoch=epoch)

    def loss(self, policy: Policy, imitation: torch.Tensor) -> torch.Tensor:
        """The loss minimised, from the batch's masked MSE against the expert's labels."""
        return imitation

    def metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """What best.pt records, from what the plain recipe records."""
        return metadata

    def saved(self, policy: Policy) -> Policy:
        """The policy best.pt holds, from the one trained (which last.pt holds, to resume)."""
        return policy


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
    return TrainingDiverged(f"{what}; training stopped and {kept}. Try a lower --lr (now {config.lr}), a smaller "
                            f"grad_clip (now {config.grad_clip}) or weight_decay (now {config.weight_decay}), and "
                            f"run 'navigator data check' on the data")


def training_device(name: str, group: distributed.Group | None = None) -> torch.device:
    """The torch device a recipe's `device` names, or a UserError, before any work, when this machine cannot train
    there."""
    device = torch.device(name)
    if device.type == "cpu":
        return device
    if group is not None:
        raise UserError(f"device {name}: training under torchrun runs on CPUs (DistributedDataParallel over gloo); "
                        f"train on the GPU with one process (drop --nproc), or give --device cpu")
    if not torch.cuda.is_available():
        raise UserError(f"device {name}: this PyTorch ({torch.__version__}) sees no CUDA GPU (a CPU-only build, or no "
                        f"GPU driver); give --device cpu, or install a CUDA build of torch on a machine with a GPU")
    if (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device {name}: this machine has {counted(torch.cuda.device_count(), 'CUDA GPU')}, "
                        f"numbered from 0; "
                        f"give --device cuda:N with N below {torch.cuda.device_count()}")
    # Same seed, same result on the same GPU: deterministic kernels (cuBLAS needs its workspace fixed for that,
    # before its first use). An operation without a deterministic kernel warns, naming itself, rather than stopping a
    # training (the default model has none: tests/test_train_devices.py).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def _on_cpu(value: Any) -> Any:
    """`value` (a state dict, an optimiser's state: nested dicts and lists of tensors) with every tensor on the CPU,
    so that a saved state loads on any machine."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _masked_sums(predicted: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """predicted, target (B, T, A), mask (B, T) -> (the squared errors summed over valid steps and the A components,
    the number of valid steps): a mean's parts, which processes of a torchrun group add up before dividing."""
    weights = mask.unsqueeze(-1).to(predicted.dtype)
    return ((predicted - target) ** 2 * weights).sum(), weights.sum()


def _masked_mse(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    total, steps = _masked_sums(predicted, target, mask)
    return total / (steps * predicted.shape[-1]).clamp_min(1.0)


def make_loader(config: TrainConfig, data: tuple[str, ...]) -> WindowLoader:
    datasets = open_datasets([Path(d) for d in data])
    require_episodes(datasets, "data:")
    require_one_scenario(datasets, "data:")
    for dataset in datasets:
        if dataset.manifest.action_convention != ACTION_CONVENTION:
            raise UserError(f"{dataset.path}: actions follow {dataset.manifest.action_convention!r}, but the "
                            f"policies learn {ACTION_CONVENTION!r}; re-collect it with this version")
        dataset.verify_files()  # training reads arrays without their checksum
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
    making, even when a Ctrl-C arrives while it is being stopped (`navigator.threads.join_through_interrupts`)."""
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

    finished = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, which raises it)
            put((_DONE, error))
        finally:
            finished.set()

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
        join_through_interrupts(worker, finished)  # it may be inside OpenCV (navigator.threads)


def _window_generator(config: TrainConfig, epoch: int, place: int) -> torch.Generator:
    """The augmentation generator of the window at `place` (0, 1, ...) in the epoch's order of training windows."""
    seed = np.random.SeedSequence([config.seed, epoch, place]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(seed))


def _augmented(loader: WindowLoader, config: TrainConfig, epoch: int, extras: TrainingExtras,
               group: distributed.Group | None = None) -> Iterator[tuple[Batch, torch.Tensor]]:
    """The epoch's shuffled training batches (under torchrun, this process's rows of each: `distributed.rows`),
    each with its augmented images. Every window draws from its own generator, seeded by its place in the epoch, so
    that it is augmented alike however the batches are split between processes, and a resumed run augments its
    epochs as an uninterrupted one. An empty share's all-padding stand-in is not augmented."""
    place = 0
    for batch in extras.batches(loader, config, epoch):
        taken = distributed.rows(group, len(batch))
        mine = distributed.share(batch, taken)
        images = [augment(torch.from_numpy(mine.images[row:row + 1]), config.augment,
                          _window_generator(config, epoch, place + taken.start + row)) for row in range(len(taken))]
        yield mine, torch.cat(images) if images else torch.from_numpy(mine.images).to(torch.float32)
        place += len(batch)


def _tensors(device: torch.device, *arrays: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The batch's arrays as tensors on `device` (on the CPU: the arrays' own memory, no copy)."""
    return tuple((torch.from_numpy(a) if isinstance(a, np.ndarray) else a).to(device, non_blocking=True)
                 for a in arrays)


def evaluate(policy: Policy, loader: WindowLoader, batch_size: int, group: distributed.Group | None = None) -> float:
    """Mean masked MSE over the validation windows (over the training windows when there are none); under torchrun
    each process evaluates its rows of every batch and the group adds up the sums."""
    split = "val" if loader.windows("val") else "train"
    device = policy.state_mean.device
    policy.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in prefetched(loader.batches(split, batch_size, shuffle=False)):
            taken = distributed.rows(group, len(batch))
            if not taken:
                continue
            batch = distributed.share(batch, taken)
            images, state, dt, action, mask = _tensors(device, batch.images, batch.state, batch.dt, batch.action,
                                                       batch.mask)
            actions, _ = policy(images, state, dt)
            total += float(_masked_mse(actions, action, mask)) * int(mask.sum())
            count += int(mask.sum())
    if group is not None:
        total, count = group.all_sum([total, count])
    return total / max(1, count)


def train(config: TrainConfig, out: Path, stage: Stage | None = None, *, resume: bool = False,
          hooks: TrainHooks | None = None, initial: Policy | None = None,
          extras: TrainingExtras | None = None) -> Policy:
    """Train `stage` of `config` (by default its first training), writing `out`/last.pt, best.pt and TensorBoard
    logs under `out`.

    `initial`: continue from these weights (DAgger rounds) instead of a fresh policy. `resume` is strict both ways:
    True continues the stage from `out`/last.pt and refuses when that holds no state of the stage; False starts the
    stage afresh and refuses to overwrite a state of it (a state of an earlier stage is what a DAgger round follows,
    and is replaced). Whether the settings match the run's is the caller's to check (`navigator.training.pipeline`
    compares them with the run's record). `extras`: what this training changes in the plain recipe (TrainingExtras).

    The cosine learning-rate schedule spans the stage's epochs: a run extended to more epochs continues on the
    cosine of its new length from the epoch it had reached.
    """
    from torch.utils.tensorboard import SummaryWriter

    stage = stage or first_stage(config)
    hooks = hooks or TrainHooks()
    extras = extras or TrainingExtras()
    group = distributed.current()
    leads = group is None or group.leader  # the one process that reads and writes the run folder
    epochs = stage.epochs
    device = training_device(config.device, group)
    # Threads that share cores only wait for each other (run_recipe says so once when the recipe asks for more).
    torch.set_num_threads(min(config.threads, usable_cpus()))
    torch.manual_seed(config.seed)
    state_path, best_path = out / "last.pt", out / "best.pt"
    start_epoch, best_val, stale, history = 0, math.inf, 0, []
    state = read_training_state(state_path) if leads and state_path.exists() else None
    if leads and resume and (state is None or state.get("stage") != stage.name):
        raise UserError(f"{out} holds no {stage.name} to resume ({state_path} "
                        f"{'is missing' if state is None else 'holds ' + str(state.get('stage'))}); start it afresh")
    if leads and not resume and state is not None and state.get("stage") == stage.name:
        raise UserError(f"{out} already holds a {stage.name} (its state is {state_path}); resume it, or choose "
                        f"another --out")
    if leads:
        out.mkdir(parents=True, exist_ok=True)
    loader = make_loader(config, stage.data)
    if leads and not loader.windows("val"):
        hooks.warning(f"the data holds {counted(len(loader.episodes), 'episode')}, too few to hold one out for "
                      f"validation: "
                      f"the validation loss is measured on the training windows, so it cannot show overfitting and "
                      f"best.pt is the epoch that fit them best; collect at least 2 episodes")
    scenario = data_scenario(loader)
    policy = initial if initial is not None else extras.policy(config, loader, scenario["camera"])
    state, policy = distributed.start_from_leader(group, state, policy)
    check_fits(policy, loader, "the model")
    policy.to(device)
    optimizer = torch.optim.AdamW(extras.parameters(policy), lr=config.lr, weight_decay=config.weight_decay)
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
    model = distributed.parallel(group, policy)
    tensorboard = SummaryWriter(str(out / "tensorboard")) if leads else None
    commit = git_commit()
    per_epoch = math.ceil(len(loader.windows("train")) / config.batch_size)  # the progress bar's total
    for epoch in range(start_epoch, epochs):
        if stale >= config.patience:
            break
        policy.train()
        losses, frames, started = [], 0, time.perf_counter()
        for index, (batch, images) in enumerate(prefetched(_augmented(loader, config, epoch, extras, group))):
            images, state, dt, action, mask = _tensors(device, images, batch.state, batch.dt, batch.action,
                                                       batch.mask)
            actions, _ = model(images, state, dt)
            total, steps = _masked_sums(actions, action, mask)
            imitation, mean, batch_frames = distributed.mean_loss(group, total, steps, actions.shape[-1])
            loss = extras.loss(policy, imitation)
            if group is None:
                value = float(loss.detach())
            else:  # the loss of the whole global batch, the same on every process (so all stop alike if not finite)
                with torch.no_grad():
                    value = float(extras.loss(policy, torch.tensor(mean)))
            if not math.isfinite(value):
                raise _diverged(f"the training loss became {value} at epoch {epoch + 1}, batch {index + 1}",
                                state_path, config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(value)
            frames += batch_frames
            hooks.batch(index, per_epoch, frames, losses[-1])
        schedule.step()
        fps = frames / max(1e-9, time.perf_counter() - started)
        val_loss = evaluate(policy, loader, config.batch_size, group)
        if not math.isfinite(val_loss):  # the weights diverged in the epoch's last steps: nothing of it is kept
            raise _diverged(f"the validation loss became {val_loss} after epoch {epoch + 1}", state_path, config)
        improved = val_loss < best_val
        if improved:
            best_val, stale = val_loss, 0
        else:
            stale += 1
        if improved and leads:
            atomic_write_bytes(best_path, checkpoint_bytes(extras.saved(policy), extras.metadata({
                "epoch": epoch + 1, "val_loss": val_loss, "stage": stage.name, "data": list(stage.data),
                "train_config": to_dict(config), "commit": commit, **scenario,
                "parameter_counts": policy.parameter_counts(),
                "normalisation": loader.stats().to_dict(),
                "training_seeds": [{**seeds, "source": str(dataset.path)} for dataset in loader.datasets
                                   for seeds in dataset.manifest.seed_ranges()],
            })))
        report = EpochReport(epoch + 1, float(np.mean(losses)) if losses else math.nan, val_loss, fps,
                             schedule.get_last_lr()[0], improved,
                             config.patience if stale >= config.patience and epoch + 1 < epochs else None)
        history.append(report.record())
        if leads:
            _atomic_torch_save({
                "format": RESUME_FORMAT, "stage": stage.name, "policy": _on_cpu(policy.state_dict()),
                "optimizer": _on_cpu(optimizer.state_dict()), "schedule": schedule.state_dict(), "epoch": epoch + 1,
                "best_val": best_val, "stale": stale, "history": json.dumps(history),
            }, state_path)
            for name in ("train_loss", "val_loss", "frames_per_second", "lr"):
                tensorboard.add_scalar(f"{stage.name}/{name}", getattr(report, name), epoch + 1)
            tensorboard.flush()
        hooks.epoch(report)
    if leads:
        tensorboard.close()
        atomic_write_bytes(out / "history.json", (json.dumps(history, indent=1) + "\n").encode("utf-8"))
    return policy.cpu()  # flown (DAgger roll-outs) and saved on the CPU, whatever device it trained on
