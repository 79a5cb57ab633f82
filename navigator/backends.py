"""Where roll-outs run: a local pool of spawn processes, or actors on a Ray cluster (`navigator/ray_cluster.py`).

`collect`, `eval` and DAgger's roll-outs hand `run_jobs` a module-level function and its jobs; each backend keeps
`workers` long-lived workers that keep their environments between jobs, and yields the results as jobs finish, in no
particular order. A job's result does not depend on the backend or the number of workers (each episode is
deterministic given its key), so the backend is not part of a recipe: it may change when work is resumed.

Light: imports neither Ray nor the simulator (Ray is imported only when the ray backend runs).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from navigator.config import SettingError
from navigator.workers import child_pids, local_workers, results_while_workers_live, spawn_pool, usable_cpus

J = TypeVar("J")
R = TypeVar("R")

BACKENDS = ("local", "ray")
RAY_EXTRA = "pip install 'liquid-navigator[cluster]'"
_ADDRESS = re.compile(r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class Backend:
    """Where roll-outs run: `kind` "local" (spawn processes on this machine) or "ray" (Ray actors); `address` (ray
    only) is "auto" (the cluster `ray start` started on this machine) or the head's HOST:PORT; None starts a local
    Ray instance for the run and stops it at the end."""

    kind: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        kind = self.kind.strip().lower() if isinstance(self.kind, str) else self.kind
        if kind not in BACKENDS:
            raise SettingError("kind", f"must be one of {', '.join(BACKENDS)}, got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        if self.address is None:
            pass
        elif kind != "ray":
            raise SettingError("address", f"must come with the ray backend (the local backend runs on this "
                                          f"machine): add --backend ray (kind: ray in a config file) or drop the "
                                          f"address, got {self.address!r}")
        elif self.address != "auto":
            match = _ADDRESS.fullmatch(self.address.strip())
            if match is None or not 1 <= int(match["port"]) <= 65535:
                raise SettingError("address", f"must be auto or the Ray head's HOST:PORT (e.g. 10.0.0.1:6379), got "
                                              f"{self.address!r}")
            object.__setattr__(self, "address", self.address.strip())
        if kind == "ray" and importlib.util.find_spec("ray") is None:
            raise SettingError("kind", f"ray needs Ray, which this installation lacks; install it with {RAY_EXTRA}")


LOCAL = Backend()


@dataclass(frozen=True)
class WorkerInfo:
    """One worker: the node it runs on (an IP address; "localhost" for the local backend) and its process id."""

    node: str
    pid: int


@dataclass(frozen=True)
class Cluster:
    """What a run of jobs got: the backend, the nodes and CPUs it may use, its number of workers, and (Ray) each
    worker's node and process."""

    backend: Backend
    nodes: int
    cpus: int
    workers: int
    processes: tuple[WorkerInfo, ...] = ()

    def describe(self) -> str:
        """"Ray cluster at 10.0.0.1:6379: 3 nodes, 48 CPUs, 48 workers" or "2 local worker processes"."""
        if self.backend.kind == "local":
            return f"{self.workers} local worker process{'es' * (self.workers != 1)}"
        where = "local Ray instance" if self.backend.address is None else f"Ray cluster at {self.backend.address}"
        return (f"{where}: {self.nodes} node{'s' * (self.nodes != 1)}, {self.cpus} CPUs, {self.workers} "
                f"worker{'s' * (self.workers != 1)}")


def check_reachable(backend: Backend) -> None:
    """Before any work: a UserError, within seconds, when roll-outs on `backend` could not start because its Ray
    cluster cannot be reached (`navigator.ray_cluster.check_address`); nothing to check for the local backend or a
    local Ray instance, which the run starts itself."""
    if backend.kind == "ray" and backend.address is not None:
        from navigator.ray_cluster import check_address

        check_address(backend.address)


def run_jobs(function: Callable[[J], R], jobs: Iterable[J], workers: int, backend: Backend = LOCAL,
             setup: Callable[[], None] | None = None,
             on_ready: Callable[[Cluster], None] | None = None) -> Iterator[R]:
    """`function(job)` for every job, in `workers` long-lived worker processes (0: one per CPU core, of this machine
    or of the Ray cluster), each running `setup` once first; yields the results as they finish, in no particular
    order. `function` and `setup` must be module-level functions (they are sent by name). `on_ready` gets the
    Cluster once the workers are up.

    On Ray, a worker whose process dies while it runs a job (killed, its node lost) is restarted and the job run
    again (navigator/ray_cluster.py); locally, navigator.workers.WorkerLost is raised (a Pool cannot say which job
    was lost), and what finished is kept for a --resume. An exception a job raises is raised here. Leaving the
    iterator early stops the workers."""
    jobs = list(jobs)
    if not jobs:
        return
    if backend.kind == "ray":
        from navigator.ray_cluster import run_on_ray

        yield from run_on_ray(function, jobs, workers, backend.address, setup, on_ready)
        return
    count = min(local_workers(workers), len(jobs))
    others = child_pids()
    with spawn_pool(count, setup) as pool:  # its workers leave Ctrl-C to this process
        if on_ready is not None:
            processes = tuple(WorkerInfo("localhost", pid) for pid in sorted(child_pids() - others))
            on_ready(Cluster(backend, 1, usable_cpus(), count, processes))
        yield from results_while_workers_live(pool, function, jobs, others)

