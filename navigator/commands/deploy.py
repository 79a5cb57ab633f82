"""Put an exported policy bundle on the drone's companion computer over SSH, as a new version beside the old ones,
self-tested there before the switch; roll back to the previous version; prune old versions; show what a target holds.

examples:
  navigator deploy --bundle bundles/fly-to-target --target pi@drone.local --camera 0 --mavlink /dev/ttyACM0,921600
  navigator deploy --bundle bundles/hike --target pi@drone.local                # camera, link, settings kept
  navigator deploy --bundle bundles/hike --target pi@drone.local --require-link # refuse without a heartbeat
  navigator deploy --bundle bundles/hike --target pi@10.0.0.2:/opt/navigator --wheelhouse wheels/aarch64
  navigator deploy --bundle bundles/hike --target pi@drone.local --dry-run      # what would change; reads the target
  navigator deploy --target pi@drone.local --rollback
  navigator deploy --target pi@drone.local --status
  navigator deploy --target pi@drone.local --prune --keep 3 --dry-run       # what pruning to 3 versions removes

The target is [USER@]HOST[:DIR] (DIR default ~/liquid-navigator, not under /tmp or /var/tmp, which the sandboxed
service sees empty; an IPv6 host in brackets: pi@[fe80::2]:DIR), reached with the system's OpenSSH client and key
authentication only; its host key must be known (connect once with ssh, or --known-hosts). A camera file is given by
its absolute path on the target.
The target needs python3 (3.11+, with venv) and, for a first deploy without --wheelhouse, a package index.
Steps, the target's layout and what is undone on failure: navigator/deploy/pipeline.py and layout.py. Every deploy
prunes the target to --keep versions (default 5, the active and previous ones always among them). Deploy, rollback
and prune lock the target while they run; a lock left by a killed run is taken over with --break-lock
(navigator/deploy/lock.py says what it checks).
Exit codes: 0 done, 1 a step failed (the target was left as it was, unless the message says otherwise),
2 bad input or a target locked by another run (nothing was changed), 130 interrupted (what the deploy had created is
undone, as after a failure). With --json a failure or interruption prints one JSON document too: the step, the error
and its fix, the undo's outcome and the self-test's report, if one ran.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navigator.commands.onboard import DEFAULT_PROBE_TIMEOUT_S, PROBE_TIMEOUT_S
from navigator.deploy.layout import DEFAULT_KEEP
from navigator.deploy.runner import Hooks
from navigator.errors import UserError, counted

if TYPE_CHECKING:
    from rich.console import Console

    from navigator.deploy.layout import TargetState
    from navigator.deploy.ssh import SshClient, Step, StepFailed
    from navigator.deploy.target import Target

# Options whose values name things on the companion computer, not here: a `~` in them is the target's to read (and
# refused there, as the service has no home to expand it from), never expanded on this machine.
TARGET_VALUES = ("target", "camera", "mavlink")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, metavar="[USER@]HOST[:DIR]",
                        help="the companion computer and the folder for the versions (default ~/liquid-navigator)")
    parser.add_argument("--port", type=int, default=22, help="SSH port")
    parser.add_argument("--identity", type=Path, metavar="KEY", help="SSH private key (default: ssh's own choice "
                                                                     "and agent)")
    parser.add_argument("--known-hosts", type=Path, metavar="FILE", help="known host keys to check the target "
                                                                         "against (default: ~/.ssh/known_hosts)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--bundle", type=Path, help="the bundle folder navigator export wrote: deploy it")
    what.add_argument("--rollback", action="store_true", help="return to the previous version")
    what.add_argument("--status", action="store_true", help="list the versions, the active one, what --keep "
                                                            "keeps, the lock and the service")
    what.add_argument("--prune", action="store_true", help="remove old versions down to --keep, and the venvs "
                                                           "and leftovers no kept version needs (a deploy does this)")
    parser.add_argument("--keep", type=int, metavar="N", help=f"versions to keep, the active and the previous one "
                                                              f"among them (default {DEFAULT_KEEP}, at least 2)")
    parser.add_argument("--break-lock", action="store_true", help="take over the target's lock from a run that was "
                                                                  "killed (refused while its process still runs "
                                                                  "here)")
    parser.add_argument("--config", type=Path, help="onboard settings (YAML) for the new version (default: the "
                                                    "active version's; launch/onboard.yaml on a first deploy)")
    parser.add_argument("--camera", metavar="SOURCE", help="the camera the service opens: device index, path or URL "
                                                           "(default: the active version's)")
    parser.add_argument("--mavlink", metavar="URL", help="the autopilot link the service opens, e.g. "
                                                         "/dev/ttyACM0,921600 (default: the active version's)")
    parser.add_argument("--wheelhouse", type=Path, metavar="DIR", help="install the dependencies from these wheels "
                                                                       "only (for a target without a package index)")
    parser.add_argument("--probe-timeout", type=float, metavar="S", help="how long the self-test waits for a camera "
                                                                         "frame and an autopilot heartbeat (default: "
                                                                         f"{DEFAULT_PROBE_TIMEOUT_S:g})")
    parser.add_argument("--require-camera", action="store_true", help="refuse the new version if the camera gives "
                                                                      "no frame in its self-test")
    parser.add_argument("--require-link", action="store_true", help="refuse the new version if no autopilot "
                                                                    "heartbeat arrives in its self-test")
    parser.add_argument("--dry-run", action="store_true", help="print every step that would change something, "
                                                               "with its exact argv, and run none of them; the "
                                                               "target is still read over SSH (what it has "
                                                               "decides the plan), so it must be reachable")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    from navigator.commands.common import output_console
    from navigator.deploy import pipeline
    from navigator.deploy.layout import check_keep
    from navigator.deploy.runner import DeployFailed, Interrupted
    from navigator.deploy.ssh import SshClient, StepFailed, shared_connection
    from navigator.deploy.target import (check_camera, check_key_file, check_known_hosts, check_mavlink,
                                         check_service_dir, not_a_file, parse_target)

    # Every check on what the user typed comes before the first connection.
    target = parse_target(args.target, args.port)
    identity = check_key_file(args.identity, "--identity") if args.identity is not None else None
    known_hosts = check_known_hosts(args.known_hosts) if args.known_hosts is not None else None
    keep = check_keep(args.keep) if args.keep is not None else DEFAULT_KEEP
    if args.keep is not None and args.rollback:
        raise UserError("--keep applies to a deploy, --prune and --status, not to --rollback")
    if args.break_lock and (args.status or args.dry_run):
        raise UserError("--status and --dry-run take no lock, so there is none to break")
    if args.bundle is not None or args.rollback:  # what the service will run from (--status, --prune only read it)
        check_service_dir(target.directory, "--target's DIR")
    if args.bundle is None:
        given = [flag for flag, value in (("--config", args.config), ("--camera", args.camera),
                                          ("--mavlink", args.mavlink), ("--wheelhouse", args.wheelhouse),
                                          ("--probe-timeout", args.probe_timeout))
                 if value is not None] + [flag for flag, on in (("--require-camera", args.require_camera),
                                                                ("--require-link", args.require_link)) if on]
        if not (args.rollback or args.status or args.prune):
            raise UserError("say what to do: --bundle B (deploy it), --rollback, --prune or --status")
        if given:
            raise UserError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to a deploy "
                            f"(--bundle)")
        if args.status and args.dry_run:
            raise UserError("--status changes nothing; it takes no --dry-run")
    else:
        _check_bundle_path(args.bundle)
        if args.camera is not None:
            check_camera(args.camera)
        if args.mavlink is not None:
            check_mavlink(args.mavlink)
        if args.config is not None and (problem := not_a_file(args.config)) is not None:
            raise UserError(f"--config {args.config}: {problem}; give the onboard settings file (YAML), e.g. "
                            f"launch/onboard.yaml")
        # The target's `navigator onboard --self-test` takes it: its default and range.
        if args.probe_timeout is not None and PROBE_TIMEOUT_S.problem(args.probe_timeout) is not None:
            raise UserError(f"--probe-timeout {args.probe_timeout:g}: give more than 0 and at most "
                            f"{PROBE_TIMEOUT_S.le:g} seconds")
    ssh = SshClient(target, identity, known_hosts)
    console = output_console(stderr=args.json)
    hooks = _ConsoleHooks(console, args.dry_run)
    # a dry run prints its steps to be copied: each on a connection of its own
    with nullcontext(ssh) if args.dry_run else shared_connection(ssh) as ssh:
        try:
            if args.status:
                return _show_status(pipeline.status(ssh, hooks), keep, target, console, args.json)
            if args.prune:
                plan = pipeline.prune(ssh, hooks, keep, args.dry_run, args.break_lock)
                _finish(console, args, {**plan.to_dict(), "dry_run": args.dry_run},
                        f"{'would remove' if args.dry_run else 'removed'} {plan.summary()} on {target}; kept "
                        f"{counted(len(plan.kept), 'version')}: {', '.join(plan.kept) or 'none'}")
                return 0
            if args.rollback:
                version, service = pipeline.rollback(ssh, hooks, args.dry_run, args.break_lock)
                _finish(console, args, {"active": version, "service": service, "dry_run": args.dry_run},
                        f"{'would switch' if args.dry_run else 'switched'} {target} back to version {version}; "
                        f"service: {service}")
                return 0
            request = pipeline.DeployRequest(args.bundle, args.config, args.camera, args.mavlink, args.wheelhouse,
                                             DEFAULT_PROBE_TIMEOUT_S if args.probe_timeout is None else
                                             args.probe_timeout, args.require_camera, args.require_link, args.dry_run,
                                             keep, args.break_lock)
            result = pipeline.deploy(request, ssh, hooks)
        except DeployFailed as error:
            failure = error.failure if isinstance(error.failure, StepFailed) else None
            _report_failure(args, ssh, str(error), step=failure and failure.step.title, failure=failure,
                            undone=error.undone)
            return 1
        except StepFailed as error:  # a read-only step, the lock, the switch of a rollback, a prune
            _report_failure(args, ssh, str(error), step=error.step.title, failure=error)
            return 1
        except Interrupted as interruption:  # main() then says "interrupted" and exits 130 (143 for SIGTERM)
            _report_failure(args, ssh, str(interruption), step=interruption.step, undone=interruption.undone,
                            interrupted=True)
            raise
        except KeyboardInterrupt:  # where nothing needed undoing: reading the target, or after the switch
            _report_failure(args, ssh, "interrupted", step=None, interrupted=True)
            raise
    if args.dry_run:
        _finish(console, args, {"dry_run": True, **result.to_dict()},
                f"dry run: {len(result.steps)} steps listed, none of those that change anything ran")
        return 0
    _finish(console, args, result.to_dict(),
            f"version {result.version} is active on {target} (venv {result.venv}"
            f"{', reused' if result.venv_reused else ', new'}); previous: {result.previous or 'none'}; "
            f"service: {result.service}; pruned: {_pruned(result.pruned)}")
    return 0 if not result.service.startswith("FAILED") else 1


def _check_bundle_path(bundle: Path) -> None:
    """A --bundle that exists and is no bundle folder (nor its policy.json), named for what it is."""
    if bundle.is_dir() or not bundle.exists() or bundle.name == "policy.json":
        return  # a folder, or what load_bundle reports on (a missing path, a policy.json)
    if bundle.suffix == ".pt":
        raise UserError(f"--bundle {bundle} is a checkpoint, not a bundle folder; export it first: navigator export "
                        f"--checkpoint {shlex.quote(str(bundle))} --out bundles/NAME, then deploy --bundle "
                        f"bundles/NAME")
    raise UserError(f"--bundle {bundle} is a file, not a bundle folder; give the folder navigator export wrote (it "
                    f"holds policy.json and policy.onnx)")


def _report_failure(args: argparse.Namespace, ssh: SshClient, error: str, *, step: str | None,
                    failure: StepFailed | None = None, undone: list[str] | None = None,
                    interrupted: bool = False) -> None:
    """Say on stderr what failed in `step` (`failure`: the StepFailed, when a step failed), how to fix a connection
    failure, and what the undo did (`undone`; None: no undo ran); with --json, also one JSON document on stdout
    (`target_restored`: whether every undo step succeeded; None when no undo ran). An interruption's own line is
    main's ("navigator deploy: interrupted")."""
    from navigator.commands.common import output_console, print_json
    from navigator.deploy.pipeline import SelfTestFailed

    # 255: ssh could not connect or log in (its own code); scp exits 1 for that too.
    connection = failure is not None and (failure.returncode == 255 or failure.step.argv[0] == "scp")
    fix = ssh.connection_fix(failure.stderr) if failure is not None and connection else None
    restored = all(line.endswith(": done") for line in undone or [])
    errors = output_console(stderr=True)
    if not interrupted:
        errors.print(f"navigator deploy: failed: {error}", highlight=False, markup=False)
    if fix is not None:
        errors.print(f"  fix: {fix}", highlight=False, markup=False)
    for line in undone or []:
        errors.print(f"  undo: {line}", highlight=False, markup=False)
    if undone is not None:
        errors.print("the target is as it was before this deploy" if restored else
                     "some of the undo FAILED (above): the target may hold what this deploy left; navigator deploy "
                     "--prune removes a killed deploy's leftovers", highlight=False, markup=False)
    if args.json:
        print_json({"failed": True, "interrupted": interrupted, "step": step, "error": error, "fix": fix,
                    "undo": undone, "target_restored": restored if undone is not None else None,
                    "self_test": failure.report if isinstance(failure, SelfTestFailed) else None})


