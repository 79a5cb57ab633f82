"""Pools of spawn worker processes that leave Ctrl-C (and SIGTERM) to the parent (shared by `collect` and `eval`).

Ctrl-C sends SIGINT to every process of the terminal's process group; only the parent acts on it (leaving the pool
stops the workers), so workers ignore it instead of each printing a traceback (`Process SpawnPoolWorker-1:` ...).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.pool import Pool


# The most worker processes a command starts (0 asks for one per CPU core): more would only contend for the cores.
MAX_WORKERS = 256


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


def spawn_pool(processes: int, setup: Callable[[], None] | None = None) -> Pool:
    """A spawn pool of `processes` workers that ignore SIGINT; `setup` (a module-level function) runs in each.

    spawn, not fork: PyBullet clients and BLAS threads do not survive a fork cleanly. SIGINT and SIGTERM (which the
    command takes as Ctrl-C) stay blocked while the workers start: they inherit the block, so a stop before their
    initializer runs cannot interrupt their start-up either; the parent gets a stop of that moment as soon as the
    block is lifted."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return multiprocessing.get_context("spawn").Pool(processes, initializer=ignore_interrupts, initargs=(setup,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
