"""The target's side of the deploy lock (navigator/deploy/lock.py). Like the probe, this file is sent to the
target's `python3` on stdin and prints one JSON document:

    python3 - DIR take HOLDER_JSON [TOKEN]    lock DIR for the holder described by HOLDER_JSON
    python3 - DIR release TOKEN               unlock DIR, if the lock is still the one TOKEN took

take: creates DIR if it is missing, then DIR/.lock with mkdir(2), which is atomic: of two deploys at once exactly one
creates it. The holder's record goes into DIR/.lock/holder.json, with whether this take created DIR, so that
releasing after a failed first deploy leaves no empty DIR behind. Prints {"taken": true}, or {"taken": false, "lock":
{"holder": the record (null while it is being written, or if its writer was killed in between), "age_s": seconds
since the lock was made, by the target's clock, so that the two computers' clocks need not agree}}. With TOKEN, a
lock whose holder has that token (one the user chose to break, after deploy checked its holder is gone) is removed
first: renamed away, which only one of two breakers can do, then deleted.

release: removes DIR/.lock if its holder's token is TOKEN (a lock someone broke and took since stays theirs), then
DIR if the take created it and it is empty.

Standard library only, and old Pythons' syntax, as the probe.
"""

import json
import os
import shutil
import sys
import time


def _state(lock):
    """The lock as the probe reports it (None: no lock)."""
    try:
        age = time.time() - os.stat(lock).st_mtime
    except OSError:
        return None
    try:
        with open(os.path.join(lock, "holder.json")) as handle:
            holder = json.load(handle)
    except (OSError, ValueError):
        holder = None
    return {"holder": holder if isinstance(holder, dict) else None, "age_s": round(age)}


def _token(state):
    return ((state or {}).get("holder") or {}).get("token", "")


def take(folder, holder, breaking):
    lock = os.path.join(folder, ".lock")
    try:
        os.makedirs(folder)
        created = True
    except FileExistsError:
        created = False
    if breaking is not None and _token(_state(lock)) == breaking:
        away = "%s.broken-%d" % (lock, os.getpid())
        try:
            os.rename(lock, away)
        except OSError:
            pass  # gone already: released by its holder, or broken by someone else
        else:
            shutil.rmtree(away, ignore_errors=True)
    try:
        os.mkdir(lock)
    except FileExistsError:
        return {"taken": False, "lock": _state(lock)}
    holder["created_dir"] = created
    with open(os.path.join(lock, "holder.json"), "w") as handle:
        json.dump(holder, handle)
    return {"taken": True}


def release(folder, token):
    lock = os.path.join(folder, ".lock")
    state = _state(lock)
    if state is None or _token(state) != token:
        return {"released": False, "lock": state}
    shutil.rmtree(lock)
    if state["holder"].get("created_dir"):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty: the deploy left a version there
    return {"released": True}


if __name__ == "__main__":
    folder = os.path.abspath(os.path.expanduser(sys.argv[1]))
    if sys.argv[2] == "take":
        report = take(folder, json.loads(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        report = release(folder, sys.argv[3])
    json.dump(report, sys.stdout)
