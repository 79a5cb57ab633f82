"""Data-parallel training under torchrun: PyTorch's DistributedDataParallel over the gloo backend, on CPUs.

`torchrun --nproc-per-node N -m navigator train ...` (or `navigator train ... --nproc N`, which starts that) runs N
copies of the command. They form one process group (`joined`); rank 0, the leader, does everything the command does
alone (checks, run.json, progress, checkpoints, logs, the progress bar, DAgger roll-outs) and tells the others,
the followers, which stage to train and from which state (`send` / `receive`, through torchrun's key-value
store); followers write nothing.

What makes N processes compute what one does with the same global batch (within float rounding):
- every process reads the same global batches in the same order (same seed) and trains its contiguous rows of each
  (`rows`); a process whose share of a short last batch is empty trains an all-padding stand-in (`share`), which
  adds nothing to the loss and zero to the gradients but still joins the step's all-reduce, as DDP requires;
- the masked MSE is normalised by the valid steps of the whole global batch, not the process's own: each process
  back-propagates its sum scaled by N / (global count) and DDP averages the gradients over the N processes
  (`mean_loss`);
- augmentation draws per window from a generator seeded by the window's place in the epoch, not its row in a
  process's share (navigator/training/loop.py);
- DDP starts every process from rank 0's weights and buffers, and clipping and AdamW then see identical gradients.

A crashed process makes torchrun stop the others; a process stuck without crashing is caught by the collectives'
timeout (`TIMEOUT`), and the error that follows says so (`GroupFailed`).
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from navigator.dataset import Batch
from navigator.training.launcher import GroupFailed, check_local_processes, interrupted_by_launcher, launch_environment
from policies.config import PolicyConfig
from policies.policy import Policy, build_policy

# How long a collective (an all-reduce of a step, the start of the group) waits for a process: far longer than any
# legitimate gap between two (rank 0 saving a checkpoint), short enough that a stuck process ends the run.
TIMEOUT = timedelta(minutes=10)
# How long followers wait for rank 0's next stage: it may first fly a DAgger round's roll-outs, or collect the data.
LEADER_WAIT = timedelta(hours=24)


@dataclass
class Group:
    """The joined process group: this process's rank, the group's size and the store that carries rank 0's
    messages. Messages are numbered in the order they are sent; every follower receives them in that order."""

    rank: int
    world: int
    store: dist.Store
    _messages: int = field(default=0, repr=False)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def send(self, message: Any) -> None:
        """Rank 0: hand `message` (tensors and plain data, as torch.load(weights_only=True) reads) to every
        follower."""
        buffer = io.BytesIO()
        torch.save(message, buffer)
        self.store.set(self._next_key(), buffer.getvalue())

    def receive(self, wait: timedelta = TIMEOUT) -> Any:
        """A follower: rank 0's next message, waiting for it up to `wait`."""
        key = self._next_key()
        try:
            self.store.wait([key], wait)
            data = self.store.get(key)
        except RuntimeError as error:  # torch's DistStoreError on a timeout, others when the store is gone
            raise GroupFailed(f"rank {self.rank}: rank 0 sent nothing for {wait} or could not be reached "
                              f"({_first_line(error)}); see rank 0's message") from None
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def _next_key(self) -> str:
        self._messages += 1
        return f"message-{self._messages}"

    def all_sum(self, values: Sequence[float | torch.Tensor]) -> list[float]:
        """The sums of `values` over the group (in float64: the same on every process)."""
        total = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(total)
        return total.tolist()


_current: Group | None = None


def current() -> Group | None:
    """The group this process has joined (`joined`), or None in a plain run."""
    return _current


