"""Pools of spawn worker processes that leave Ctrl-C (and SIGTERM) to the parent (shared by `collect` and `eval`).

Ctrl-C sends SIGINT to every process of the terminal's process group; only the parent acts on it (leaving the pool
stops the workers), so workers ignore it instead of each printing a traceback (`Process SpawnPoolWorker-1:` ...).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.pool import TERMINATE, Pool
from typing import Any


# The most worker processes a command starts (0 asks for one per CPU core): more would only contend for the cores.
MAX_WORKERS = 256


def usable_cpus() -> int:
    """The CPU cores this process may run on: its affinity mask where the system has one (Linux: what a container's
    cpuset or taskset allows, which os.cpu_count(), the machine's count, ignores), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_workers(workers: int) -> int:
    """Worker processes on this machine for a `--workers` value: itself, or for 0, one per usable CPU core."""
    return workers or usable_cpus()


def check_workers(workers: int, flag: str = "--workers") -> int:
    """`workers` when it is 0 (one per CPU core) to MAX_WORKERS; UserError naming `flag` otherwise."""
    from navigator.errors import UserError

    if not 0 <= workers <= MAX_WORKERS:
        raise UserError(f"{flag} must be in [0, {MAX_WORKERS}] (0: one per CPU core), got {workers}")
    return workers


def ignore_interrupts(setup: Callable[[], None] | None = None) -> None:
    """Worker initializer: ignore SIGINT, take SIGTERM again (the pool stops its workers with it), then run the
    pool's own `setup` (if any)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    if setup is not None:
        setup()


class WorkerLost(Exception):
    """A worker process ended while its pool ran (killed, or by the system when memory ran out): the job it held is
    lost, and with it the results still to come. The command says so and how to continue (the jobs finished are
    kept), and exits 1."""


# How often a pool's workers are counted while no result arrives: a lost one is said within this time.
LIVENESS_POLL_S = 1.0


def process_runs(pid: int) -> bool:
    """Whether a process with id `pid` runs on this computer (another user's included)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none with that id; a number no process id can be
        return False
    except PermissionError:  # another user's
        return True
    return True


def child_pids() -> set[int]:
    """The process ids of this process's running child processes (multiprocessing's: pool workers among them)."""
    return {process.pid for process in multiprocessing.active_children()}


class WorkerError(Exception):
    """An error raised in a worker process that could not be sent to the parent as it was (it does not pickle):
    its type and message, as text."""


class _Sent:
    """`function` run in a worker, its errors made sure to reach the parent. The pool pickles a job's error back;
    one that fails to unpickle there kills the pool's result thread, and the command then waits forever."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, job: Any) -> Any:
        try:
            return self.function(job)
        except Exception as error:
            try:
                pickle.loads(pickle.dumps(error))
            except Exception:
                raise WorkerError(f"{type(error).__name__}: {error}") from None
            raise


def results_while_workers_live(pool: Pool, function: Callable[[Any], Any], jobs: Iterable[Any],
                               others: set[int]) -> Iterator[Any]:
    """`pool.imap_unordered(function, jobs)`'s results as they come; WorkerLost when one of the pool's worker
    processes ends meanwhile. A Pool replaces a worker that dies but never runs its job again, so waiting on would
    never end (its documented limit). The pool's workers are this process's children but `others` (the
    `child_pids()` from before the pool started)."""
    results = pool.imap_unordered(_Sent(function), jobs)
    workers = child_pids() - others
    while True:
        try:
            yield results.next(timeout=LIVENESS_POLL_S)
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            now = child_pids() - others
            if workers - now:
                _free_after_loss(pool)
                raise WorkerLost("a worker process ended unexpectedly (killed, or stopped by the system when memory "
                                 "ran out); the work it held is lost") from None
            workers = now


def _free_after_loss(pool: Pool) -> None:
    """Make `pool.terminate()` possible after one of its workers was killed. terminate() first takes the lock of the
    pool's task queue, which an idle worker holds while it waits for a job: a worker killed there holds it forever,
    and terminate() (and with it the command) would wait forever. So: no more replacement workers, every worker
    ended, and the lock freed (a process-shared lock may be released by another process). Pool's own attributes,
    as CPython 3.8-3.13 name them: the standard library offers no other way out of this state."""
    pool._worker_handler._state = TERMINATE  # type: ignore[attr-defined]
    for process in pool._pool:  # type: ignore[attr-defined]
        process.kill()
    for process in pool._pool:  # type: ignore[attr-defined]
        process.join(timeout=10)
    lock = pool._inqueue._rlock  # type: ignore[attr-defined]
    lock.acquire(block=False)  # taken now if it was free, else held by a dead worker: released below either way
    lock.release()


def spawn_pool(processes: int, setup: Callable[[], None] | None = None) -> Pool:
    """A spawn pool of `processes` workers that ignore SIGINT; `setup` (a module-level function) runs in each.

    spawn, not fork: PyBullet clients and BLAS threads do not survive a fork cleanly. SIGINT and SIGTERM (which the
    command takes as Ctrl-C) stay blocked while the workers start: they inherit the block, so a stop before their
    initializer runs cannot interrupt their start-up either; the parent gets a stop of that moment as soon as the
    block is lifted.

    multiprocessing's resource tracker, started by the first pool of a process, unblocks both signals once it is
    started (whatever was blocked before): it is started first, so that the workers start with them blocked too. It
    was not, and a Ctrl-C in the first second of a command's first pool reached a worker still starting Python
    (`Fatal Python error: init_import_site` and a KeyboardInterrupt traceback)."""
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return multiprocessing.get_context("spawn").Pool(processes, initializer=ignore_interrupts, initargs=(setup,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
