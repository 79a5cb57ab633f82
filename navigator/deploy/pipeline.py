"""`navigator deploy`'s flows over SSH: deploy a bundle as a new version, roll back to the previous one, prune old
versions, and report the target's status. Layout on the target: navigator/deploy/layout.py. Deploy, rollback and
prune hold the target's lock from before they read it until they end (navigator/deploy/lock.py).

Deploy, in order (each step reported; the first failure undoes what the deploy created and names the step):
 1. here, before anything else: the bundle loads (`load_bundle`: schema, checksum, graph), the settings file loads,
    the wheelhouse holds wheels; the target and options passed their patterns (the command checked them);
 2. read the target (the probe: its Python, versions, venvs, links, service) and refuse one whose python3 is too old
    or lacks venv; settings not given are kept from the active version (a first deploy must give the camera and the
    MAVLink URL; its settings file defaults to launch/onboard.yaml);
 3. build the project's wheel here, in a temporary folder; its content names the venv the version needs;
 4. create DIR/versions/.staging-<ID>/ and copy the bundle, settings, runtime.env and rendered unit into it;
 5. check the sha256 of the copied policy.onnx against policy.json, on the target;
 6. unless the venv exists: upload the wheel (and the wheelhouse), create the venv, install
    `liquid-navigator[onboard]` from the wheel file (never by name from an index), mark it complete;
 7. link the version to its venv; stop the service if it runs (it holds the camera and the link);
 8. self-test the new version with its own venv: `navigator onboard --self-test --json` (settings, bundle, one
    inference; camera and heartbeat probes block only with --require-camera / --require-link);
 9. write the version's record, rename .staging-<ID> to <ID>, and switch: `previous` to the old version, `current` to
    the new one, each by a new symlink renamed over the old (atomic);
10. install the unit and restart the service where systemd runs and the user may (root or `sudo -n`); otherwise say
    so and how to do it by hand;
11. prune: keep `--keep` versions (the new one and the previous one among them) and remove the rest, the venvs no
    kept version links to and what killed runs left (layout.plan_prune). A failure here is reported, not undone:
    the new version is active.
Until step 9 nothing the service uses has changed; a failure (or an interruption: Ctrl-C, SIGTERM) before its end
points `current` and `previous` back where they were, removes the published version or the staging folder, a venv
built by this deploy, the uploaded wheels, the folders this deploy created (if empty), and starts the service again if
the deploy stopped it. After the switch nothing is undone: a failed restart is reported with the way back
(--rollback).

The local work folder (the wheel build, the version's files) is $TMPDIR/navigator-deploy-<PID>-XXXX, removed at the
end; a deploy killed outright (SIGKILL) cannot remove it, so each deploy removes those of this user whose process is
gone.

Rollback switches `current` and `previous` (so a second rollback returns) and restarts the service; the version it
returns to passed its self-test when it was deployed, and is not tested again (a rollback must be quick and must not
depend on the camera or link being free). Prune alone is step 11 on the target as it is.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import shutil
import socket
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.deploy.layout import (DEFAULT_KEEP, RUNTIME_ENV_KEYS, UNIT_NAME, Layout, PrunePlan, TargetState,
                                     new_version_id, plan_prune)
from navigator.deploy.lock import target_lock
from navigator.deploy.runner import Hooks, Runner
from navigator.deploy.service import (TEMPLATE, install_steps, manual_install, render_unit, restart_step,
                                      start_step, stop_step, unavailable_reason)
from navigator.deploy.ssh import SshClient, Step, StepFailed
from navigator.deploy.target import check_camera, check_mavlink, check_service_dir
from navigator.deploy.wheel import (EXTRA, build_step, built_wheel, copy_sources, source_tree, venv_key,
                                    wheelhouse_files)
from navigator.errors import UserError
from navigator.workers import process_runs

PROBE_SOURCE = Path(__file__).with_name("probe.py")  # sent to the target's python3, not imported here
PIP_TIMEOUT_S = 1800.0  # installing OpenCV and ONNX Runtime over a drone's Wi-Fi onto an SD card is slow
WORK_PREFIX = "navigator-deploy-"  # then the pid of the deploy that made it, '-' and tempfile's random part


class SelfTestFailed(StepFailed):
    """The self-test ran on the target and refused the version: `report` is its JSON report."""

    def __init__(self, step: Step, report: dict[str, Any]) -> None:
        failed = [check["name"] for check in report["checks"] if check["blocking"] and not check["ok"]]
        super().__init__(step, 1, f"blocking checks failed: {', '.join(failed)}")
        self.report = report


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy: the bundle folder; settings (None: kept from the active version, or for a first deploy
    launch/onboard.yaml and required camera/MAVLink); the wheelhouse (None: the target's package index); the
    self-test's probe timeout (s) and which probes block; `dry_run`: report the steps, change nothing; `keep`: the
    versions pruning leaves; `break_lock`: take over a lock whose holder is gone."""

    bundle: Path
    config: Path | None = None
    camera: str | None = None
    mavlink: str | None = None
    wheelhouse: Path | None = None
    probe_timeout_s: float = 5.0
    require_camera: bool = False
    require_link: bool = False
    dry_run: bool = False
    keep: int = DEFAULT_KEEP
    break_lock: bool = False


