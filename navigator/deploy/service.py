"""The systemd unit of the onboard runtime: rendered from launch/navigator-onboard.service for one target, and the
target commands that install it and (re)start the service.

The unit is a system unit (/etc/systemd/system), so that the runtime starts at boot with no one logged in, and runs
as the SSH user who owns the deploy folder (`User=`), never as root unless that is who deploys. Installing it needs
root: the SSH user is root, or has passwordless sudo (`sudo -n`, never a password prompt). When systemd does not run
on the target (a container, a bench image) or the user cannot use sudo, nothing is installed or started: the
rendered unit stays in the version's folder, and deploy says how to install it by hand.

Placeholders in the template are @NAME@ (systemd's own syntax owns `$`, `%` and braces); `render_unit` refuses a
template with a placeholder left over, and values with characters systemd would read specially were refused
earlier (navigator/deploy/target.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from navigator.deploy.layout import UNIT_NAME, Layout, TargetState
from navigator.deploy.ssh import SshClient, Step

UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
TEMPLATE = Path("launch") / UNIT_NAME  # in the source tree


def render_unit(template: str, layout: Layout, user: str) -> str:
    """The unit for deploy folder `layout.root` and service user `user`. ValueError for a template placeholder
    that has no value."""
    text = template.replace("@DIR@", layout.root).replace("@USER@", user)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise ValueError(f"the unit template has placeholders without a value: {', '.join(left)}")
    return text


def install_steps(ssh: SshClient, state: TargetState, unit_source: str) -> list[Step]:
    """Steps that install the unit file `unit_source` (a path on the target) and restart the service with the
    version `current` points to."""
    run = state.privileged
    return [
        ssh.ssh("install the systemd unit",
                run(["install", "-m", "0644", "-T", unit_source, UNIT_PATH]), run(["systemctl", "daemon-reload"]),
                run(["systemctl", "enable", UNIT_NAME])),
        restart_step(ssh, state),
    ]


def restart_step(ssh: SshClient, state: TargetState) -> Step:
    return ssh.ssh("restart the service", state.privileged(["systemctl", "restart", UNIT_NAME]))


def stop_step(ssh: SshClient, state: TargetState) -> Step:
    """Stop the running service, so that a self-test can open the camera and the autopilot link it holds."""
    return ssh.ssh("stop the service for the self-test", state.privileged(["systemctl", "stop", UNIT_NAME]))


def start_step(ssh: SshClient, state: TargetState) -> Step:
    return ssh.ssh("start the service again", state.privileged(["systemctl", "start", UNIT_NAME]))


def unavailable_reason(state: TargetState) -> str | None:
    """Why the service cannot be managed on this target (None: it can)."""
    if not state.systemd:
        return "systemd not available"
    if not state.can_manage_service:
        return f"{state.user} is not root and cannot use sudo without a password"
    return None


def manual_install(unit_source: str) -> str:
    """The commands that install and start the service by hand, for a target where deploy could not."""
    return (f"sudo install -m 0644 -T {shlex.quote(unit_source)} {UNIT_PATH} && sudo systemctl daemon-reload && "
            f"sudo systemctl enable --now {UNIT_NAME}")
