"""The ray backend against the local one, on a real Ray cluster of one 2-CPU node started here with `ray start --head`
(listening on loopback, with token authentication): the same dataset bytes and the same evaluation, a worker killed
mid-collection, an interrupted collection resumed, Ctrl-C answered by one line, an unreachable cluster or a listener
that is no Ray head refused fast, a DAgger round's roll-outs."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from signals_support import default_sigint

from navigator.backends import Backend, Cluster
from navigator.cli import main
from navigator.collect import CollectConfig, CollectPart, collect, open_for_collection
from navigator.dataset import check_dataset

RAY = Path(sys.executable).with_name("ray")
NAVIGATOR = Path(sys.executable).with_name("navigator")
EPISODES = ["--episodes", "4", "--max-seconds", "1", "--workers", "2"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """The address of a Ray head started like a user's (`ray start --head --block`, stopped by its process id),
    reachable on loopback only, with a token this test process authenticates with."""
    variables = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                 "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    temp = Path(tempfile.mkdtemp(prefix="nav-ray-"))  # short: Ray's socket paths live under it
    port = _free_port()
    head = subprocess.Popen([str(RAY), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # --block stops every process it started
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "data"
    assert main(["collect", "--out", str(out), *EPISODES]) == 0
    return out


def _files(dataset: Path) -> dict[str, bytes]:
    return {path.relative_to(dataset).as_posix(): path.read_bytes() for path in sorted(dataset.rglob("*"))
            if path.is_file()}


def test_collect_on_ray_writes_the_local_backend_bytes(head, local_dataset, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["collect", "--out", str(out), *EPISODES, "--backend", "ray", "--address", head]) == 0
    assert f"Ray cluster at {head}: 1 node, 2 CPUs, 2 workers" in capsys.readouterr().out
    assert _files(out) == _files(local_dataset)
    assert len(_files(out)) == 5  # the manifest and four episodes


def test_a_killed_worker_has_its_episode_flown_again_and_resume_finishes(head, local_dataset, tmp_path, capsys):
    out = tmp_path / "data"
    config = CollectConfig(parts=(CollectPart(episodes=4),), max_seconds=1.0, workers=2,
                           backend=Backend("ray", head))
    writer, _ = open_for_collection(out, config, resume=False)
    clusters: list[Cluster] = []
    flown = []

    def on_episode(collected) -> None:
        flown.append(collected.entry.key)
        if len(flown) == 1:  # both workers still hold episodes: kill one of them in flight
            os.kill(clusters[0].processes[1].pid, signal.SIGKILL)
        if len(flown) == 3:
            raise KeyboardInterrupt  # as Ctrl-C: the collection stops with one episode left

    with pytest.raises(KeyboardInterrupt):
        collect(out, config, writer, on_episode, clusters.append)
    assert len(flown) == len(set(flown)) == 3
    report = check_dataset(out)
    assert report.sound and [problem.message.split(":")[0] for problem in report.problems] == ["incomplete"]
    assert not list((out / "episodes").glob(".*"))  # no temporary file: workers write nothing there
    assert main(["collect", "--out", str(out), "--resume", "--backend", "ray", "--address", head]) == 0
    assert "flew 1 this run" in capsys.readouterr().out
    assert _files(out) == _files(local_dataset)
    assert main(["data", "check", str(out)]) == 0


def test_ctrl_c_while_a_local_ray_instance_starts_leaves_nothing_running_or_written(tmp_path):
    # Sent to the whole process group, as a terminal's Ctrl-C is, while ray.init starts the instance. A short
    # temporary folder: Ray's socket paths inside it must fit in 107 bytes.
    temporary = Path(tempfile.mkdtemp(prefix="nr-", dir="/tmp"))
    try:
        _interrupt_ray_start(temporary, tmp_path / "data")
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _interrupt_ray_start(temporary: Path, out: Path) -> None:
    run = subprocess.Popen([str(NAVIGATOR), "collect", "--out", str(out), "--episodes", "2", "--max-seconds", "1",
                            "--workers", "1", "--backend", "ray"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "TMPDIR": str(temporary)}, start_new_session=True,
                           preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list(temporary.glob("navigator-ray-*/session_*")):  # Ray is starting its processes there
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        "navigator collect: interrupted before anything was saved; rerun the same command to start again"]
    assert list(temporary.iterdir()) == [] and not out.exists()
    left = subprocess.run(["pgrep", "-f", str(temporary)], capture_output=True, text=True).stdout.split()
    assert left == [], subprocess.run(["ps", "-o", "pid,args", "-p", ",".join(left)], capture_output=True,
                                      text=True).stdout


def test_ctrl_c_on_a_ray_collection_prints_only_the_resume_line(head, tmp_path):
    out = tmp_path / "data"
    run = subprocess.Popen([str(NAVIGATOR), "collect", "--out", str(out), "--episodes", "12", "--max-seconds", "2",
                            "--workers", "2", "--backend", "ray", "--address", head], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list((out / "episodes").glob("*.npz")):  # interrupted mid-run: jobs running and queued on both actors
        assert run.poll() is None and time.monotonic() < deadline, "no episode was written"
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130
    assert stdout.strip().splitlines() == [f"running on the Ray cluster at {head}: 1 node, 2 CPUs, 2 workers"]
    # Nothing else: no "(raylet) Task _Worker.run failed ... killed by `ray.kill`".
    assert stderr.strip().splitlines() == [
        "navigator collect: interrupted; rerun the same command with --resume to continue"]


def test_eval_on_ray_reports_what_the_local_backend_reports(tmp_path, capsys):
    # No --address: a Ray instance is started for the run (and stopped, its temporary folder removed).
    flags = ["--pilot", "expert", "--suites", "summer", "--episodes", "2", "--max-seconds", "2", "--workers", "2"]
    assert main(["eval", "--out", str(tmp_path / "local"), *flags]) == 0
    assert main(["eval", "--out", str(tmp_path / "ray"), *flags, "--backend", "ray"]) == 0
    assert "local Ray instance: 1 node, 2 CPUs, 2 workers" in capsys.readouterr().out
    local, ray = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("local", "ray"))
    assert ray == local
    assert len(local["episodes"]) == 2


@pytest.mark.parametrize("address", ["10.0.0.1:6379", "closed port"])
def test_an_unreachable_cluster_is_a_fast_clear_error(address, tmp_path, capsys):
    # 10.0.0.1 may drop connections (no answer), refuse them, or (behind a proxy) answer as no Ray head does.
    address = f"127.0.0.1:{_free_port()}" if address == "closed port" else address
    # The error is our check's (a socket with a few seconds' timeout), not Ray's own, which retries for minutes.
    code = main(["collect", "--out", str(tmp_path / "data"), "--backend", "ray", "--address", address])
    error = capsys.readouterr().err
    assert code == 2
    assert len(error.strip().splitlines()) == 1
    assert f"cannot reach the Ray cluster at {address}" in error or (
        f"cannot connect to the Ray cluster at {address}" in error and address == "10.0.0.1:6379")
    assert not (tmp_path / "data").exists()  # the empty dataset it had created is removed


@pytest.mark.parametrize("command", ["eval", "train", "compare"])
def test_an_unreachable_cluster_is_refused_before_any_work(command, local_dataset, tmp_path, capsys, monkeypatch):
    # Not when the first roll-out needs the cluster: after an evaluation folder was made, or a training's first
    # stage. "auto" finds no cluster when Ray's temporary folder records none.
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out"
    for address, message in ((f"127.0.0.1:{_free_port()}", "cannot reach the Ray cluster at 127.0.0.1:"),
                             ("auto", "--address auto: no Ray cluster runs on this machine")):
        backend = ["--backend", "ray", "--address", address]
        if command == "eval":
            argv = ["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "1", "--out", str(out), *backend]
        elif command == "train":
            argv = ["train", "--data", str(local_dataset), "--out", str(out), "--dagger", "1", *backend]
        else:
            config = tmp_path / "compare.yaml"
            config.write_text(f"train: {{data: [{local_dataset}], backend: {{kind: ray, address: '{address}'}}}}\n")
            argv = ["compare", "--config", str(config), "--out", str(out)]
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error
        assert not out.exists()


def test_a_run_started_on_a_ray_cluster_continues_on_the_local_backend(head, local_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: [{local_dataset}]\nepochs: 1\nbatch_size: 2\nwindow: 8\nstride: 8\n")
    assert main(["train", "--config", str(recipe), "--out", str(out), "--backend", "ray", "--address", head]) == 0
    assert json.loads((out / "run.json").read_text())["config"]["backend"] == {"kind": "ray", "address": head}
    # nothing of this recipe flies (no collect section, no DAgger): the backend unused is said
    assert "backend ray: this recipe flies nothing" in capsys.readouterr().err
    # --backend replaces the recorded backend whole: the recorded address does not carry over to the local one.
    assert main(["train", "--out", str(out), "--epochs", "2", "--extend", "--backend", "local"]) == 0, \
        capsys.readouterr().err


def test_a_listener_that_is_no_ray_head_is_a_fast_clear_error(tmp_path):
    # An HTTP server where the head should be: Ray alone retries it for minutes. In a subprocess, so that a hang
    # fails the test instead of stalling the suite.
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        done = subprocess.run([str(NAVIGATOR), "collect", "--out", str(tmp_path / "data"), "--episodes", "2",
                               "--max-seconds", "2", "--backend", "ray", "--address", address],
                              check=False, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [(
        f"navigator collect: error: cannot connect to the Ray cluster at {address}: what listens there is no Ray head "
        f"(it does not answer as Ray's gRPC service does); check that the address is the head's (`ray start --head` "
        f"prints it), or start it on that machine with `ray start --head --node-ip-address HOST --port "
        f"{server.server_address[1]}`")]
    assert not (tmp_path / "data").exists()


def test_an_address_without_the_ray_backend_names_the_flag_to_add(tmp_path, capsys):
    assert main(["collect", "--out", str(tmp_path / "data"), "--address", "10.0.0.1:6379"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "--address must come with the ray backend" in error and "add --backend ray" in error
    assert not (tmp_path / "data").exists()


def test_a_dagger_round_flies_on_ray_as_it_would_locally(head, local_dataset, tmp_path):
    from navigator.config import load_config
    from navigator.training.config import TrainConfig
    from navigator.training.pipeline import Hooks, dagger_collect_config, run_recipe

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({
        "data": [str(local_dataset)], "out": str(tmp_path / "run"), "epochs": 1, "batch_size": 4, "window": 8,
        "stride": 8, "threads": 1, "val_fraction": 0.25, "dagger": {"rounds": 1, "episodes": 2, "epochs": 1},
        "backend": {"kind": "ray", "address": head}}))
    config = load_config(TrainConfig, recipe)
    best, pilot = tmp_path / "run" / "best.pt", tmp_path / "round-1-pilot.pt"
    clusters: list[Cluster] = []

    class Keep(Hooks):
        def stage(self, name: str, detail: str) -> None:
            if name == "dagger-1" and not pilot.exists():  # announced before its roll-outs fly
                shutil.copyfile(best, pilot)

        def cluster(self, cluster: Cluster) -> None:
            clusters.append(cluster)

    run_recipe(config, resume=False, hooks=Keep())
    assert [cluster.backend for cluster in clusters] == [Backend("ray", head)]
    rolled = tmp_path / "run" / "dagger" / "round-1"
    assert check_dataset(rolled).problems == []
    # The same round flown by local processes, with the policy that flew it on Ray: the same bytes.
    shutil.copyfile(pilot, best)
    local = replace(dagger_collect_config(config, best, 1), backend=Backend(), workers=1)  # in this process
    writer, _ = open_for_collection(tmp_path / "local-round", local, resume=False)
    collect(tmp_path / "local-round", local, writer)
    assert _files(rolled) == _files(tmp_path / "local-round")


def test_a_module_the_nodes_lack_is_named_with_the_fix(head):
    import importlib

    from navigator.backends import run_jobs
    from navigator.errors import UserError

    with pytest.raises(UserError, match=r"a Ray worker on node 127\.0\.0\.1 cannot import navigator_absent_module: "
                                        r"install liquid-navigator\[sim\] on every node"):
        list(run_jobs(importlib.import_module, ["navigator_absent_module"], 1, Backend("ray", head)))
