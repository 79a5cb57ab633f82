"""`navigator deploy` against a real OpenSSH server started here on 127.0.0.1 (Debian's openssh-server; .ci/run
installs it) with throwaway host and client keys, real ssh/scp clients, a real venv built on the "target" (this
machine, through sshd) from a wheelhouse, a camera that is a video file and an autopilot that is real pymavlink
sockets: deploy, self-test, a second version reusing the venv, a failing self-test that keeps the old version,
rollback, status, dry run, pruning to --keep versions, the target's lock, an interrupted deploy undone, failures as
JSON, and hostile or misnamed input refused before anything runs.

Target folders and camera files that a deploy uses live outside /tmp (the `place` fixture): deploy refuses /tmp, which
the service's PrivateTmp hides from it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from navigator.cli import main
from navigator.deploy import pipeline
from navigator.deploy.lock import lock_step
from navigator.deploy.ssh import SshClient, run_step, shared_connection
from navigator.deploy.target import check_camera, parse_target
from navigator.errors import UserError
from signals_support import default_sigint
from onboard_support import FakeAutopilot, free_port, write_tiny_bundle, write_video
from processes_support import process_fields
from sshd_support import SSHD, Sshd, download_wheelhouse, running_sshd

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "policies" / "pretrained" / "bundles"

pytestmark = pytest.mark.skipif(not SSHD.exists() or shutil.which("ssh") is None,
                                reason="needs OpenSSH (openssh-server and its client; .ci/run installs them)")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on 127.0.0.1 and a free port, accepting only a throwaway client key; a known-hosts file for it."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The onboard dependencies as wheels, so that the target's venv installs with --no-index."""
    return download_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder outside /tmp and /var/tmp (under the user's cache folder), removed afterwards: for target folders
    and camera files, which deploy refuses in /tmp."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liquid-navigator-tests"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    assert not str(folder).startswith(("/tmp/", "/var/tmp/")), folder
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def navigator(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def target_args(sshd: Sshd, folder: Path) -> list[str]:
    return ["--target", f"root@127.0.0.1:{folder}", "--port", str(sshd.port), "--identity", str(sshd.key),
            "--known-hosts", str(sshd.known_hosts)]


def running_from(folder: Path) -> list[str]:
    """The command lines of processes on this machine (the "target") whose program is in `folder` (a venv's
    python there)."""
    found = []
    for _, words in process_fields():
        argv = b" ".join(words).decode(errors="replace")
        if argv.startswith(f"{folder}/"):
            found.append(argv)
    return found


def shared_connections() -> list[str]:
    """Command lines of this computer's ssh processes holding a deploy's shared connection (shared_connection)."""
    return [b" ".join(words).decode(errors="replace") for _, words in process_fields()
            if Path(words[0].decode(errors="replace")).name == "ssh" and b"navigator-ssh-" in b" ".join(words)]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_deploy_self_test_second_version_failing_version_rollback_status(sshd: Sshd, wheelhouse: Path, place: Path,
                                                                         tmp_path: Path, capsys) -> None:
    target = place / "target"
    camera = write_video(place / "camera.avi")
    udp = free_port()
    common = [*target_args(sshd, target), "--wheelhouse", str(wheelhouse), "--probe-timeout", "2", "--json"]

    # A first deploy: a heartbeat arrives and the camera opens, so every check passes.
    autopilot = FakeAutopilot(f"udpout:127.0.0.1:{udp}").start()
    try:
        code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "fly-to-target"), *common,
                                   "--camera", str(camera), "--mavlink", f"udpin:127.0.0.1:{udp}", "--require-link",
                                   "--require-camera")
    finally:
        autopilot.close()
    assert code == 0, err
    first = json.loads(out)
    assert not first["venv_reused"] and first["previous"] is None
    assert {c["name"]: c["ok"] for c in first["self_test"]["checks"]} == \
        {"config": True, "bundle": True, "inference": True, "camera": True, "mavlink": True}
    assert "systemd not available" in first["service"]
    current = target / "current"
    assert os.readlink(current) == f"versions/{first['version']}"
    version = current.resolve()
    assert (version / "runtime.env").read_text() == \
        f"NAVIGATOR_CAMERA={camera}\nNAVIGATOR_MAVLINK=udpin:127.0.0.1:{udp}\n"
    assert json.loads((version / "deploy.json").read_text())["self_test"]["passed"]
    assert (version / "venv" / ".complete").is_file() and not list((target / "incoming").iterdir())
    assert not shared_connections()  # the steps' one connection was closed at the end
    if shutil.which("systemd-analyze"):  # the rendered unit, with its real ExecStart on this "target"
        verify = subprocess.run(["systemd-analyze", "verify", str(version / "navigator-onboard.service")],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr

    # A second version: camera and link kept, venv reused; no autopilot now, which only warns. With --keep 2 it
    # prunes an older version, the venv only that one used and what a killed run left.
    old = "20000101-000000-aaaaaaaa"
    (target / "venvs" / "0000000000000000").mkdir()
    (target / "venvs" / "0000000000000000" / ".complete").touch()
    (target / "versions" / old).mkdir()
    (target / "versions" / old / "venv").symlink_to("../../venvs/0000000000000000")
    (target / "versions" / ".staging-20000101-000001-bbbbbbbb").mkdir()
    (target / "incoming" / "20000101-000001-bbbbbbbb").mkdir()
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "follow"), *common, "--keep", "2")
    assert code == 0, err
    second = json.loads(out)
    assert second["pruned"] == {"keep": 2, "kept": [second["version"], first["version"]], "versions": [old],
                                "venvs": ["0000000000000000"], "error": None,
                                "leftovers": ["versions/.staging-20000101-000001-bbbbbbbb",
                                              "incoming/20000101-000001-bbbbbbbb"]}
    assert sorted(p.name for p in (target / "versions").iterdir()) == sorted([first["version"], second["version"]])
    assert [p.name for p in (target / "venvs").iterdir()] == [first["venv"]]
    assert not list((target / "incoming").iterdir()) and not (target / ".lock").exists()
    assert second["venv_reused"] and second["venv"] == first["venv"] and second["previous"] == first["version"]
    link = next(c for c in second["self_test"]["checks"] if c["name"] == "mavlink")
    assert not link["ok"] and not link["blocking"] and "no autopilot heartbeat" in link["detail"]
    assert os.readlink(current) == f"versions/{second['version']}"
    assert os.readlink(target / "previous") == f"versions/{first['version']}"

    # A failing self-test (--require-link, no autopilot): the new version is refused and removed, nothing switched.
    before = tree(target)
    code, out, err = navigator(capsys, "deploy", "--bundle", str(write_tiny_bundle(tmp_path / "tiny")), *common,
                               "--require-link")
    assert code == 1
    assert "self-test the new version on the target failed" in err and "mavlink" in err
    assert tree(target) == before
    assert os.readlink(current) == f"versions/{second['version']}"
    failed = json.loads(out)  # --json: one document on failure too, with the self-test's report
    assert failed["failed"] and not failed["interrupted"] and failed["target_restored"]
    assert failed["step"] == "self-test the new version on the target" and "remove the staging folder: done" in \
        failed["undo"]
    assert not failed["self_test"]["passed"] and "mavlink" in failed["error"]

    # Ctrl-C during the self-test (waiting for a heartbeat that never comes): the deploy undoes what it created,
    # exits 130, and the self-test it started on the target does not outlive it.
    deploying = subprocess.Popen([sys.executable, "-m", "navigator", "deploy", "--bundle",
                                  str(write_tiny_bundle(tmp_path / "tiny2")), *target_args(sshd, target),
                                  "--wheelhouse", str(wheelhouse), "--probe-timeout", "60", "--json",
                                  "--require-link"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=default_sigint)  # Ctrl-C's default even in a runner that ignores it
    progress = []
    for line in deploying.stderr:
        progress.append(line)
        if "self-test the new version" in line:
            break
    time.sleep(2)  # the self-test is under way on the target
    assert any("--self-test" in command for command in running_from(target)), progress
    deploying.send_signal(signal.SIGINT)
    out, err = deploying.communicate(timeout=60)
    assert deploying.returncode == 130, "".join(progress) + err
    assert "undo: remove the staging folder: done" in err and "navigator deploy: interrupted" in err
    interrupted = json.loads(out)
    assert interrupted["interrupted"] and interrupted["step"] == "self-test the new version on the target"
    assert interrupted["target_restored"] and interrupted["self_test"] is None
    assert tree(target) == before
    deadline = time.monotonic() + 10
    while running_from(target) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running_from(target)
    assert not shared_connections()

    # Rollback returns to the first version; the second becomes previous.
    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--rollback", "--json")
    assert code == 0, err
    assert json.loads(out)["active"] == first["version"]
    assert os.readlink(current) == f"versions/{first['version']}"
    assert os.readlink(target / "previous") == f"versions/{second['version']}"

    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["current"] == first["version"] and status["previous"] == second["version"]
    assert set(status["versions"]) == {first["version"], second["version"]}
    assert status["venvs"] == [first["venv"]] and status["service"] == "systemd not available"
    assert status["versions"][second["version"]]["record"]["bundle"]["task"] == "follow"
    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--status")
    assert code == 0, err
    assert first["version"] in out and "previous" in out and "service: systemd not available" in out


def test_dry_run_prints_every_step_and_changes_nothing(sshd: Sshd, wheelhouse: Path, place: Path, tmp_path: Path,
                                                       capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    target = place / "target"
    # What a deploy killed outright left in the temporary folder: removed by the next deploy once its process is gone.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / f"navigator-deploy-{gone.pid}-abcd1234" / "wheel").mkdir(parents=True)
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "hike"), *target_args(sshd, target),
                               "--wheelhouse", str(wheelhouse), "--camera", "0", "--mavlink",
                               "udpin:0.0.0.0:14540", "--dry-run")
    assert code == 0, err
    assert not target.exists()
    for title in ("create the target folders", "copy the version folder", "create the venv",
                  "self-test the new version on the target", "switch to version"):
        assert title in out
    assert "&& python3 -m venv -- " in out and "scp -q -p -r" in out  # the exact argv, quoted as a shell line
    assert not list(tmp_path.glob("navigator-deploy-*"))  # the leftover, and this run's own work folder