def _pruned(pruned: dict[str, Any]) -> str:
    """What a deploy's pruning removed, in words: old versions, their venvs and what killed runs left."""
    from navigator.deploy.layout import PrunePlan

    if pruned["error"]:
        return "FAILED"
    removed = PrunePlan(**{key: value for key, value in pruned.items() if key != "error"}).summary()
    return f"{removed} ({', '.join(pruned['versions'])})" if pruned["versions"] else removed


def _finish(console: Console, args: argparse.Namespace, document: dict, line: str) -> None:
    from navigator.commands.common import print_json

    if args.json:
        print_json(document)
    else:
        console.print(line, highlight=False, markup=False)


class _ConsoleHooks(Hooks):
    """One numbered line per step (with its argv in a dry run), then how long it took: readable in a terminal and in
    a log file alike."""

    def __init__(self, console: Console, dry_run: bool) -> None:
        self.console, self.dry_run, self.count = console, dry_run, 0

    def begin(self, step: Step) -> None:
        self.count += 1
        self.console.print(f"[{self.count}] {step.title}", highlight=False, markup=False)
        if self.dry_run:
            self.console.print(f"    {step.shown()}", highlight=False, markup=False, soft_wrap=True)

    def end(self, step: Step, seconds: float, note: str = "") -> None:
        self.console.print(f"    done in {seconds:.1f} s{f': {note}' if note else ''}", highlight=False,
                           markup=False, style="dim")

    def note(self, text: str) -> None:
        self.console.print(f"    {text}", highlight=False, markup=False)


