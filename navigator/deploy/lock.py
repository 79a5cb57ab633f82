"""One state-changing operation at a time per target: deploy, rollback and prune each hold DIR/.lock on the target
from before they read it until they end, failed or not; --status and --dry-run change nothing and take no lock.

The lock is a folder made with mkdir(2), atomic on every POSIX file system, by navigator/deploy/lock_remote.py (sent
to the target's python3, as the probe is). It holds holder.json: who (user@host), the local pid, the operation,
when, and a random token; release removes the lock only while its token is ours.

A lock stays behind when its deploy is killed (a closed laptop, a dropped link). It never expires by age: a slow
first install over a drone's Wi-Fi legitimately holds it for half an hour, and a lock taken over by age would let two
deploys write the same folders. Instead `--break-lock` takes over a lock, after checking what can be checked: when
its holder is this computer, its process must be gone; a holder elsewhere cannot be checked from here, so the
message tells the user to make sure nothing runs there. Breaking names the lock's token, so a lock that changed
hands since it was looked at is not broken.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from navigator.deploy.runner import Runner
from navigator.deploy.ssh import SshClient, Step, StepFailed
from navigator.errors import UserError
from navigator.workers import process_runs

LOCK_SOURCE = Path(__file__).with_name("lock_remote.py")  # sent to the target's python3, not imported here


class TargetLocked(UserError):
    """Another deploy, rollback or prune holds the target's lock (or the holder this computer runs is alive)."""


def describe(lock: dict[str, Any]) -> str:
    """A held lock in words (`lock`: the probe's or lock_remote's report: holder record and age)."""
    holder, age = lock["holder"], lock["age_s"]
    if holder is None:
        return f"an unknown holder (no holder.json: its deploy was killed while locking), {age} s ago"
    return (f"{holder.get('by', '?')} (pid {holder.get('pid', '?')}, {holder.get('operation', '?')}, since "
            f"{holder.get('since', '?')}, {age} s ago)")


def lock_step(ssh: SshClient, title: str, *words: str) -> Step:
    """lock_remote.py run on the target with `words` after DIR (`take HOLDER_JSON [TOKEN]` or `release TOKEN`)."""
    return ssh.ssh(title, ["python3", "-", ssh.target.directory, *words], stdin=LOCK_SOURCE.read_bytes(),
                   timeout_s=60.0)


def _take(runner: Runner, ssh: SshClient, holder: dict[str, Any], breaking: str | None) -> dict[str, Any]:
    title = "lock the target" if breaking is None else "break the stale lock and lock the target"
    stdout = runner.run(lock_step(ssh, title, "take", json.dumps(holder), *([] if breaking is None else [breaking])))
    return json.loads(stdout or "")


def _check_gone(lock: dict[str, Any], ssh: SshClient, runner: Runner) -> None:
    """Refuse to break a lock whose holder runs on this computer; say what could not be checked otherwise."""
    holder = lock["holder"] or {}
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if not process_runs(holder["pid"]):
            return
        raise TargetLocked(f"{ssh.target} is locked by {describe(lock)}, and process {holder['pid']} still runs on "
                           f"this computer: wait for it to end, or stop it, before --break-lock")
    runner.hooks.note(f"breaking the lock of {describe(lock)}: its holder is not this computer, so whether it still "
                      f"runs was not checked")


@contextmanager
def target_lock(runner: Runner, ssh: SshClient, operation: str, break_lock: bool = False) -> Iterator[None]:
    """Hold the target's lock for the body (nothing in a dry run). TargetLocked when another holds it; with
    `break_lock`, a lock whose holder is gone is taken over."""
    if runner.dry_run:
        runner.hooks.note("dry run: the target is not locked (a real run holds DIR/.lock while it runs)")
        yield
        return
    host = socket.gethostname()
    holder = {"by": f"{getpass.getuser()}@{host}", "host": host, "pid": os.getpid(), "operation": operation,
              "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "token": secrets.token_hex(8)}
    report = _take(runner, ssh, holder, None)
    if not report["taken"] and report["lock"] is not None and break_lock:
        _check_gone(report["lock"], ssh, runner)
        report = _take(runner, ssh, holder, (report["lock"]["holder"] or {}).get("token", ""))
    if not report["taken"]:
        held = describe(report["lock"]) if report["lock"] else "another operation that has just released it"
        raise TargetLocked(f"{ssh.target} is locked by {held}: another deploy, rollback or prune runs there. Wait "
                           f"for it; if it was killed, run this again with --break-lock (it checks that a holder on "
                           f"this computer is gone; for one elsewhere, make sure nothing runs there first)")
    try:
        yield
    finally:
        # A lock left behind blocks the next deploy, but an error here must not hide the operation's own outcome.
        try:
            stdout = runner.run(lock_step(ssh, "unlock the target", "release", holder["token"]))
        except StepFailed as error:
            runner.hooks.note(f"the lock stays on the target ({error}); the next run needs --break-lock")
        else:
            if not json.loads(stdout or "")["released"]:
                runner.hooks.note("the lock was no longer ours to release: someone broke it while this ran")
