"""Errors raised in worker processes reach the parent: ours pickle whole, and one that cannot is sent as text
rather than leaving the command waiting forever (multiprocessing's result thread dies on an error it cannot
unpickle; the commands then hung at 0% CPU)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from navigator.config import ConfigError, SettingError
from navigator.workers import WorkerError, child_pids, process_runs, results_while_workers_live, spawn_pool
from policies.checkpoint import CheckpointError
from sim_envs.errors import NoDisplayError, UnknownNameError

# Our errors whose constructors take more than the message: what a worker of eval or collect may raise.
ERRORS = [
    SettingError("max_seconds", "must be in (0, 3600], got 5000.0"),
    SettingError("seed", "with {episodes} 2 the last seed ...", ("seed", "episodes")),
    ConfigError("episodes in f.yaml must be ...", "episodes", "must be ...", ("seed",)),
    UnknownNameError("preset", "spring", ("summer", "winter"), spec="winter+spring"),
    NoDisplayError("no X display answers", "run under xvfb-run"),
    CheckpointError(Path("runs/x/best.pt"), "truncated", "train it again", verdict="is damaged"),
]


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_our_errors_pickle_whole(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert vars(copy) == vars(error)


class NeedsTwo(Exception):
    """Pickles by its message alone, so unpickling calls NeedsTwo(message) and fails: as SettingError did."""

    def __init__(self, first: object, second: object) -> None:
        super().__init__(f"{first} and {second}")


def _fails(job: int) -> int:
    raise NeedsTwo(job, "more")


def _fails_with_ours(job: int) -> int:
    raise SettingError("max_seconds", f"must be in (0, 3600], got {job}")


def test_an_error_a_worker_cannot_send_back_ends_the_run_with_its_message():
    with spawn_pool(1) as pool:
        with pytest.raises(WorkerError, match="^NeedsTwo: 7 and more$"):
            list(results_while_workers_live(pool, _fails, [7], child_pids()))


def test_our_error_raised_in_a_worker_reaches_the_parent_as_raised():
    with spawn_pool(1) as pool:
        with pytest.raises(SettingError) as raised:
            list(results_while_workers_live(pool, _fails_with_ours, [5000.0], child_pids()))
    assert raised.value.name == "max_seconds" and str(raised.value) == "max_seconds must be in (0, 3600], got 5000.0"



# Run in a fresh interpreter: the pool must be the process's first (it starts multiprocessing's resource tracker).
FIRST_POOL = """
import json, signal, sys
from pathlib import Path
from navigator.workers import child_pids, spawn_pool

def masks(pid):
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)

others = child_pids()
with spawn_pool(2) as pool:
    # Read at once, long before the workers' interpreters have started.
    workers = {pid: masks(pid) for pid in child_pids() - others}
    pool.close()
print(json.dumps({"workers": workers, "parent": masks("self")}))
"""


def _sleeps(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@pytest.mark.parametrize("victim", [0, 1])
def test_a_worker_killed_while_it_waits_for_a_job_ends_the_run_instead_of_hanging_it(victim):
    """One worker busy, the other idle: an idle worker holds the pool's task-queue lock while it waits, and killed
    there it used to leave Pool.terminate() (on the way out of `with spawn_pool`) waiting for that lock forever.
    Whichever is killed, the loss is said and the pool is left within seconds."""
    import os
    import signal
    import threading
    import time

    from navigator.workers import WorkerLost

    outcome: list[str] = []

    def run() -> None:
        others = child_pids()
        with spawn_pool(2) as pool:
            workers = sorted(child_pids() - others)
            killer = threading.Timer(2.0, os.kill, (workers[victim], signal.SIGKILL))
            killer.start()
            try:
                list(results_while_workers_live(pool, _sleeps, [6.0], others))
            except WorkerLost:
                outcome.append("lost")
            finally:
                killer.cancel()
        outcome.append("left")

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the pool hangs after a worker was killed"
    assert outcome == ["lost", "left"] and time.monotonic() - start < 30


def test_workers_of_a_first_pool_are_immune_to_ctrl_c_from_their_first_instant():
    """A Ctrl-C reaching the process group in a worker's first second (Python starting, before its initializer
    ignores SIGINT) printed `Fatal Python error: init_import_site` and a traceback: the resource tracker that a
    process's first pool starts had unblocked SIGINT and SIGTERM before the workers were spawned."""
    import json
    import signal
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FIRST_POOL], capture_output=True, text=True, timeout=120, check=True)
    masks = json.loads(done.stdout)
    interrupt, terminate = 1 << (signal.SIGINT - 1), 1 << (signal.SIGTERM - 1)
    assert len(masks["workers"]) == 2
    for blocked, ignored in masks["workers"].values():
        assert (blocked | ignored) & interrupt and blocked & terminate
    blocked, _ = masks["parent"]
    assert not blocked & (interrupt | terminate)  # the parent takes both again once its pool is started


def test_one_worker_per_core_counts_the_cores_this_process_may_use():
    """`--workers 0` starts one worker per core this process may run on (a container's cpuset, taskset), not one per
    core of the machine: on a 64-core host giving a container 2, 64 workers would share 2 cores and 64 memories."""
    import os
    import subprocess
    import sys

    script = ("from navigator.backends import run_jobs\n"
              "got = []\n"
              "results = sorted(run_jobs(abs, [-1, -2, -3], 0, on_ready=got.append))\n"
              "print(results, got[0].workers, got[0].cpus, len(got[0].processes))\n")
    one_core = {min(os.sched_getaffinity(0))}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, one_core)).stdout
    assert out.split() == ["[1,", "2,", "3]", "1", "1", "1"]


def test_process_runs_tells_a_running_process_from_an_ended_one():
    import os
    import subprocess
    import sys

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_runs(os.getpid()) and process_runs(1)  # this one, and init (another user's: root's or not)
    assert not process_runs(int(ended.stdout)) and not process_runs(2**70)
