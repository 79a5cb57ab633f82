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
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from navigator.dataset import Batch
from navigator.errors import UserError
from policies.config import PolicyConfig
from policies.policy import Policy, build_policy

# How long a collective (an all-reduce of a step, the start of the group) waits for a process: far longer than any
# legitimate gap between two (rank 0 saving a checkpoint), short enough that a stuck process ends the run.
TIMEOUT = timedelta(minutes=10)
# How long followers wait for rank 0's next stage: it may first fly a DAgger round's roll-outs, or collect the data.
LEADER_WAIT = timedelta(hours=24)
# What torchrun (or a manual env:// launch) sets for each process; the first four are what joining needs.
REQUIRED = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_SET = (*REQUIRED, "LOCAL_RANK", "LOCAL_WORLD_SIZE")
# Set by `launch` for the processes it starts: its folder, where it marks (_INTERRUPTED) a Ctrl-C it passed on.
LAUNCHER_FOLDER = "NAVIGATOR_LAUNCHER_FOLDER"
_INTERRUPTED = "interrupted"
_LAUNCH_ADVICE = ("start the training with torchrun (torchrun --nproc-per-node N -m navigator train ...) or with "
                  "navigator train ... --nproc N, or unset these variables to train in one process")


class GroupFailed(UserError):
    """Another process of the group stopped, or could not be reached, while this one waited for it."""


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask: what a container or taskset allows)."""
    return len(os.sched_getaffinity(0))


def check_process_count(count: int, what: str) -> None:
    """Refuse `count` training processes on this machine when it exceeds its cores: processes sharing a core train
    slower than fewer processes would, never faster. `what` names the setting in the message."""
    if count < 1:
        raise UserError(f"{what} must be at least 1, got {count}")
    cores = usable_cpus()
    if count > cores:
        raise UserError(f"{what} is {count}, more than the {cores} CPU core(s) this machine gives the training: "
                        f"processes sharing cores train slower, not faster; use at most {cores}")


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun group, as its environment says."""

    rank: int
    world: int
    local_world: int | None  # processes on this machine (torchrun sets it; a manual launch may not)

    @property
    def follower(self) -> bool:
        """Whether this is a process other than rank 0: a refusal that every process makes alike is printed by
        rank 0 alone, the others exiting with its status quietly."""
        return self.rank > 0


def _integer(name: str, value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low:
        raise UserError(f"the torchrun environment is invalid: {name}={value!r} is not a whole number of at least "
                        f"{low}; {_LAUNCH_ADVICE}")
    return number


def launch_environment(environ: Mapping[str, str] = os.environ) -> Launch | None:
    """This process's place in a group from `environ`, or None when no launcher set it up (a plain run). A half-set
    environment (RANK without MASTER_PORT, ...) or values out of range are a UserError naming them."""
    given = [name for name in LAUNCHER_SET if environ.get(name)]
    if not given:
        return None
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise UserError(f"the torchrun environment is half set: {', '.join(given)} set but {', '.join(missing)} "
                        f"not; {_LAUNCH_ADVICE}")
    world = _integer("WORLD_SIZE", environ["WORLD_SIZE"], 1)
    rank = _integer("RANK", environ["RANK"], 0)
    if rank >= world:
        raise UserError(f"the torchrun environment is invalid: RANK={rank} but WORLD_SIZE={world} (ranks are 0 to "
                        f"{world - 1}); {_LAUNCH_ADVICE}")
    port = _integer("MASTER_PORT", environ["MASTER_PORT"], 1)
    if port > 65535:
        raise UserError(f"the torchrun environment is invalid: MASTER_PORT={port} is not a port (1 to 65535); "
                        f"{_LAUNCH_ADVICE}")
    local = environ.get("LOCAL_WORLD_SIZE")
    return Launch(rank, world, _integer("LOCAL_WORLD_SIZE", local, 1) if local else None)


def check_local_processes(launch: Launch | None) -> None:
    """Refuse a group (`launch`) with more processes on this machine than it has cores: a check that every
    process of the group makes alike before joining it (rank 0 alone need report it: `Launch.follower`)."""
    if launch is not None and launch.world > 1 and launch.local_world is not None:
        check_process_count(launch.local_world, "torchrun's --nproc-per-node")


def interrupted_by_launcher(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `launch` (navigator train --nproc) passed a Ctrl-C on to this process. It then says how to continue,
    once, and this process ends quietly with status 0, so that torchrun does not report it as a failure."""
    folder = environ.get(LAUNCHER_FOLDER)
    return bool(folder) and (Path(folder) / _INTERRUPTED).exists()


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
    if launch is None or launch.world == 1:
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
    return torch.nn.parallel.DistributedDataParallel(model)


def launch(processes: int, arguments: Sequence[str], threads: int) -> None:
    """Run `navigator ARGUMENTS` as `processes` processes of one torchrun group on this machine, each with `threads`
    intra-op threads, until all of them end; GroupFailed when one failed (which stops the others). The command is an
    argument list, never a shell string.

    torchrun keeps its logs and error files in a temporary folder made here and removed at the end (by default it
    leaves a /tmp/torchelastic_* folder per run). It runs in a session of its own, as it starts its processes, so
    that a Ctrl-C in the terminal reaches this process alone, which passes it on to the training processes
    (`_interrupt`): they stop as one process does on Ctrl-C (rank 0 keeping what it saved) but end quietly with
    status 0, so that torchrun ends without a failure report, and this process says how to continue, once."""
    with tempfile.TemporaryDirectory(prefix="navigator-torchrun-") as folder:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                   "--nproc-per-node", str(processes), "--log-dir", str(Path(folder) / "logs"), "-m", "navigator",
                   *arguments]
        # torchrun sets OMP_NUM_THREADS=1 (with a warning) unless it is set; the training sets its threads itself.
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads), LAUNCHER_FOLDER: folder}
        with subprocess.Popen(command, env=environment, start_new_session=True) as process:
            try:
                status = process.wait()
            except KeyboardInterrupt:
                _interrupt(process, Path(folder))
                raise
    if status != 0:
        raise GroupFailed(f"training with {processes} processes failed (torchrun's exit status {status}): "
                          f"torchrun's report above names the process that failed first, and its own message, if it "
                          f"left one, says why; what the finished epochs saved is kept for --resume")


def _interrupt(torchrun: subprocess.Popen, folder: Path) -> None:
    """Pass a Ctrl-C on to the training processes, torchrun's children, marking it in the launcher's `folder`
    (`interrupted_by_launcher`), and wait for torchrun to end. A second Ctrl-C while waiting stops torchrun itself
    (which stops the processes)."""
    (folder / _INTERRUPTED).touch()
    for child in _children(torchrun.pid):
        try:
            os.kill(child, signal.SIGINT)
        except ProcessLookupError:  # it ended meanwhile
            pass
    try:
        torchrun.wait()
    except KeyboardInterrupt:
        torchrun.send_signal(signal.SIGINT)
        torchrun.wait()


def _children(pid: int) -> list[int]:
    """The processes `pid` started that still run (Linux's /proc/PID/task/*/children)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the task ended meanwhile
            continue
    return children
