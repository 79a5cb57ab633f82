"""The read-only look at a target that every deploy, rollback, prune and status starts with; this file is sent to the
target's `python3` on stdin (`ssh HOST python3 - DIR`) and prints one JSON document.

It reports: the SSH user, uid and home; the machine and the Python version (and whether its `venv` and `ensurepip`
modules are there: Debian splits them into python3-venv); DIR made absolute (a relative DIR is relative to the home
folder, ssh's working folder); the deployed versions with their records (or why a record cannot be read) and the
venv each points to; what `current` and `previous` point to; the venvs that finished building; the active version's
runtime settings; leftover staging folders, unfinished venvs and uploads (what `--prune` may remove); the deploy
lock, if one is held (its holder's record and age: navigator/deploy/lock.py); and the service: whether systemd runs
(/run/systemd/system exists, as sd_booted() checks), whether the unit is installed, its active and enabled states,
and whether `sudo -n` works for a user that is not root.

It changes nothing. It runs on whatever python3 the target has, so it uses the standard library only and the
syntax of old Pythons: deploy reads the version it reports and refuses one the runtime does not support, with that
version in the message.
"""

import json
import os
import platform
import pwd
import subprocess
import sys
import time

UNIT_NAME = "navigator-onboard.service"
UNIT_PATH = "/etc/systemd/system/" + UNIT_NAME


def _link_name(path):
    """The last component of what symlink `path` points to, or None (no link)."""
    try:
        return os.path.basename(os.readlink(path).rstrip("/"))
    except OSError:
        return None


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _record(path):
    """(a version's deploy.json as a dict, None) or (None, why it cannot be read, in words)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None, "its deploy.json is missing"
    except OSError as error:
        return None, "its deploy.json cannot be read (%s)" % (error.strerror or error)
    try:
        record = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "its deploy.json is damaged (not UTF-8 text)"
    except ValueError as error:
        if not data.strip():
            return None, "its deploy.json is empty (its deploy was cut short)"
        where = " at line %d" % error.lineno if getattr(error, "lineno", None) else ""
        return None, "its deploy.json is damaged (not valid JSON%s)" % where
    if not isinstance(record, dict):
        return None, "its deploy.json is damaged (it holds no record)"
    return record, None


def _lock(folder):
    """DIR/.lock as navigator/deploy/lock_remote.py reports it: the holder's record and the lock's age (None: no
    lock)."""
    path = os.path.join(folder, ".lock")
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return None
    holder = _read_json(os.path.join(path, "holder.json"))
    return {"holder": holder if isinstance(holder, dict) else None, "age_s": round(age)}


def _read_env(path):
    """KEY=VALUE lines (deploy writes them unquoted: its values hold no quotes or spaces)."""
    settings = {}
    try:
        with open(path) as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep and not key.startswith("#"):
                    settings[key] = value
    except OSError:
        pass
    return settings


def _run(argv):
    """(exit code, stdout stripped) of a command that may be missing; never raises."""
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = process.communicate(timeout=15)[0]
        return process.returncode, out.decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return None, ""


def _has_modules(*names):
    import importlib.util
    return all(importlib.util.find_spec(name) is not None for name in names)


def probe(directory):
    folder = os.path.abspath(os.path.expanduser(directory))
    versions_dir = os.path.join(folder, "versions")
    versions = {}
    staging = []
    if os.path.isdir(versions_dir):
        for name in sorted(os.listdir(versions_dir)):
            path = os.path.join(versions_dir, name)
            if name.startswith("."):
                staging.append(name)
            elif os.path.isdir(path) and not os.path.islink(path):
                record, problem = _record(os.path.join(path, "deploy.json"))
                versions[name] = {"venv": _link_name(os.path.join(path, "venv")), "record": record,
                                  "record_problem": problem}
    venvs_dir = os.path.join(folder, "venvs")
    venv_folders = sorted(os.listdir(venvs_dir)) if os.path.isdir(venvs_dir) else []
    venvs = [name for name in venv_folders if os.path.isfile(os.path.join(venvs_dir, name, ".complete"))]
    incoming_dir = os.path.join(folder, "incoming")
    current = _link_name(os.path.join(folder, "current"))
    systemd = os.path.isdir("/run/systemd/system")
    service = {"unit_installed": os.path.isfile(UNIT_PATH), "active": None, "enabled": None}
    if systemd:
        service["active"] = _run(["systemctl", "is-active", UNIT_NAME])[1] or None
        service["enabled"] = _run(["systemctl", "is-enabled", UNIT_NAME])[1] or None
    return {
        "user": pwd.getpwuid(os.getuid()).pw_name, "uid": os.getuid(), "home": os.path.expanduser("~"),
        "machine": platform.machine(), "python": "%d.%d.%d" % sys.version_info[:3],
        "python_venv": _has_modules("venv", "ensurepip"),
        "dir": folder, "dir_exists": os.path.isdir(folder),
        "existing": sorted(name for name in ("versions", "venvs", "logs", "incoming")
                           if os.path.isdir(os.path.join(folder, name))),
        "versions": versions, "staging": staging, "venvs": venvs, "venv_folders": venv_folders,
        "incoming": sorted(os.listdir(incoming_dir)) if os.path.isdir(incoming_dir) else [],
        "lock": _lock(folder),
        "current": current, "previous": _link_name(os.path.join(folder, "previous")),
        "runtime_env": _read_env(os.path.join(folder, "current", "runtime.env")) if current else {},
        "systemd": systemd, "service": service,
        "sudo": systemd and os.getuid() != 0 and _run(["sudo", "-n", "true"])[0] == 0,
    }


if __name__ == "__main__":
    json.dump(probe(sys.argv[1]), sys.stdout)
