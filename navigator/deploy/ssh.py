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
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from navigator.deploy.target import Target

CONNECT_TIMEOUT_S = 15
STEP_TIMEOUT_S = 600.0  # a step that takes longer is stuck (pip on a slow link gets its own, longer limit)


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
    try:
        result = subprocess.run(step.argv, input=step.stdin, capture_output=True, timeout=step.timeout_s, env=env)
    except subprocess.TimeoutExpired as error:
        raise StepFailed(step, None, (error.stderr or b"").decode(errors="replace")) from None
    except FileNotFoundError as error:  # no ssh/scp on this computer
        raise StepFailed(step, 127, f"{error.filename}: not installed") from None
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
    `known_hosts`: a known-hosts file to use instead of the user's."""

    target: Target
    identity: Path | None = None
    known_hosts: Path | None = None

    def _options(self) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ServerAliveInterval=5",
                   "-o", "ServerAliveCountMax=3"]
        if self.identity is not None:
            options += ["-o", "IdentitiesOnly=yes", "-i", str(self.identity)]
        if self.known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        return options

    def ssh(self, title: str, *commands: Sequence[str], stdin: bytes | None = None,
            timeout_s: float = STEP_TIMEOUT_S) -> Step:
        """A step running `commands` (argument lists, joined by &&) on the target."""
        user = ["-l", self.target.user] if self.target.user else []
        argv = ["ssh", *self._options(), "-p", str(self.target.port), *user, "--", self.target.ssh_host(),
                remote_command(*commands)]
        return Step(title, tuple(argv), stdin, timeout_s)

    def scp(self, title: str, sources: Sequence[Path], remote_path: str, *, recursive: bool = False,
            timeout_s: float = STEP_TIMEOUT_S) -> Step:
        """A step copying local `sources` to `remote_path` on the target (scp's SFTP mode: the remote path is not
        read by a shell there)."""
        argv = ["scp", "-q", "-p", *(["-r"] if recursive else []), *self._options(), "-P", str(self.target.port),
                "--", *(str(source) for source in sources), self.target.scp_location(remote_path)]
        return Step(title, tuple(argv), None, timeout_s)
