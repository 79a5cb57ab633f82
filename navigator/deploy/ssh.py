"""The system's OpenSSH client (`ssh`, `scp`) as argument lists, and one `Step` type that every deploy action is:
a title, the exact argv, and what it needs on stdin.

Nothing here goes through a local shell: steps run with `subprocess.run(argv)`. The remote end is another matter:
ssh sends its command to the target as ONE string that the login shell there parses, so `remote_command` builds that
string from argument lists with `shlex.quote` on every word, joined only by the fixed operators this module writes
(`&&`). Values reaching it were checked first (navigator/deploy/target.py).

Connection options, always: `BatchMode=yes` (key authentication only; a password or passphrase prompt would hang an
unattended deploy, so it fails instead), `StrictHostKeyChecking=yes` (an unknown or changed host key stops the
deploy: connect once with plain `ssh` to check and accept the key, or give `--known-hosts`), `IdentitiesOnly` with
`--identity` (only that key is offered), a connect timeout and keep-alives (a drone's Wi-Fi drops; a dead link ends
the step rather than hanging it). The user's ~/.ssh/config still applies (host aliases, jump hosts).

A deploy is a dozen short steps; each new connection costs a key exchange (a second or more over a drone's Wi-Fi),
so `shared_connection` has them share one: OpenSSH's connection multiplexing (`ControlMaster=auto`), the first step
opening the connection through a socket in a private folder of this computer, `ControlPersist` keeping it a minute
after the last step at most (bounded, should this process be killed), and `ssh -O exit` closing it at the end.

A remote command does not end when its ssh client does: without a terminal, sshd sends it no SIGHUP, so a self-test
or a pip install would go on after an interrupted deploy released the lock, racing its undo. So every remote command
that does not need stdin runs under `HANGUP_WATCH`: the client's stdin is a pipe this process holds open, unwritten,
until the step ends; when the client goes (Ctrl-C, a kill, even SIGKILL of this process, which closes the pipe), the
remote stdin reaches end of file and the watch sends SIGTERM to the command's process group (sshd makes each session
a group of its own), then SIGKILL to what still runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from navigator.deploy.target import Target

CONNECT_TIMEOUT_S = 15
# `sh -c HANGUP_WATCH sh COMMANDS`: stdin moves to fd 3 for the watch alone (a background job's stdin would be
# /dev/null), COMMANDS run with /dev/null; `kill 0` signals the whole process group, COMMANDS' children included. The
# watch ignores the SIGTERM itself and sends SIGKILL 5 s later: a program may take SIGTERM as a stop request it
# serves only later (the runtime's self-test, waiting for a heartbeat).
HANGUP_WATCH = ('exec 3<&0 </dev/null; { cat >/dev/null; trap "" TERM; kill -TERM 0; sleep 5; kill -KILL 0; } <&3 '
                '>/dev/null 2>&1 & exec 3<&-; eval "$1"')
STEP_TIMEOUT_S = 600.0  # a step that takes longer is stuck (pip on a slow link gets its own, longer limit)
SHARED_CONNECTION_IDLE_S = 60  # how long a shared connection outlives its last step, should `ssh -O exit` not run
# A unix socket's path is at most 107 bytes on Linux (104 on macOS); %C names it with a 40-character hash.
_SOCKET_PATH_MAX = 100


@dataclass(frozen=True)
class Step:
    """One action of a deploy, rollback or status: `title` for progress and errors, `argv` run as is, `stdin` fed to
    it (bytes), `timeout_s` after which it counts as failed."""

    title: str
    argv: tuple[str, ...]
    stdin: bytes | None = field(default=None, repr=False)
    timeout_s: float = STEP_TIMEOUT_S
    env: tuple[tuple[str, str], ...] = ()  # variables added to this process's environment

    def shown(self) -> str:
        """The argv as one copy-pastable shell line (for --dry-run and error messages)."""
        variables = [f"{name}={shlex.quote(value)}" for name, value in self.env]
        return " ".join([*variables, shlex.join(self.argv)]) + (" < (script on stdin)" if self.stdin else "")


class StepFailed(Exception):
    """A step that exited non-zero or timed out: `step`, its exit code (None: timed out) and the end of what it
    wrote to stderr."""

    def __init__(self, step: Step, returncode: int | None, stderr: str) -> None:
        self.step, self.returncode, self.stderr = step, returncode, stderr.strip()
        tail = " | ".join(self.stderr.splitlines()[-3:]) or "no message"
        how = f"timed out after {step.timeout_s:g} s" if returncode is None else f"exit code {returncode}"
        super().__init__(f"{step.title} failed ({how}): {tail}")


def run_step(step: Step, accept: tuple[int, ...] = (0,)) -> str:
    """Run `step`; its stdout (text). StepFailed when it times out or exits with a code not in `accept`. ssh's exit
    code 255 means the connection itself failed (its message says why: host key, authentication, network)."""
    env = {**os.environ, **dict(step.env)} if step.env else None
    # Without input, stdin is a pipe held open until the step ends (see HANGUP_WATCH); the write end is not
    # inheritable, so only this process holds it.
    stdin_read, stdin_write = os.pipe() if step.stdin is None else (None, None)
    try:
        result = subprocess.run(step.argv, input=step.stdin, stdin=stdin_read, capture_output=True,
                                timeout=step.timeout_s, env=env)
    except subprocess.TimeoutExpired as error:
        raise StepFailed(step, None, (error.stderr or b"").decode(errors="replace")) from None
    except FileNotFoundError as error:  # no ssh/scp on this computer
        raise StepFailed(step, 127, f"{error.filename}: not installed") from None
    finally:
        for fd in (stdin_read, stdin_write):
            if fd is not None:
                os.close(fd)
    if result.returncode not in accept:
        raise StepFailed(step, result.returncode, result.stderr.decode(errors="replace"))
    return result.stdout.decode(errors="replace")


def remote_command(*commands: Sequence[str]) -> str:
    """The command string for the target's shell: each command's words quoted, commands joined by `&&` (the next
    runs only if the previous succeeded)."""
    return " && ".join(shlex.join(command) for command in commands)


@dataclass(frozen=True)
class SshClient:
    """ssh and scp argument lists for one target. `identity`: a private key file (None: ssh's defaults and agent);
    `known_hosts`: a known-hosts file to use instead of the user's; `control_path`: the socket of a shared
    connection (`shared_connection`), None for a connection per step."""

    target: Target
    identity: Path | None = None
    known_hosts: Path | None = None
    control_path: str | None = None

    def _options(self) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ServerAliveInterval=5",
                   "-o", "ServerAliveCountMax=3"]
        if self.control_path is not None:
            options += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}",
                        "-o", f"ControlPersist={SHARED_CONNECTION_IDLE_S}"]
        if self.identity is not None:
            options += ["-o", "IdentitiesOnly=yes", "-i", str(self.identity)]
        if self.known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        return options

    def _ssh_argv(self, *arguments: str) -> list[str]:
        user = ["-l", self.target.user] if self.target.user else []
        return ["ssh", *self._options(), "-p", str(self.target.port), *user, *arguments]

    def ssh(self, title: str, *commands: Sequence[str], stdin: bytes | None = None,
            timeout_s: float = STEP_TIMEOUT_S) -> Step:
        """A step running `commands` (argument lists, joined by &&) on the target."""
        command = remote_command(*commands)
        if stdin is None:
            command = shlex.join(["sh", "-c", HANGUP_WATCH, "sh", command])
        return Step(title, tuple(self._ssh_argv("--", self.target.ssh_host(), command)), stdin, timeout_s)

    def scp(self, title: str, sources: Sequence[Path], remote_path: str, *, recursive: bool = False,
            timeout_s: float = STEP_TIMEOUT_S) -> Step:
        """A step copying local `sources` to `remote_path` on the target (scp's SFTP mode: the remote path is not
        read by a shell there)."""
        argv = ["scp", "-q", "-p", *(["-r"] if recursive else []), *self._options(), "-P", str(self.target.port),
                "--", *(str(source) for source in sources), self.target.scp_location(remote_path)]
        return Step(title, tuple(argv), None, timeout_s)

    def connection_fix(self, stderr: str) -> str | None:
        """How to fix the connection failure ssh or scp described in `stderr` (an unknown or changed host key, a
        refused key, an unknown host, a refused or timed-out connection), in one line; None for anything else."""
        host, port = self.target.host, self.target.port
        port_option = ["-p", str(port)] if port != 22 else []
        destination = f"{self.target.user}@{host}" if self.target.user else host  # ssh takes no [brackets] here
        known = str(self.known_hosts) if self.known_hosts is not None else "~/.ssh/known_hosts"
        connect = shlex.join(["ssh", *port_option, destination])
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
            entry = f"[{host}]:{port}" if port != 22 else host  # how known_hosts names a host on another port
            forget = shlex.join(["ssh-keygen", "-R", entry, *(["-f", known] if self.known_hosts else [])])
            return (f"the target's host key differs from the one {known} records: if the target was reinstalled, "
                    f"check its new fingerprint, remove the old key ({forget}) and connect once with {connect}; "
                    f"otherwise someone may be in between: do not deploy")
        if "Host key verification failed" in stderr:
            scan = shlex.join(["ssh-keyscan", *port_option, host])
            return (f"the target's host key is not in {known}: connect once with {connect} and check the fingerprint "
                    f"it shows, or give --known-hosts FILE written by {scan} > FILE (check it: ssh-keygen -lf FILE)")
        if "Permission denied (" in stderr:  # ssh's "(publickey)"; a remote file's is "path: Permission denied"
            identity = ["-i", str(self.identity)] if self.identity is not None else []
            copy = shlex.join(["ssh-copy-id", *identity, *port_option, destination])
            return (f"the target refused the key: give --identity KEY with a key it trusts, or install yours there "
                    f"with {copy} (asks for a password once)")
        if "subsystem request failed" in stderr or "scp: Connection closed" in stderr:
            return ("the target's SSH server offers no SFTP, which scp copies through: enable it in its "
                    "/etc/ssh/sshd_config (Subsystem sftp internal-sftp) and restart sshd")
        if "Could not resolve hostname" in stderr:
            return "the host name is unknown here: check its spelling, or give the target's address (e.g. 10.0.0.2)"
        if any(text in stderr for text in ("Connection refused", "Connection timed out", "No route to host")):
            return (f"nothing answered on port {port}: check that the target is on and reachable, that "
                    f"its SSH server runs, and --port if it listens on another")
        return None


@contextmanager
def shared_connection(client: SshClient) -> Iterator[SshClient]:
    """`client` with its steps sharing one connection (module docstring), closed on leaving; `client` itself where
    OpenSSH cannot multiplex here (Windows' client has no unix sockets) or no temporary folder is short enough for
    the socket's path (macOS's per-user one is too deep; /tmp then serves)."""
    folder = _socket_folder()
    if folder is None:
        yield client
        return
    shared = replace(client, control_path=os.path.join(folder, "%C"))
    try:
        yield shared
    finally:
        try:  # no connection was opened where no step ran: ssh then says so, which is no problem
            subprocess.run(shared._ssh_argv("-O", "exit", "--", client.target.ssh_host()), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=CONNECT_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError):
            pass  # the connection closes by itself once idle for SHARED_CONNECTION_IDLE_S
        shutil.rmtree(folder, ignore_errors=True)


def _socket_folder() -> str | None:
    """A new private folder (mode 0700: the socket is this user's alone) short enough to hold the shared
    connection's socket, named by %C's 40-character hash; None where there is none, or on Windows."""
    if os.name == "nt":
        return None
    for parent in (None, "/tmp"):
        if parent is not None and not os.path.isdir(parent):
            continue
        folder = tempfile.mkdtemp(prefix="navigator-ssh-", dir=parent)
        if len(os.path.join(folder, "x" * 40)) <= _SOCKET_PATH_MAX:
            return folder
        os.rmdir(folder)
    return None