def test_a_first_deploy_that_fails_leaves_no_trace(sshd: Sshd, wheelhouse: Path, place: Path, tmp_path: Path,
                                                   capsys) -> None:
    partial = tmp_path / "wheelhouse"  # rich alone: the venv's install cannot find numpy and fails
    partial.mkdir()
    shutil.copy(next(wheelhouse.glob("rich-*.whl")), partial)
    target = place / "target"
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "hike"), *target_args(sshd, target),
                               "--wheelhouse", str(partial), "--camera", "0", "--mavlink", "udpin:127.0.0.1:14540")
    assert code == 1
    assert "install liquid-navigator[onboard] into the venv failed" in err
    assert "remove the venv this deploy began: done" in err and "remove the staging folder: done" in err
    assert not target.exists()


@pytest.mark.parametrize("argv, problem", [
    (["--target=-oProxyCommand=touch {marker}"], "--target"),
    (["--target=-oProxyCommand=touch"], "not a host name"),
    (["--target", "root@127.0.0.1;touch {marker}"], "--target"),
    (["--target", "root@$(touch {marker})"], "--target"),
    (["--target", "root@`touch {marker}`"], "--target"),
    (["--target", "root@127.0.0.1:dir\ntouch {marker}"], "holds a control character"),
    (["--target", "root@127.0.0.1:../../etc"], "'..' component"),
    (["--target", "root@127.0.0.1:/opt/-rf"], "starts with '-'"),
    (["--target", "root@127.0.0.1:"], "ends in ':' with no folder after it"),  # not silently the default folder
    (["--target", "root@[::1]:"], "ends in ':' with no folder after it"),
    (["--target", "root@127.0.0.1:2222"], "looks like a port; for SSH port 2222 give --port 2222"),  # not ~/2222
    (["--target", "root@127.0.0.1:~other/x"], "may not hold"),
    (["--target", "root@127.0.0.1:~"], "names no folder (the home or root folder itself)"),  # as ~/ does
    (["--target", "root@127.0.0.1;rm -rf {marker}"], "holds a space"),
    (["--target", "root@127.0.0.1", "--port", "0"], "--port"),
    (["--target", "root@127.0.0.1", "--camera", "0;touch {marker}"], "--camera"),
    (["--target", "root@127.0.0.1", "--camera", "$(touch {marker})"], "--camera"),
    (["--target", "root@127.0.0.1", "--mavlink", "udpin:0.0.0.0:14540 --x"], "--mavlink"),
    (["--target", "root@127.0.0.1", "--identity", "/nonexistent/key"], "--identity"),
    (["--target", "root@127.0.0.1", "--known-hosts", "/tmp/x ProxyCommand=touch {marker}"], "--known-hosts"),
])
def test_hostile_targets_paths_and_options_are_refused_before_anything_runs(argv: list[str], problem: str,
                                                                            tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    argv = [arg.replace("{marker}", str(marker)) for arg in argv]
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "hike"), *argv)
    assert code == 2, err
    assert problem in err and "[1]" not in out + err  # no step began
    assert not marker.exists()