@dataclass(frozen=True)
class DeployResult:
    version: str
    previous: str | None
    venv: str
    venv_reused: bool
    self_test: dict[str, Any] | None  # the target's report; None in a dry run
    service: str  # "restarted", or why it was not
    pruned: dict[str, Any]  # PrunePlan.to_dict(), and "error": why pruning failed (None: it did not)
    steps: list[Step]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "previous": self.previous, "venv": self.venv,
                "venv_reused": self.venv_reused, "self_test": self.self_test, "service": self.service,
                "pruned": self.pruned,
                "steps": [{"title": step.title, "argv": list(step.argv)} for step in self.steps]}


def probe_step(ssh: SshClient) -> Step:
    """The read-only look at the target (navigator/deploy/probe.py, sent on stdin to its python3)."""
    return ssh.ssh("read the target", ["python3", "-", ssh.target.directory],
                   stdin=Path(PROBE_SOURCE).read_bytes(), timeout_s=60.0)


def read_target(runner: Runner, ssh: SshClient) -> TargetState:
    stdout = runner.run(probe_step(ssh), reading=True)
    try:
        return TargetState(json.loads(stdout or ""))
    except ValueError:
        raise StepFailed(probe_step(ssh), 0, f"the probe printed no JSON: {stdout[:200]!r}") from None


def _required_python(tree: Path) -> tuple[int, int]:
    spec = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec)
    assert match is not None, f"requires-python {spec!r} is not of the form >=X.Y"
    return int(match[1]), int(match[2])


def _check_target_python(state: TargetState, tree: Path) -> None:
    needed = _required_python(tree)
    if state.python[:2] < needed:
        raise UserError(f"the target's python3 is {state.facts['python']}; the runtime needs "
                        f"{needed[0]}.{needed[1]} or newer: install it there (and make it python3 on the PATH)")
    if not state.facts["python_venv"]:
        raise UserError("the target's python3 lacks the venv/ensurepip modules; install them there "
                        "(Debian, Ubuntu, Raspberry Pi OS: sudo apt install python3-venv)")


