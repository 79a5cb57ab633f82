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

<ID> is the UTC deploy time and the first 8 hex digits of the policy's sha256 (20250102-030405-1a2b3c4d), so that
versions sort by age and say which policy they hold.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import Any

UNIT_NAME = "navigator-onboard.service"
RUNTIME_ENV_KEYS = ("NAVIGATOR_CAMERA", "NAVIGATOR_MAVLINK")


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