def _show_status(state: TargetState, keep: int, target: Target, console: Console, as_json: bool) -> int:
    from rich.table import Table

    from navigator.commands.common import print_json
    from navigator.deploy.layout import plan_prune
    from navigator.deploy.lock import describe

    plan = plan_prune(state, keep)
    lock = state.facts["lock"]
    problems = _status_problems(state)

    service = state.facts["service"]
    if not state.systemd:
        service_text = "systemd not available"
    else:
        service_text = f"{service['active'] or 'unknown'}, {service['enabled'] or 'not enabled'}" + \
            ("" if service["unit_installed"] else ", unit not installed")
    if as_json:
        print_json({"target": str(target), "dir": state.facts["dir"], "current": state.current,
                    "previous": state.previous, "versions": state.versions, "venvs": state.venvs,
                    "service": service_text, "systemd": state.systemd, "python": state.facts["python"],
                    "machine": state.facts["machine"], "prune": plan.to_dict(),
                    "lock": lock and {**lock, "description": describe(lock)}, "problems": problems})
        return 0
    if not state.versions:
        console.print(f"nothing deployed in {state.facts['dir']} on {target} yet: navigator deploy --bundle B "
                      f"deploys a first version there", highlight=False, markup=False)
    table = Table(title=f"{target}: {state.facts['dir']}")
    for column in ("version", "", "task", "model", "policy sha256", "venv", "self-test", f"--keep {keep}"):
        table.add_column(column)
    for name, version in state.versions.items():
        record = version["record"] or {}
        bundle = record.get("bundle", {})
        test = record.get("self_test") or {}
        mark = "active" if name == state.current else "previous" if name == state.previous else ""
        venv = version["venv"] or "none"
        table.add_row(name, mark, bundle.get("task", "?"), bundle.get("model", "?"),
                      bundle.get("onnx_sha256", "?")[:12], venv if venv in state.venvs else f"{venv} (missing)",
                      "passed" if test.get("passed") else "?", "kept" if name in plan.kept else "pruned")
    if state.versions:
        console.print(table)
    for problem in problems:
        console.print(problem, highlight=False, markup=False)
    if plan.venvs or plan.leftovers:
        console.print(f"--prune --keep {keep} also removes: {', '.join([*plan.venvs, *plan.leftovers])}",
                      highlight=False, markup=False)
    if lock is not None:
        console.print(f"locked by {describe(lock)}", highlight=False, markup=False)
    console.print(f"service: {service_text}; python {state.facts['python']} on {state.facts['machine']}",
                  highlight=False, markup=False)
    return 0


def _status_problems(state: TargetState) -> list[str]:
    """What --status must say beside its table: versions whose record cannot be read (shown as '?'), and `current`
    or `previous` links to versions that are gone."""
    problems = [f"version {name}: {version['record_problem']}: its task, model and self-test are unknown"
                for name, version in state.versions.items() if version.get("record_problem")]
    if state.current is not None and state.current not in state.versions:
        problems.append(f"current points to version {state.current}, which is missing: the service has no version "
                        f"to run; deploy a bundle again")
    if state.previous is not None and state.previous not in state.versions:
        problems.append(f"previous points to version {state.previous}, which is missing: --rollback has no version "
                        f"to return to")
    return problems
