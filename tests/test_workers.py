"""Errors raised in worker processes reach the parent: ours pickle whole, and one that cannot is sent as text
rather than leaving the command waiting forever (multiprocessing's result thread dies on an error it cannot
unpickle; the commands then hung at 0% CPU)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from navigator.config import ConfigError, SettingError
from navigator.workers import WorkerError, child_pids, results_while_workers_live, spawn_pool
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