def test_a_key_readable_by_others_is_refused(sshd: Sshd, tmp_path: Path, capsys) -> None:
    key = tmp_path / "key"
    shutil.copy(sshd.key, key)
    key.chmod(0o644)
    code, _, err = navigator(capsys, "deploy", "--target", "root@127.0.0.1", "--identity", str(key), "--status")
    assert code == 2 and "chmod 600" in err


def test_an_unknown_host_key_stops_the_deploy(sshd: Sshd, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    code, _, err = navigator(capsys, "deploy", "--target", f"root@127.0.0.1:{tmp_path / 't'}", "--port",
                             str(sshd.port), "--identity", str(sshd.key), "--known-hosts", str(empty), "--status")
    assert code == 1 and "Host key verification failed" in err


def test_self_test_fails_a_tampered_bundle(tmp_path: Path, capsys) -> None:
    bundle = write_tiny_bundle(tmp_path / "bundle")
    graph = bundle / "policy.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    code, out, err = navigator(capsys, "onboard", "--self-test", "--bundle", str(bundle), "--json")
    assert code == 1, err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert not checks["bundle"]["ok"] and "sha256" in checks["bundle"]["detail"]
    assert not checks["inference"]["ok"] and checks["camera"]["detail"].startswith("not checked")


def fake_target(folder: Path) -> dict[str, str]:
    """A target folder as deploys would leave it, without building venvs: four versions, v2 active after a rollback
    from v4; venvs a (v1), b (v2, v3), c (v4) and an unfinished one. The versions' ids by name."""
    ids = {f"v{n}": f"2000010{n}-000000-0000000{n}" for n in range(1, 5)}
    for key in ("a", "b", "c", "unfinished"):
        (folder / "venvs" / key).mkdir(parents=True)
        if key != "unfinished":
            (folder / "venvs" / key / ".complete").touch()
    for name, key in (("v1", "a"), ("v2", "b"), ("v3", "b"), ("v4", "c")):
        (folder / "versions" / ids[name]).mkdir(parents=True)
        (folder / "versions" / ids[name] / "venv").symlink_to(f"../../venvs/{key}")
    (folder / "current").symlink_to(f"versions/{ids['v2']}")
    (folder / "previous").symlink_to(f"versions/{ids['v4']}")
    return ids


def test_prune_keeps_current_previous_and_the_newest(sshd: Sshd, tmp_path: Path, capsys) -> None:
    target = tmp_path / "target"
    ids = fake_target(target)
    args = target_args(sshd, target)

    code, out, err = navigator(capsys, "deploy", *args, "--status", "--keep", "3", "--json")
    assert code == 0, err
    assert json.loads(out)["prune"] == {"keep": 3, "kept": [ids["v4"], ids["v3"], ids["v2"]], "versions": [ids["v1"]],
                                        "venvs": ["a", "unfinished"], "leftovers": []}
    code, out, err = navigator(capsys, "deploy", *args, "--status", "--keep", "2")
    assert code == 0, err
    assert "pruned" in out and "also removes: a, unfinished" in out

    before = tree(target)
    code, out, err = navigator(capsys, "deploy", *args, "--prune", "--keep", "2", "--dry-run")
    assert code == 0, err
    assert f"prune: version {ids['v1']}" in out and f"prune: version {ids['v3']}" in out and "rm -rf --" in out
    assert tree(target) == before

    for argv, problem in ((["--prune", "--keep", "1"], "at least 2"), (["--rollback", "--keep", "3"], "--keep"),
                          (["--status", "--break-lock"], "no lock")):
        code, _, err = navigator(capsys, "deploy", *args, *argv)
        assert code == 2 and problem in err

    code, out, err = navigator(capsys, "deploy", *args, "--prune", "--keep", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["kept"] == [ids["v4"], ids["v2"]]
    assert sorted(p.name for p in (target / "versions").iterdir()) == [ids["v2"], ids["v4"]]
    assert sorted(p.name for p in (target / "venvs").iterdir()) == ["b", "c"]
    assert os.readlink(target / "current") == f"versions/{ids['v2']}" and not (target / ".lock").exists()


def hold_lock(target: Path, **holder) -> None:
    """DIR/.lock as another run would hold it."""
    (target / ".lock").mkdir()
    (target / ".lock" / "holder.json").write_text(json.dumps({"token": "0123", **holder}))


def test_a_held_lock_refuses_changes_until_broken(sshd: Sshd, place: Path, capsys) -> None:
    target = place / "target"
    ids = fake_target(target)
    args = target_args(sshd, target)
    hold_lock(target, by="ci@elsewhere", host="elsewhere", pid=4242, operation="deploy")
    before = tree(target)
    for argv in (["--rollback"], ["--prune"], ["--bundle", str(BUNDLES / "hike")]):
        code, _, err = navigator(capsys, "deploy", *args, *argv)
        assert code == 2, err
        assert "locked by ci@elsewhere (pid 4242, deploy" in err and "--break-lock" in err
    assert tree(target) == before

    # --status and --dry-run take no lock; status shows it.
    code, out, err = navigator(capsys, "deploy", *args, "--status", "--json")
    assert code == 0, err
    assert json.loads(out)["lock"]["holder"]["by"] == "ci@elsewhere"
    code, out, err = navigator(capsys, "deploy", *args, "--rollback", "--dry-run")
    assert code == 0, err
    assert tree(target) == before

    # A holder on this computer whose process runs is not broken; one whose process is gone is.
    shutil.rmtree(target / ".lock")
    hold_lock(target, by="me@here", host=socket.gethostname(), pid=os.getpid(), operation="prune")
    code, _, err = navigator(capsys, "deploy", *args, "--prune", "--break-lock")
    assert code == 2 and f"process {os.getpid()} still runs" in err
    assert tree(target) == before
    gone = subprocess.Popen(["true"])
    gone.wait()
    shutil.rmtree(target / ".lock")
    hold_lock(target, by="me@here", host=socket.gethostname(), pid=gone.pid, operation="prune")
    code, out, err = navigator(capsys, "deploy", *args, "--rollback", "--break-lock", "--json")
    assert code == 0, err
    assert json.loads(out)["active"] == ids["v4"] and not (target / ".lock").exists()


def test_of_concurrent_lock_takers_exactly_one_wins(sshd: Sshd, tmp_path: Path) -> None:
    target = tmp_path / "target"  # missing: the first taker creates it
    ssh = SshClient(parse_target(f"root@127.0.0.1:{target}", sshd.port), sshd.key, sshd.known_hosts)
    steps = [lock_step(ssh, "take", "take", json.dumps({"by": f"runner{n}", "token": str(n)})) for n in range(6)]
    takers = [subprocess.Popen(step.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for step in steps]
    reports = [json.loads(taker.communicate(step.stdin, timeout=60)[0]) for taker, step in zip(takers, steps)]
    winners = [n for n, report in enumerate(reports) if report["taken"]]
    assert len(winners) == 1
    assert all(report["lock"]["holder"]["by"] == f"runner{winners[0]}" for report in reports if not report["taken"])
    release = lock_step(ssh, "release", "release", str(winners[0]))
    assert json.loads(subprocess.run(release.argv, input=release.stdin, capture_output=True).stdout)["released"]
    assert not target.exists()  # the lock made the folder, and took it away again


@pytest.mark.parametrize("argv, problem", [
    (["--target", "root@127.0.0.1:/tmp/navigator"], "/tmp/navigator is under /tmp, which the service does not see"),
    (["--target", "root@127.0.0.1:/var/tmp/x"], "under /var/tmp"),
    (["--target", "root@127.0.0.1:/tmp/x", "--rollback"], "PrivateTmp=yes"),
    (["--target", "root@127.0.0.1", "--rollback", "--probe-timeout", "3"], "--probe-timeout applies only to a "
                                                                            "deploy (--bundle)"),
    (["--target", "root@127.0.0.1", "--camera", "/tmp/flight.mp4"], "under /tmp, which the service does not see"),
    (["--target", "root@127.0.0.1", "--camera", "file:///var/tmp/f.mp4"], "under /var/tmp"),
    (["--target", "root@127.0.0.1", "--camera", "flight.mp4"], "relative path"),
    (["--target", "root@127.0.0.1", "--camera", "~/flight.mp4"],
     "is a path from a home folder, which the service, started by systemd and not a shell, would not expand"),
    (["--target", "root@127.0.0.1", "--camera", "frames/img%03d.png"], "relative path"),
    (["--target", "root@::1"], "IPv6 address without brackets (its colons would be read as the one before DIR); "
     "write it in brackets: root@[::1]"),
    (["--target", "root@fe80::2:/opt/x"], "root@[fe80::2]:DIR"),
    (["--target", "root@127.0.0.1", "--config", "/tmp"], "--config /tmp: a folder, not a file"),
    (["--target", "root@127.0.0.1", "--identity", "/tmp"], "--identity /tmp: a folder, not a file"),
    (["--target", "root@127.0.0.1", "--known-hosts", "/dev/null"], "--known-hosts /dev/null: a device, not a file"),
    (["--target", "root@127.0.0.1", "--probe-timeout", "0"], "--probe-timeout 0: give more than 0 and at most 120"),
])
def test_input_the_service_would_not_see_or_that_is_misnamed_is_refused(argv: list[str], problem: str,
                                                                        capsys) -> None:
    bundle = [] if "--rollback" in argv else ["--bundle", str(BUNDLES / "hike")]
    code, out, err = navigator(capsys, "deploy", *bundle, *argv)
    assert code == 2, err
    assert problem in err and "[1]" not in out + err and "Traceback" not in err


def test_a_bundle_that_is_a_file_is_named_for_what_it_is(tmp_path: Path, capsys) -> None:
    checkpoint, clip = tmp_path / "my run" / "best.pt", tmp_path / "clip.avi"
    checkpoint.parent.mkdir()
    for path in (checkpoint, clip):
        path.write_bytes(b"x")
    code, _, err = navigator(capsys, "deploy", "--bundle", str(checkpoint), "--target", "root@127.0.0.1")
    assert code == 2
    assert f"is a checkpoint, not a bundle folder; export it first: navigator export --checkpoint '{checkpoint}' " \
           f"--out bundles/NAME" in err  # quoted: the path has a space
    code, _, err = navigator(capsys, "deploy", "--bundle", str(clip), "--target", "root@127.0.0.1")
    assert code == 2 and "is a file, not a bundle folder" in err and "no such folder" not in err


def test_camera_sources_that_are_no_files_pass_and_ipv6_in_brackets_parses() -> None:
    for source in ("0", "/dev/video0", "rtsp://10.0.0.5:8554/cam", "http://[::1]:8080/x", "/home/pi/flight.mp4"):
        assert check_camera(source) == source
    with pytest.raises(UserError, match="kept from the active version"):
        check_camera("/tmp/x.mp4", "the camera kept from the active version (--camera replaces it)")
    target = parse_target("root@[::1]:/opt/nav")
    assert (target.host, target.directory, target.scp_location("x")) == ("::1", "/opt/nav", "root@[::1]:x")


def test_work_folders_of_killed_deploys_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead, alive, other = (tmp_path / f"navigator-deploy-{gone.pid}-x1", tmp_path / f"navigator-deploy-{os.getpid()}-x2",
                          tmp_path / "navigator-deploy-notapid")
    for folder in (dead, alive, other):
        folder.mkdir()
    notes: list[str] = []
    hooks = pipeline.Hooks()
    hooks.note = notes.append  # type: ignore[method-assign]
    pipeline._remove_dead_work_folders(hooks)
    assert not dead.exists() and alive.exists() and other.exists()
    assert notes == [f"removed {dead}, left by a deploy that was killed (process {gone.pid})"]


@pytest.mark.parametrize("shared", [False, True], ids=["own connection", "shared connection"])
def test_a_remote_command_ends_when_its_ssh_client_goes(sshd: Sshd, tmp_path: Path, shared: bool) -> None:
    """sshd sends no SIGHUP without a terminal: the hangup watch stops the command when ssh's stdin ends, also
    where the client is one of the steps sharing a deploy's connection (the connection itself stays)."""
    with contextlib.ExitStack() as stack:
        ssh = SshClient(parse_target("root@127.0.0.1", sshd.port), sshd.key, sshd.known_hosts)
        if shared:
            ssh = stack.enter_context(shared_connection(ssh))
            assert run_step(ssh.ssh("open the connection", ["true"])) == ""
        _remote_command_ends_with_its_client(ssh)
    assert not shared_connections()  # closed on leaving, not left to its idle timeout


def _remote_command_ends_with_its_client(ssh: SshClient) -> None:
    marker = f"{time.time_ns() % 1000}.5"
    client = subprocess.Popen(ssh.ssh("sleep", ["sleep", marker]).argv, stdin=subprocess.PIPE)

    def sleeping() -> bool:
        return any(words[:2] == [b"sleep", marker.encode()] for _, words in process_fields())

    deadline = time.monotonic() + 30  # generous: a loaded 2-core machine may take seconds to log in
    while not sleeping():
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.1)
    client.kill()  # as SIGKILL of a deploy closes the pipe it holds, or Ctrl-C ends ssh
    client.wait()
    deadline = time.monotonic() + 30
    while sleeping():
        assert time.monotonic() < deadline, "the remote command outlived its ssh client"
        time.sleep(0.1)
    # A command that ends by itself reports its exit code as before.
    assert run_step(ssh.ssh("print", ["echo", "hello"])) == "hello\n"


def test_connection_failures_say_how_to_fix_them_and_json_gets_one_document(sshd: Sshd, tmp_path: Path,
                                                                             capsys) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = ["--target", f"root@127.0.0.1:{tmp_path / 't'}", "--port", str(sshd.port), "--identity", str(sshd.key)]
    code, out, err = navigator(capsys, "deploy", *args, "--known-hosts", str(empty), "--status", "--json")
    assert code == 1 and "Host key verification failed" in err
    assert f"fix: the target's host key is not in {empty}: connect once with ssh -p {sshd.port} root@127.0.0.1" in err
    failure = json.loads(out)
    assert failure["failed"] and failure["step"] == "read the target" and "ssh-keyscan" in failure["fix"]
    assert failure["undo"] is None and failure["target_restored"] is None

    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    code, out, err = navigator(capsys, "deploy", *args[:-1], str(stranger), "--known-hosts", str(sshd.known_hosts),
                               "--status")
    assert code == 1 and "Permission denied" in err
    assert "fix: the target refused the key" in err and f"ssh-copy-id -i {stranger} -p {sshd.port} " in err


def test_status_says_what_is_missing_or_damaged(sshd: Sshd, tmp_path: Path, capsys) -> None:
    target = tmp_path / "target"
    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--status")
    assert code == 0, err
    assert "nothing deployed in" in out and "policy sha256" not in out  # no empty table

    ids = fake_target(target)
    (target / "versions" / ids["v1"] / "deploy.json").write_text('{"version": ')
    (target / "versions" / ids["v3"] / "deploy.json").write_text("")
    shutil.rmtree(target / "versions" / ids["v4"])  # previous
    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--status")
    assert code == 0, err
    assert f"version {ids['v1']}: its deploy.json is damaged (not valid JSON at line 1)" in out
    assert f"version {ids['v3']}: its deploy.json is empty" in out
    assert f"version {ids['v2']}: its deploy.json is missing" in out
    assert f"previous points to version {ids['v4']}, which is missing: --rollback has no version to return to" in out
    code, out, err = navigator(capsys, "deploy", *target_args(sshd, target), "--status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert len(status["problems"]) == 4
    assert status["versions"][ids["v1"]]["record_problem"].startswith("its deploy.json is damaged")


def test_the_summary_counts_every_kind_of_thing_pruned() -> None:
    # It used to say "pruned: nothing" right after removing what a killed run left.
    from navigator.commands.deploy import _pruned

    plan = {"keep": 3, "kept": ["b"], "versions": [], "venvs": [], "leftovers": ["incoming/x"], "error": None}
    assert _pruned(plan) == "1 leftover of killed runs"
    assert _pruned({**plan, "versions": ["a"], "venvs": ["k"], "leftovers": []}) == "1 old version, 1 venv (a)"
    assert _pruned({**plan, "leftovers": []}) == "nothing" and _pruned({**plan, "error": "x"}) == "FAILED"


def test_the_shared_connection_socket_fits_a_unix_socket_path_and_is_removed(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary folder too deep for a socket's path (macOS's per-user one) gives way to /tmp; the folder goes
    when the deploy ends, also where no step opened the connection."""
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    client = SshClient(parse_target("root@127.0.0.1", 2222))
    with shared_connection(client) as shared:
        folder = Path(shared.control_path).parent
        assert folder.parent == Path("/tmp") and folder.is_dir() and folder.stat().st_mode & 0o077 == 0
        assert len(str(folder / ("x" * 40))) <= 100
        assert f"ControlPath={shared.control_path}" in shared.ssh("step", ["true"]).argv
    assert not folder.exists()
