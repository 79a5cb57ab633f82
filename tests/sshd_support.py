"""A real OpenSSH server on loopback as a deploy target, for tests/test_deploy.py and bench/bench_deploy.py. Not a
test module (no `test_` prefix)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.onboard_support import free_port

SSHD = Path("/usr/sbin/sshd")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sshd:
    """A running server: its folder, port, the only client key it accepts and a known-hosts file naming it."""

    folder: Path
    port: int

    @property
    def key(self) -> Path:
        return self.folder / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"


@contextmanager
def running_sshd(folder: Path) -> Iterator[Sshd]:
    """sshd on 127.0.0.1 and a free port, configured and keyed in `folder` (throwaway host and client keys),
    stopped on leaving. RuntimeError when it does not start within 10 s."""
    server = Sshd(folder, free_port(socket.SOCK_STREAM))
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
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise RuntimeError(f"sshd did not start: {process.communicate()[1].decode()}") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(10)


def download_wheelhouse(folder: Path) -> Path:
    """The onboard dependencies as wheels in `folder` (pip download, from pip's cache and configured indexes), so
    that a target's venv installs with --no-index."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["onboard"]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(folder),
                    "-c", str(REPO / "constraints.txt"), *requirements], check=True, capture_output=True)
    return folder