def _settings(request: DeployRequest, state: TargetState) -> dict[str, str]:
    """The camera source and MAVLink URL for the new version: given, or kept from the active one."""
    active = state.facts["runtime_env"]
    values = {"NAVIGATOR_CAMERA": request.camera or active.get("NAVIGATOR_CAMERA"),
              "NAVIGATOR_MAVLINK": request.mavlink or active.get("NAVIGATOR_MAVLINK")}
    missing = [flag for flag, key in (("--camera", "NAVIGATOR_CAMERA"), ("--mavlink", "NAVIGATOR_MAVLINK"))
               if not values[key]]
    if missing:
        raise UserError(f"the target has no active version to keep settings from: give {' and '.join(missing)} "
                        f"for this first deploy")
    # Kept values are checked again: the file on the target is not ours to trust blindly, and an older deploy may
    # have accepted a camera file this one refuses.
    if request.camera is None:
        check_camera(values["NAVIGATOR_CAMERA"], "the camera kept from the active version (--camera replaces it)")
    check_mavlink(values["NAVIGATOR_MAVLINK"])
    return values


def _stage_version(folder: Path, bundle: Any, config: Path | None, settings: dict[str, str], unit: str) -> None:
    """The local copy of what the version folder receives (its record comes after the self-test)."""
    (folder / "bundle").mkdir(parents=True)
    shutil.copy2(bundle.path / "policy.json", folder / "bundle" / "policy.json")
    (folder / "bundle" / bundle.manifest["onnx"]["file"]).write_bytes(bundle.graph)  # the bytes that were checked
    if config is not None:
        shutil.copy2(config, folder / "onboard.yaml")
    (folder / "runtime.env").write_text("".join(f"{key}={settings[key]}\n" for key in RUNTIME_ENV_KEYS))
    (folder / UNIT_NAME).write_text(unit)


