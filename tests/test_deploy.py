"""`navigator deploy` against a real OpenSSH server started here on 127.0.0.1 (Debian's openssh-server; .ci/run
installs it) with throwaway host and client keys, real ssh/scp clients, a real venv built on the "target" (this
machine, through sshd) from a wheelhouse, a camera that is a video file and an autopilot that is real pymavlink
sockets: deploy, self-test, a second version reusing the venv, a failing self-test that keeps the old version,
rollback, status, dry run, and hostile input refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from navigator.cli import main
from onboard_support import FakeAutopilot, free_port, write_tiny_bundle, write_video

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "policies" / "pretrained" / "bundles"
SSHD = Path("/usr/sbin/sshd")

pytestmark = pytest.mark.skipif(not SSHD.exists() or shutil.which("ssh") is None,
                                reason="needs OpenSSH (openssh-server and its client; .ci/run installs them)")


class Sshd:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port(socket.SOCK_STREAM)
        self.key = folder / "client_key"
        self.known_hosts = folder / "known_hosts"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """sshd on 127.0.0.1 and a free port, accepting only a throwaway client key; a known-hosts file for it."""
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    folder = server.folder
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    host_public = (folder / "host_key.pub").read_text().split()
    server.known_hosts.write_text(f"[127.0.0.1]:{server.port} {host_public[0]} {host_public[1]}\n")
    config = folder / "sshd_config"
    config.write_text(f"""Port {server.port}
ListenAddress 127.0.0.1
HostKey {folder / 'host_key'}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {folder / 'authorized_keys'}
StrictModes no
PermitRootLogin prohibit-password
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
""")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder, made by its init script
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"sshd did not start: {process.communicate()[1].decode()}")
            time.sleep(0.1)
    yield server
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The onboard dependencies as wheels (pip download, from pip's cache and configured indexes), so that the
    target's venv installs with --no-index."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["onboard"]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(folder),
                    "-c", str(REPO / "constraints.txt"), *requirements], check=True, capture_output=True)
    return folder


def navigator(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def target_args(sshd: Sshd, folder: Path) -> list[str]:
    return ["--target", f"root@127.0.0.1:{folder}", "--port", str(sshd.port), "--identity", str(sshd.key),
            "--known-hosts", str(sshd.known_hosts)]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_deploy_self_test_second_version_failing_version_rollback_status(sshd: Sshd, wheelhouse: Path,
                                                                         tmp_path: Path, capsys) -> None:
    target = tmp_path / "target"
    camera = write_video(tmp_path / "camera.avi")
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
    if shutil.which("systemd-analyze"):  # the rendered unit, with its real ExecStart on this "target"
        verify = subprocess.run(["systemd-analyze", "verify", str(version / "navigator-onboard.service")],
                                capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr

    # A second version: camera and link kept, venv reused; no autopilot now, which only warns.
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "follow"), *common)
    assert code == 0, err
    second = json.loads(out)
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


def test_dry_run_prints_every_step_and_changes_nothing(sshd: Sshd, wheelhouse: Path, tmp_path: Path,
                                                       capsys) -> None:
    target = tmp_path / "target"
    code, out, err = navigator(capsys, "deploy", "--bundle", str(BUNDLES / "hike"), *target_args(sshd, target),
                               "--wheelhouse", str(wheelhouse), "--camera", "0", "--mavlink",
                               "udpin:0.0.0.0:14540", "--dry-run")
    assert code == 0, err
    assert not target.exists()
    for title in ("create the target folders", "copy the version folder", "create the venv",
                  "self-test the new version on the target", "switch to version"):
        assert title in out
    assert "&& python3 -m venv -- " in out and "scp -q -p -r" in out  # the exact argv, quoted as a shell line


def test_a_first_deploy_that_fails_leaves_no_trace(sshd: Sshd, wheelhouse: Path, tmp_path: Path, capsys) -> None:
    partial = tmp_path / "wheelhouse"  # rich alone: the venv's install cannot find numpy and fails
    partial.mkdir()
    shutil.copy(next(wheelhouse.glob("rich-*.whl")), partial)
    target = tmp_path / "target"
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
    (["--target", "root@127.0.0.1:dir\ntouch {marker}"], "control characters"),
    (["--target", "root@127.0.0.1:../../etc"], "'..' component"),
    (["--target", "root@127.0.0.1:/opt/-rf"], "starts with '-'"),
    (["--target", "root@127.0.0.1:~other/x"], "may not hold"),
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
