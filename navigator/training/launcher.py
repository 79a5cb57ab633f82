"""Starting and joining a torchrun group, without torch: where this process stands in a group (its environment),
how many processes a machine should run, and `navigator train --nproc N` starting torchrun and passing a Ctrl-C on.

Kept apart from `navigator.training.distributed` (which trains in the group, and imports torch) so that a command
checks these, and its settings, in a fraction of a second before torch is imported."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from navigator.errors import UserError, counted
from navigator.workers import usable_cpus

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


def check_process_count(count: int, what: str) -> None:
    """Refuse `count` training processes on this machine when it exceeds its cores: processes sharing a core train
    slower than fewer processes would, never faster. `what` names the setting in the message."""
    if count < 1:
        raise UserError(f"{what} must be at least 1, got {count}")
    cores = usable_cpus()
    if count > cores:
        raise UserError(f"{what} is {count}, more than the {counted(cores, 'CPU core')} this machine gives the "
                        f"training: "
                        f"processes sharing cores train slower, not faster; use at most {cores}")


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun group, as its environment says."""

    rank: int
    world: int
    local_world: int | None  # processes on this machine (torchrun sets it; a manual launch may not)

    @property
    def joins(self) -> bool:
        """Whether this process has a group to join: a group of one needs none (it trains as a plain run)."""
        return self.world > 1

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
