"""Where things live on the target, and what the target reported about them (the probe's JSON, typed).

    DIR/versions/<ID>/             one deployed version, complete and never changed after its self-test passed:
        bundle/policy.onnx, bundle/policy.json
        onboard.yaml               the runtime settings it was tested with
        runtime.env                NAVIGATOR_CAMERA=..., NAVIGATOR_MAVLINK=... (the service's environment file)
        navigator-onboard.service  the systemd unit as rendered for this target
        deploy.json                its record: when, from which bundle and wheel, the self-test's verdicts
        venv -> ../../venvs/<KEY>  the virtual environment it runs in
    DIR/versions/.staging-<ID>/    a version being deployed (renamed to <ID> once its self-test passed)
    DIR/venvs/<KEY>/               a venv per (wheel content, dependency source, target Python): a second deploy
                                   of a new bundle with the same code reuses it. `.complete` is written last
    DIR/incoming/<ID>/             wheels uploaded for a venv being built (removed afterwards)
    DIR/current -> versions/<ID>   what the service runs; replaced atomically (ln -s to a new name, mv -T over it)
    DIR/previous -> versions/<ID>  what `navigator deploy --rollback` returns to
    DIR/logs/                      flight logs (the only folder the service may write)
    DIR/.lock/                     held by the deploy, rollback or prune that runs (navigator/deploy/lock.py)

<ID> is the UTC deploy time and the first 8 hex digits of the policy's sha256 (20250102-030405-1a2b3c4d), so that
versions sort by age and say which policy they hold.

Pruning (`plan_prune`) bounds what piles up: of the versions it keeps `current`, `previous` and the newest others,
`keep` in all, and removes the rest, every venv no kept version links to, and what killed runs left (staging folders,
unfinished venvs, uploads). It runs under the lock, so nothing it removes belongs to a deploy in progress.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import Any

from navigator.errors import UserError, counted

UNIT_NAME = "navigator-onboard.service"
RUNTIME_ENV_KEYS = ("NAVIGATOR_CAMERA", "NAVIGATOR_MAVLINK")
DEFAULT_KEEP = 5
MIN_KEEP = 2  # current and previous: rollback must always have somewhere to return to


@dataclass(frozen=True)
class Layout:
    """The absolute paths of one target folder (`root`, as the probe resolved it)."""

    root: str

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    @property
    def versions(self) -> str:
        return self.path("versions")

    @property
    def venvs(self) -> str:
        return self.path("venvs")

    @property
    def logs(self) -> str:
        return self.path("logs")

    @property
    def current(self) -> str:
        return self.path("current")

    @property
    def previous(self) -> str:
        return self.path("previous")

    def version(self, version_id: str) -> str:
        return self.path("versions", version_id)

    def staging(self, version_id: str) -> str:
        return self.path("versions", f".staging-{version_id}")

    def venv(self, key: str) -> str:
        return self.path("venvs", key)

    def incoming(self, version_id: str) -> str:
        return self.path("incoming", version_id)


def new_version_id(onnx_sha256: str, taken: set[str], now: float | None = None) -> str:
    """A version id for a deploy at `now` (UTC, default: now) of the policy with this sha256, not in `taken`."""
    base = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{onnx_sha256[:8]}"
    candidate, suffix = base, 2
    while candidate in taken:  # the same policy deployed twice within a second
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate


@dataclass(frozen=True)
class TargetState:
    """The probe's report (navigator/deploy/probe.py documents each field)."""

    facts: dict[str, Any]

    @property
    def layout(self) -> Layout:
        return Layout(self.facts["dir"])

    @property
    def user(self) -> str:
        return self.facts["user"]

    @property
    def is_root(self) -> bool:
        return self.facts["uid"] == 0

    @property
    def python(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.facts["python"].split("."))

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        return self.facts["versions"]

    @property
    def current(self) -> str | None:
        return self.facts["current"]

    @property
    def previous(self) -> str | None:
        return self.facts["previous"]

    @property
    def venvs(self) -> list[str]:
        return self.facts["venvs"]

    @property
    def systemd(self) -> bool:
        return bool(self.facts["systemd"])

    @property
    def can_manage_service(self) -> bool:
        """systemd runs and this user may install and restart a system unit (root, or passwordless sudo)."""
        return self.systemd and (self.is_root or bool(self.facts["sudo"]))

    def privileged(self, argv: list[str]) -> list[str]:
        """`argv` as the target user may run a system-wide command: as is for root, through `sudo -n` otherwise."""
        return argv if self.is_root else ["sudo", "-n", *argv]


def check_keep(keep: int) -> int:
    if keep < MIN_KEEP:
        raise UserError(f"--keep {keep}: at least {MIN_KEEP} versions stay (the active one and the previous one, "
                        f"for --rollback)")
    return keep


@dataclass(frozen=True)
class PrunePlan:
    """What pruning keeps and removes: version ids (`kept` newest first), venv keys, and leftovers of killed runs
    (paths relative to DIR)."""

    keep: int
    kept: list[str]
    versions: list[str]
    venvs: list[str]
    leftovers: list[str]

    def paths(self, layout: Layout) -> list[str]:
        """Everything to remove, absolute: versions before the venvs they link to."""
        return [*(layout.version(v) for v in self.versions), *(layout.venv(k) for k in self.venvs),
                *(layout.path(p) for p in self.leftovers)]

    def summary(self) -> str:
        removed = [counted(len(self.versions), "old version") if self.versions else "",
                   counted(len(self.venvs), "venv") if self.venvs else "",
                   f"{counted(len(self.leftovers), 'leftover')} of killed runs" if self.leftovers else ""]
        return ", ".join(part for part in removed if part) or "nothing"

    def to_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "kept": self.kept, "versions": self.versions, "venvs": self.venvs,
                "leftovers": self.leftovers}


def plan_prune(state: TargetState, keep: int, deployed: tuple[str, str] | None = None) -> PrunePlan:
    """What pruning `state` down to `keep` versions removes; `deployed`: (version, venv key) of a version this run
    has just made current (the state was read before it existed)."""
    links = {name: version["venv"] for name, version in state.versions.items()}
    current, previous = state.current, state.previous
    if deployed is not None:
        links[deployed[0]] = deployed[1]
        current, previous = deployed[0], state.current
    protected = [name for name in (current, previous) if name in links]
    others = sorted((name for name in links if name not in protected), reverse=True)  # ids sort by deploy time
    kept = protected + others[:max(keep - len(protected), 0)]
    linked = {links[name] for name in kept}
    return PrunePlan(keep, sorted(kept, reverse=True), sorted(set(links) - set(kept)),
                     [key for key in state.facts["venv_folders"] if key not in linked],
                     [f"versions/{name}" for name in state.facts["staging"]]
                     + [f"incoming/{name}" for name in state.facts["incoming"]])
