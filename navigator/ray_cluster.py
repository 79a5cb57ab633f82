"""The ray backend of `navigator.backends.run_jobs`: jobs run on Ray actors, one per worker, each keeping its
environments between jobs as a local worker process does.

Connecting: `address` "auto" or HOST:PORT joins a running cluster (`ray start --head`); a HOST:PORT that does not
accept connections within PROBE_SECONDS, or whose listener does not answer an HTTP/2 greeting as a head's gRPC service
does (an HTTP server, say), is a UserError before Ray is asked (Ray would retry it for minutes). A gRPC server that is
no Ray head fails after CONNECT_RETRIES of Ray's attempts, with Ray's retry warnings (written by its
C++ client straight to file descriptor 2) folded into the one-line error. Token
authentication (Ray's default for new clusters since 2.60): this process authenticates with the token Ray finds
(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); a refusal is a UserError that says so. Without an
address a local Ray instance is started for the run: listening on loopback only (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
makes Ray use 127.0.0.1 as the node address; Ray resolves an explicit `_node_ip_address="127.0.0.1"` to the routable
address and its gRPC servers would listen on every interface), with token authentication by a random token held in
this process's environment (nothing written to ~/.ray), a bounded object store, its logs in a temporary folder
removed at the end, and no dashboard.

Streaming: each actor has at most IN_FLIGHT_PER_WORKER jobs submitted (one running, one queued, so it never waits for
the driver); results come back through the object store as they finish (`ray.wait`), and each finished job frees
its actor's slot for the next one. Recovery: an actor whose process dies is restarted by Ray (max_restarts) and the
jobs it had are run again (max_task_retries); a job therefore reaches the driver once, however often it was started.
A worker that cannot import the project (a node without `liquid-navigator[sim]`) is a UserError naming the module
and the fix, not a Ray traceback.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from navigator import __version__
from navigator.backends import RAY_EXTRA, Backend, Cluster, WorkerInfo
from navigator.errors import UserError
from navigator.workers import local_workers

J = TypeVar("J")
R = TypeVar("R")

PROBE_SECONDS = 5.0  # how long a HOST:PORT may take to accept a TCP connection, and to answer HTTP/2 on it
CONNECT_RETRIES = "5"  # RAY_NUM_REDIS_GET_RETRIES: Ray's retries (about a second each) to read the head's session
START_SECONDS = 120.0  # how long the actors may take to start (import the simulator, torch) on their nodes
IN_FLIGHT_PER_WORKER = 2
MAX_RESTARTS = 4  # per actor; a worker killed more often ends the run (what it finished is kept: --resume)
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20  # a local instance's object store (spills to its temporary folder beyond)
# What every roll-out imports (a trained pilot imports torch and policies when it is first built).
REQUIRED_MODULES = ("navigator", "sim_envs", "pybullet", "gymnasium")
# The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, section 3.4): a gRPC server answers with SETTINGS.
_HTTP2_SETTINGS = 0x4
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes((0, 0, 0, _HTTP2_SETTINGS, 0, 0, 0, 0, 0))
# The token of the local Ray instances this process starts: one per process, since Ray caches the token it loaded.
_LOCAL_TOKEN = secrets.token_hex(32)


class _Worker:
    """The actor: runs `setup` once, then jobs; module state (the job functions' environment caches) lives as long
    as its process."""

    def __init__(self, setup: Callable[[], None] | None) -> None:
        if setup is not None:
            setup()

    def ready(self) -> WorkerInfo:
        """Import what roll-outs need (a missing package fails here, before any job), then say where it runs."""
        import importlib

        import ray

        for module in REQUIRED_MODULES:
            importlib.import_module(module)
        return WorkerInfo(ray.util.get_node_ip_address(), os.getpid())

    def run(self, function: Callable[[J], R], job: J) -> R:
        return function(job)


def run_on_ray(function: Callable[[J], R], jobs: list[J], workers: int, address: str | None,
               setup: Callable[[], None] | None, on_ready: Callable[[Cluster], None] | None) -> Iterator[R]:
    """`navigator.backends.run_jobs` on Ray: see there and the module docstring."""
    with _session(address, local_workers(workers)) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        count = min(workers or cpus, cpus, len(jobs))
        if count < 1:
            raise UserError(f"the {_where(address)} has no CPUs to run workers on; add nodes with `ray start "
                            f"--address HEAD:PORT`")
        actor_class = ray.remote(_Worker).options(num_cpus=1, max_restarts=MAX_RESTARTS,
                                                  max_task_retries=MAX_RESTARTS)
        # No ray.kill at the end (early exit, Ctrl-C): the actors share this driver's fate and stop when _session
        # disconnects, while killing them first would have Ray report each queued job's failure on the console.
        actors = [actor_class.remote(setup) for _ in range(count)]
        started = _started(ray, actors, address)
        if on_ready is not None:
            on_ready(Cluster(Backend("ray", address), nodes, cpus, count, started))
        yield from _stream(ray, actors, started, function, jobs)


def _where(address: str | None) -> str:
    return "local Ray instance" if address is None else f"Ray cluster at {address}"


def _import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise UserError(f"--backend ray needs Ray, which this installation lacks; install it with {RAY_EXTRA}") \
            from None
    return ray


@contextmanager
def _session(address: str | None, cpus: int) -> Iterator[Any]:
    """Ray, connected to the cluster at `address`, or to a local instance of `cpus` CPUs started (and stopped, its
    files removed) here."""
    if address is None:
        # Before Ray is imported: it reads this when imported (see the module docstring).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if "RAY_AUTH_MODE" not in os.environ:
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ.setdefault("RAY_AUTH_TOKEN", _LOCAL_TOKEN)
    else:
        check_address(address)
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", CONNECT_RETRIES)  # read when Ray is imported
    ray = _import_ray()
    temporary = tempfile.mkdtemp(prefix="navigator-ray-") if address is None else None
    finished = False
    try:
        # Ctrl-C waits until Ray has started: interrupted halfway, ray.init leaves processes that ray.shutdown does
        # not know of, still writing into `temporary` after it is removed. The processes it starts inherit the
        # block, so a Ctrl-C to the terminal's process group leaves them to the shutdown below.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            if temporary is not None:
                ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         _temp_dir=temporary, log_to_driver=False, logging_level=logging.ERROR)
            else:
                _connect(ray, address)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a Ctrl-C meanwhile is raised now
        yield ray
        finished = True
    finally:
        if finished:
            ray.shutdown()
        else:
            # Ended early (Ctrl-C, an error): Ray's C++ core logs each job the shutdown abandons ("Failed to push
            # error to driver for task ..."), noise beside the message that says what happened and how to resume.
            with _descriptor_2_captured():
                ray.shutdown()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def check_address(address: str) -> None:
    """A UserError when nothing answers as a Ray head at `address` (HOST:PORT, or auto: RAY_ADDRESS, else the cluster
    `ray start --head` recorded on this machine), before anything is written; `run_on_ray`
    connects later."""
    if address == "auto":
        resolved = os.environ.get("RAY_ADDRESS", "").strip()
        recorded = _current_cluster_file()
        if not resolved and recorded.is_file():
            resolved = recorded.read_text(errors="replace").strip()
        if not resolved:
            raise UserError("--address auto: no Ray cluster runs on this machine (none started with `ray start "
                            "--head`, and RAY_ADDRESS is unset); start one, or give the head's HOST:PORT")
        if not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", resolved):  # ray://... and the like: Ray resolves them itself
            return
        address = resolved
    _probe(address)


def _current_cluster_file() -> Path:
    """Where `ray start --head` records the head's address for `auto`: ray_current_cluster in Ray's temporary
    folder (RAY_TMPDIR, else TMPDIR on Linux, else /tmp on Linux and macOS: Ray's own rule)."""
    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        base = "/tmp"
    else:
        base = tempfile.gettempdir()
    return Path(base) / "ray" / "ray_current_cluster"


def _probe(address: str) -> None:
    """A UserError, within about 2 * PROBE_SECONDS, when nothing accepts TCP connections at HOST:PORT or what does
    is no Ray head: a head's GCS is a gRPC server, which answers an HTTP/2 client preface with its SETTINGS frame
    (RFC 9113, section 3.4). Ray itself would retry such an address for minutes (about 40 s for each of its
    NUM_REDIS_GET_RETRIES attempts). Skipped with RAY_USE_TLS, where the head expects a TLS handshake first."""
    host, _, port = address.rpartition(":")
    hint = f"start it on that machine with `ray start --head --node-ip-address HOST --port {port}`"
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS)
    except TimeoutError:
        raise UserError(f"cannot reach the Ray cluster at {address}: no answer within {PROBE_SECONDS:.0f} s; "
                        f"{hint}, or check the address and the firewall") from None
    except OSError as error:
        raise UserError(f"cannot reach the Ray cluster at {address} ({error.strerror or error}); {hint}, or "
                        f"check the address") from None
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        try:
            connection.sendall(_HTTP2_PREFACE)
            answer = b""
            while len(answer) < 9:  # a frame header: length (3 bytes), type (1), flags (1), stream (4)
                received = connection.recv(9 - len(answer))
                if not received:
                    break
                answer += received
        except OSError:  # a timeout or a reset: as a closed connection, what no gRPC server does
            answer = b""
    if len(answer) < 9 or answer[3] != _HTTP2_SETTINGS:
        raise UserError(f"cannot connect to the Ray cluster at {address}: what listens there is no Ray head (it "
                        f"does not answer as Ray's gRPC service does); check that the address is the head's "
                        f"(`ray start --head` prints it), or {hint}")


def _connect(ray: Any, address: str) -> None:
    with _descriptor_2_captured() as captured:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            failure = None
        except ray.exceptions.AuthenticationError:
            failure = (f"the Ray cluster at {address} refused this machine's authentication token: copy the head's "
                       f"~/.ray/auth_token here (or set RAY_AUTH_TOKEN to it)")
        except (ConnectionError, RuntimeError) as error:
            said = [line.split("] ", 1)[-1] for line in captured().splitlines() if line.strip()]
            reason = said[-1] if said else str(error).strip().splitlines()[0] if str(error).strip() else ""
            hint = ("start one with `ray start --head`, or give its HOST:PORT" if address == "auto"
                    else "check that the address is the head's (`ray start --head` prints it) and that the head runs "
                         "the Ray and Python versions this machine runs")
            failure = f"cannot connect to the Ray cluster at {address} ({reason}); {hint}"
        if failure is None:
            os.write(2, captured().encode())  # connected: what Ray said is the user's to see
    if failure is not None:
        raise UserError(failure)


@contextmanager
def _descriptor_2_captured() -> Iterator[Callable[[], str]]:
    """File descriptor 2 (stderr, where Ray's C++ client logs) redirected into a temporary file while inside; yields
    a function that reads what was written so far."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)

        def read() -> str:
            capture.seek(0)
            return capture.read().decode(errors="replace")

        try:
            yield read
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _started(ray: Any, actors: list[Any], address: str | None) -> tuple[WorkerInfo, ...]:
    """Wait until every actor has started and imported the project; what failed to, as a UserError."""
    try:
        return tuple(ray.get([actor.ready.remote() for actor in actors], timeout=START_SECONDS))
    except ray.exceptions.GetTimeoutError:
        raise UserError(f"the Ray workers did not start within {START_SECONDS:.0f} s on the {_where(address)}; "
                        f"`ray status` shows what the cluster lacks") from None
    except ray.exceptions.RayError as error:
        missing = _missing_module(error)
        if missing is not None:
            raise missing from None
        raise


def _missing_module(error: BaseException, node: str | None = None) -> UserError | None:
    """The UserError for a worker that could not import a module (its cause, or Ray's text of it), else None."""
    cause = getattr(error, "cause", None) or error
    name = cause.name if isinstance(cause, ModuleNotFoundError) else None
    if name is None:
        found = re.search(r"No module named '([\w.]+)'", str(error))
        name = found[1] if found else None
    if name is None:
        return None
    where = f" on node {node}" if node else ""
    return UserError(f"a Ray worker{where} cannot import {name}: install liquid-navigator[sim] on every node of the "
                     f"cluster, the version this machine runs ({__version__}); trained pilots need "
                     f"liquid-navigator[train] there too")


def _stream(ray: Any, actors: list[Any], started: tuple[WorkerInfo, ...], function: Callable[[J], R],
            jobs: list[J]) -> Iterator[R]:
    """Feed each actor up to IN_FLIGHT_PER_WORKER jobs and yield results as they finish."""
    waiting = deque(jobs)
    pending: dict[Any, int] = {}  # result ref -> index of the actor running it

    def submit(index: int) -> None:
        if waiting:
            pending[actors[index].run.remote(function, waiting.popleft())] = index

    for index in range(len(actors)):
        for _ in range(IN_FLIGHT_PER_WORKER):
            submit(index)
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as error:
            raise RuntimeError(f"the Ray worker on node {started[index].node} died more than {MAX_RESTARTS} times "
                               f"({type(error).__name__}); what finished is kept: rerun with --resume") from None
        except ray.exceptions.RayTaskError as error:
            missing = _missing_module(error, started[index].node)
            if missing is not None:
                raise missing from None
            if isinstance(error.cause, UserError):
                raise error.cause from None
            raise
        submit(index)
        yield result