def _remove_dead_work_folders(hooks: Hooks) -> None:
    """Remove the work folders of this user's deploys whose process is gone (killed outright: nothing else removes
    them). A pid reused since keeps its folder until that process ends too."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name[len(WORK_PREFIX):].partition("-")[0]
        if not pid.isdigit() or folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            continue
        if not process_runs(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            hooks.note(f"removed {folder}, left by a deploy that was killed (process {pid})")


def deploy(request: DeployRequest, ssh: SshClient, hooks: Hooks) -> DeployResult:
    """Deploy `request.bundle` to `ssh.target` (the module docstring lists the steps). UserError for bad input or
    an unsuitable target, before anything on it changes; runner.DeployFailed when a step fails (after undoing)."""
    from navigator.onboard.bundle import load_bundle
    from navigator.onboard.config import load_onboard_config

    bundle = load_bundle(request.bundle)
    if request.config is not None:
        load_onboard_config(request.config)
    wheelhouse = wheelhouse_files(request.wheelhouse) if request.wheelhouse is not None else None
    tree = source_tree()
    template = (tree / TEMPLATE).read_text()
    runner = Runner(hooks, request.dry_run)
    _remove_dead_work_folders(hooks)
    with (tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as work_dir,
          target_lock(runner, ssh, "deploy", request.break_lock)):
        work = Path(work_dir)
        state = read_target(runner, ssh)
        check_service_dir(state.layout.root, "the target folder")  # a relative DIR in a home folder under /tmp
        _check_target_python(state, tree)
        settings = _settings(request, state)
        config = request.config if request.config is not None or state.current else tree / "launch" / "onboard.yaml"
        runner.run(build_step(copy_sources(tree, work / "source"), work / "wheel"), reading=True)
        wheel = built_wheel(work / "wheel")
        key = venv_key(wheel, wheelhouse, state.facts["python"], state.facts["machine"])
        sha = bundle.manifest["onnx"]["sha256"]
        staging = {name.split("-", 1)[-1] for name in state.facts["staging"]}  # .staging-<ID> left by a killed run
        version = new_version_id(sha, set(state.versions) | staging)
        layout = state.layout
        _stage_version(work / "version", bundle, config, settings, render_unit(template, layout, state.user))
        try:
            self_test, reused, stopped = _prepare(runner, ssh, state, request, layout, version, key, work, wheel,
                                                  wheelhouse, sha, bundle.manifest["onnx"]["file"], settings)
            now = datetime.datetime.now(datetime.UTC)
            record = {"version": version, "deployed_at": now.isoformat(timespec="seconds"),
                      "deployed_from": f"{getpass.getuser()}@{socket.gethostname()}",
                      "bundle": {"source": str(bundle.path.resolve()), "task": bundle.task,
                                 "model": bundle.manifest["model"], "onnx_sha256": sha},
                      "wheel": wheel.name, "venv": key,
                      "settings": {"config": str(config) if config else f"kept from {state.current}", **settings},
                      "self_test": self_test}
            (work / "deploy.json").write_text(json.dumps(record, indent=1))
            runner.run(ssh.scp("record the version", [work / "deploy.json"], layout.staging(version) + "/"))
            # Each undo is registered before its step: a step cut short may have done its work on the target.
            runner.on_failure(ssh.ssh("remove the published version", ["rm", "-rf", "--", layout.version(version)]))
            runner.run(ssh.ssh("publish the version", ["mv", "-T", "--", layout.staging(version),
                                                       layout.version(version)]))
            runner.on_failure(_links_step(ssh, "point current and previous back", layout,
                                          {"current": state.current, "previous": state.previous}))
            runner.run(_links_step(ssh, f"switch to version {version}", layout,
                                   {**({"previous": state.current} if state.current else {}), "current": version}))
        except StepFailed as error:
            raise runner.undo(error) from None
        except KeyboardInterrupt:
            raise runner.undo_interrupted() from None
        runner.forget_undo()
        service = _restart_service(runner, ssh, state, layout.version(version) + "/" + UNIT_NAME, stopped)
        plan = plan_prune(state, request.keep, deployed=(version, key))
        try:
            _prune(runner, ssh, layout, plan)
            pruned = {**plan.to_dict(), "error": None}
        except StepFailed as error:
            hooks.note(f"pruning failed ({error}); the new version is active; navigator deploy --prune retries")
            pruned = {**plan.to_dict(), "error": str(error)}
    return DeployResult(version, state.current, key, reused, self_test, service, pruned, runner.planned)


def _prepare(runner: Runner, ssh: SshClient, state: TargetState, request: DeployRequest, layout: Layout,
             version: str, key: str, work: Path, wheel: Path, wheelhouse: list[Path] | None, sha: str,
             graph_name: str, settings: dict[str, str]) -> tuple[dict[str, Any] | None, bool, bool]:
    """Steps 4-8 of the module docstring: (the self-test's report, whether the venv was reused, whether the service
    was stopped). Registers the undo of everything it creates."""
    staging = layout.staging(version)
    venv = layout.venv(key)
    reused = key in state.venvs
    incoming = layout.incoming(version)
    existing = state.facts["existing"]
    # Folders this deploy creates, children before parents: undone with rmdir, which removes only empty folders
    # (nothing another deploy put there).
    created = [layout.path(name) for name in ("versions", "venvs", "logs", "incoming")
               if name not in existing and (name != "incoming" or not reused)]
    created += [] if state.facts["dir_exists"] else [layout.root]
    if created or not reused:
        # Undone in reverse, and registered before the step, which may be cut short half-way: the uploaded wheels'
        # folder, then the folders this deploy created, each only if it is there and empty.
        if created:
            runner.on_failure(ssh.ssh("remove the folders this deploy created", [
                "sh", "-c", 'for d; do if [ -d "$d" ]; then rmdir --ignore-fail-on-non-empty -- "$d" || exit 1; fi; '
                            'done', "sh", *created]))
        if not reused:
            runner.on_failure(ssh.ssh("remove the uploaded wheels", ["rm", "-rf", "--", incoming]))
        runner.run(ssh.ssh("create the target folders", ["mkdir", "-p", "--", *created,
                                                         *([] if reused else [incoming])]))
    runner.on_failure(ssh.ssh("remove the staging folder", ["rm", "-rf", "--", staging]))
    runner.run(ssh.scp("copy the version folder", [work / "version"], staging, recursive=True))
    if request.config is None and state.current:
        runner.run(ssh.ssh("keep the active version's settings", ["cp", "-p", "--",
                                                                    layout.path("current", "onboard.yaml"),
                                                                    staging + "/onboard.yaml"]))
    stdout = runner.run(ssh.ssh("check the policy's sha256 on the target",
                                ["sha256sum", "--", f"{staging}/bundle/{graph_name}"]))
    if stdout is not None and stdout.split()[:1] != [sha]:
        raise StepFailed(runner.planned[-1], 0, f"policy.onnx on the target has sha256 {stdout.split()[:1]}, "
                                                f"policy.json records {sha}: the copy is damaged")
    if reused:
        runner.hooks.note(f"venv {key} is there already: reused")
    else:
        runner.run(ssh.scp("upload the wheel" + (" and the wheelhouse" if wheelhouse else ""),
                           [wheel, *(wheelhouse or [])], incoming + "/", timeout_s=PIP_TIMEOUT_S))
        runner.on_failure(ssh.ssh("remove the venv this deploy began", ["rm", "-rf", "--", venv]))
        # A venv folder without .complete is what a killed deploy left: it is rebuilt from nothing.
        runner.run(ssh.ssh("create the venv", ["rm", "-rf", "--", venv], ["python3", "-m", "venv", "--", venv]))
        index = ["--no-index", "--find-links", incoming] if wheelhouse else []
        # --no-compile: byte-compiling every module installed (pymavlink's generated dialects above all) took
        # three quarters of the install; Python compiles what the runtime imports as the self-test first runs it.
        runner.run(ssh.ssh(f"install liquid-navigator[{EXTRA}] into the venv",
                           [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "--no-compile", *index, "--", f"{incoming}/{wheel.name}[{EXTRA}]"],
                           ["touch", "--", f"{venv}/.complete"], ["rm", "-rf", "--", incoming],
                           timeout_s=PIP_TIMEOUT_S))
    runner.run(ssh.ssh("point the version at its venv", ["ln", "-s", "--", f"../../venvs/{key}", f"{staging}/venv"]))
    stopped = state.can_manage_service and state.facts["service"]["active"] == "active"
    if stopped:
        runner.on_failure(start_step(ssh, state))  # first: a stop cut short may have stopped it
        runner.run(stop_step(ssh, state))
    argv = [f"{staging}/venv/bin/navigator", "onboard", "--self-test", "--json", "--bundle", f"{staging}/bundle",
            "--config", f"{staging}/onboard.yaml", "--camera", settings["NAVIGATOR_CAMERA"],
            "--mavlink", settings["NAVIGATOR_MAVLINK"], "--probe-timeout", f"{request.probe_timeout_s:g}",
            *(["--require-camera"] if request.require_camera else []),
            *(["--require-link"] if request.require_link else [])]
    step = ssh.ssh("self-test the new version on the target", argv, timeout_s=request.probe_timeout_s + 180)
    stdout = runner.run(step, accept=(0, 1))
    report = None
    if stdout is not None:
        try:
            report = json.loads(stdout)
        except ValueError:  # the runtime crashed before its report (its traceback went to stderr, not kept here)
            raise StepFailed(step, 1, f"the self-test printed no JSON report: {stdout[:200]!r}") from None
        for check in report["checks"]:
            runner.hooks.note(f"self-test {check['name']}: {'ok' if check['ok'] else 'FAILED'}"
                              f"{'' if check['ok'] or check['blocking'] else ' (not blocking)'}: {check['detail']}")
        if not report["passed"]:
            raise SelfTestFailed(step, report)
    return report, reused, stopped


def _links_step(ssh: SshClient, title: str, layout: Layout, links: dict[str, str | None]) -> Step:
    """The links `current`/`previous` pointed at their versions in the order given, each by a new link renamed over
    the old one (rename is atomic: the service sees the old version or the new one, never no link); a link whose
    version is None is removed (an undo of a first deploy)."""
    commands = []
    for name, version in links.items():
        temporary = layout.path(f".{name}.new")
        commands += ([["ln", "-sfn", "--", f"versions/{version}", temporary],
                      ["mv", "-T", "--", temporary, layout.path(name)]] if version is not None else
                     [["rm", "-f", "--", layout.path(name)]])
    return ssh.ssh(title, *commands)


def _restart_service(runner: Runner, ssh: SshClient, state: TargetState, unit_source: str, stopped: bool) -> str:
    """Install the unit and restart the service where possible; what happened, in words."""
    reason = unavailable_reason(state)
    if reason is not None:
        runner.hooks.note(f"service not installed or restarted: {reason}; to run it at boot: "
                          f"{manual_install(unit_source)}")
        return reason
    for step in install_steps(ssh, state, unit_source):
        try:
            runner.run(step)
        except StepFailed as error:
            return f"FAILED: {error}; the new version is active: navigator deploy --rollback returns to the " \
                   f"previous one"
    return "restarted" + (" (it was stopped for the self-test)" if stopped else "")


def _prune(runner: Runner, ssh: SshClient, layout: Layout, plan: PrunePlan) -> None:
    """Remove what `plan` removes (one step; none when there is nothing to remove), each path listed first."""
    for name in plan.versions:
        runner.hooks.note(f"prune: version {name}")
    for name in [*plan.venvs, *plan.leftovers]:
        runner.hooks.note(f"prune: {name if '/' in name else 'venvs/' + name}")
    if plan.versions or plan.venvs or plan.leftovers:
        runner.run(ssh.ssh(f"prune to {plan.keep} versions: remove {plan.summary()}",
                           ["rm", "-rf", "--", *plan.paths(layout)]))


def prune(ssh: SshClient, hooks: Hooks, keep: int = DEFAULT_KEEP, dry_run: bool = False,
          break_lock: bool = False) -> PrunePlan:
    """Step 11 of a deploy on the target as it is; what it removed (or, in a dry run, would remove)."""
    runner = Runner(hooks, dry_run)
    with target_lock(runner, ssh, "prune", break_lock):
        state = read_target(runner, ssh)
        plan = plan_prune(state, keep)
        _prune(runner, ssh, state.layout, plan)
    return plan


def rollback(ssh: SshClient, hooks: Hooks, dry_run: bool = False, break_lock: bool = False) -> tuple[str, str]:
    """Make the previous version current again (and the current one previous) and restart the service; (the
    version now active, what happened to the service). UserError when there is nothing to return to."""
    runner = Runner(hooks, dry_run)
    with target_lock(runner, ssh, "rollback", break_lock):
        state = read_target(runner, ssh)
        check_service_dir(state.layout.root, "the target folder")
        previous, current = state.previous, state.current
        if previous is None or previous not in state.versions:
            raise UserError(f"{ssh.target} has no previous version to return to"
                            + (f" ({previous} is gone)" if previous else ""))
        if state.versions[previous]["venv"] not in state.venvs:
            raise UserError(f"version {previous} on {ssh.target} has no complete venv; deploy its bundle again "
                            f"instead")
        runner.run(_links_step(ssh, f"switch to version {previous}", state.layout,
                               {**({"previous": current} if current else {}), "current": previous}))
        reason = unavailable_reason(state)
        if reason is not None:
            hooks.note(f"service not restarted: {reason}")
            return previous, reason
        try:
            runner.run(restart_step(ssh, state))
        except StepFailed as error:
            return previous, f"FAILED: {error}"
        return previous, "restarted"


def status(ssh: SshClient, hooks: Hooks) -> TargetState:
    """What the target holds: versions, the active and previous ones, venvs and the service's state."""
    return read_target(Runner(hooks), ssh)