@contextmanager
def joined(environ: Mapping[str, str] = os.environ) -> Iterator[Group | None]:
    """Join the group torchrun started this process in (None: a plain run, or a group of one, which needs none), and
    leave it at the end. Errors of a collective (a process that stopped, an unreachable one) become GroupFailed."""
    global _current
    launch = launch_environment(environ)
    check_local_processes(launch)
    if launch is None or not launch.joins:
        yield None
        return
    try:
        store, rank, world = next(dist.rendezvous("env://", launch.rank, launch.world, timeout=TIMEOUT))
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    except (dist.DistError, RuntimeError, ValueError) as error:
        raise GroupFailed(f"rank {launch.rank} could not join the torchrun group at "
                          f"{environ['MASTER_ADDR']}:{environ['MASTER_PORT']} ({_first_line(error)}); check that "
                          f"every node can reach it and that all {launch.world} processes started") from None
    # torchrun's store outlives a restart of the group (--max-restarts): each attempt numbers its messages afresh.
    attempt = environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    _current = Group(rank, world, dist.PrefixStore(f"navigator-training/attempt-{attempt}", store))
    # torchrun stops the others with SIGTERM when one process fails: taken as Ctrl-C, so that rank 0 says how to
    # continue, and a new run that saved no epoch leaves no run folder behind (navigator/training/pipeline.py).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield _current
    except RuntimeError as error:
        if not _group_error(error):
            raise
        if interrupted_by_launcher(environ):  # the Ctrl-C stopped another process first
            raise KeyboardInterrupt from None
        raise GroupFailed(f"rank {rank}: another training process stopped or could not be reached "
                          f"({_first_line(error)}); its own message says why. Rerun with --resume to continue from "
                          f"the last saved epoch") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        _current = None
        dist.destroy_process_group()


def _group_error(error: RuntimeError) -> bool:
    """Whether `error` is the process group's: torch's distributed errors, and the plain RuntimeErrors gloo raises
    from a collective (an all-reduce in a step, in DDP's backward) when a peer's connection closes, which name gloo's
    transport in their message."""
    return isinstance(error, dist.DistError) or "gloo" in str(error)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def world_size() -> int:
    """How many processes train together: the joined group's size, 1 in a plain run."""
    return 1 if _current is None else _current.world


def rows(group: Group | None, size: int) -> range:
    """This process's rows of a global batch of `size` windows: contiguous, sizes differing by at most one, the
    lower ranks taking the larger shares (as numpy.array_split); all of them in a plain run."""
    if group is None:
        return range(size)
    base, extra = divmod(size, group.world)
    start = group.rank * base + min(group.rank, extra)
    return range(start, start + base + (group.rank < extra))


def share(batch: Batch, taken: range) -> Batch:
    """The `taken` rows of `batch`; for an empty share, one all-padding window (zeros, mask all False) shaped like
    the batch's, so that the process still takes part in the step."""
    arrays = (batch.images, batch.state, batch.action, batch.dt, batch.mask)
    if len(taken):
        return Batch(*(array[taken.start:taken.stop] for array in arrays))
    return Batch(*(np.zeros((1, *array.shape[1:]), array.dtype) for array in arrays))


def mean_loss(group: Group | None, total: torch.Tensor, steps: torch.Tensor,
              components: int) -> tuple[torch.Tensor, float, int]:
    """The masked mean over the whole global batch, from this process's sum of squared errors `total` over its
    `steps` valid steps of `components` each.

    Returns (what this process back-propagates, the global mean's value, the global batch's valid steps). In a group
    the first is `total` * world / (global steps * components): DDP's average of the processes' gradients is then the
    gradient of the global mean, however the valid steps fall between the processes."""
    if group is None:
        loss = total / (steps * components).clamp_min(1.0)
        return loss, float(loss.detach()), int(steps)
    summed_total, summed_steps = group.all_sum([total.detach(), steps])
    terms = max(1.0, summed_steps * components)
    return total * (group.world / terms), summed_total / terms, int(summed_steps)


def start_from_leader(group: Group | None, state: dict[str, Any] | None,
                      policy: Policy) -> tuple[dict[str, Any] | None, Policy]:
    """Where a stage starts, the same on every process: rank 0's resume state (None: a fresh start) and a policy of
    rank 0's architecture, whose weights and buffers `parallel` copies to every process. Rank 0 read the state and
    built its policy (perhaps from a checkpoint); a follower's own are replaced by them."""
    if group is None:
        return state, policy
    if group.leader:
        group.send({"state": state, "policy": policy.config.to_dict()})
        return state, policy
    started = group.receive()
    if started["policy"] != policy.config.to_dict():
        policy = build_policy(PolicyConfig.from_dict(started["policy"]))
    return started["state"], policy


def parallel(group: Group | None, model: torch.nn.Module) -> torch.nn.Module:
    """`model` to call in training: wrapped in DistributedDataParallel in a group (which starts every process from
    rank 0's weights and buffers, and averages gradients in backward), itself in a plain run."""
    if group is None:
        return model
    # The policy's buffers (normalisation constants, wiring masks, the CfC pipeline's gather index) never change
    # while it trains: DDP's start gives every process rank 0's (init sync, which this flag leaves on), and
    # broadcasting them again before every step would only cost time.
    return torch.nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)
