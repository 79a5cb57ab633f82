"""The runtime's self-test (`navigator onboard --self-test`): can this computer fly this bundle with these settings?

Checks, in order, each reported with a verdict and a one-line detail:
- `config`: the onboard settings file loads (every key known, every value in range);
- `bundle`: the bundle loads: schema, the sha256 of policy.onnx against policy.json, the graph's inputs and outputs;
- `inference`: the policy runs one step through ONNX Runtime (zero image and state) and gives a finite action in
  [-1, 1];
- `camera`: the camera source gives a first frame within the probe timeout, and a frame of that size can give the
  policy its trained field of view at no fewer pixels than its trained image (`camera.policy_view`);
- `mavlink`: an autopilot heartbeat arrives on the MAVLink URL within the probe timeout.

`config`, `bundle` and `inference` always block (a computer that cannot run the policy must never fly it).
`camera` and `mavlink` block only when required (`require_camera`, `require_link`): on a bench they are often
unreachable, which is worth knowing but is no reason to refuse a policy. A source that can never work blocks
whatever is required: a camera file that is missing, a folder or no video, frames too small for the policy's view, a
MAVLink URL that is no URL or names a host that does not resolve; the runtime would refuse them at start, and a
service would only restart into the same refusal. The camera and the link are probed at the
same time, each on its own thread that opens and closes its source, so the probes cost one timeout (a TCP link slow
to accept its connection may add one more), and no reader thread outlives the self-test, whatever fails: Python
ending while the camera's thread is inside OpenCV would abort the process.

Torch-free: numpy, onnxruntime, OpenCV and pymavlink, through the runtime's own modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import UserError


@dataclass(frozen=True)
class Check:
    """One check's verdict: `name` (config, bundle, inference, camera, mavlink), `ok`, whether a failure `blocking`
    (refuses the version), and `detail` (what was found, or why it failed; "not checked" when an earlier check
    failed or the source was not given)."""

    name: str
    ok: bool
    blocking: bool
    detail: str


@dataclass
class SelfTestReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no blocking check failed."""
        return all(check.ok or not check.blocking for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [vars(check) for check in self.checks]}


@dataclass(frozen=True)
class SelfTestRequest:
    """What to test: the bundle folder, the settings file (None: built-in defaults), the camera source and MAVLink
    URL (None: not probed), the probe timeout (s) and which probes block."""

    bundle: Path
    config: Path | None
    camera: str | None
    mavlink: str | None
    probe_timeout_s: float = 5.0
    require_camera: bool = False
    require_link: bool = False


def run_self_test(request: SelfTestRequest, load_config: Callable[[], Any]) -> SelfTestReport:
    """Run every check of the module docstring and return the verdicts; never raises for a failed check.
    `load_config` builds the OnboardConfig from `request.config` (and the command's flags, such as --camera-fov),
    raising UserError for a settings file the runtime refuses."""
    report = SelfTestReport()
    try:
        config = load_config()
        report.checks.append(Check("config", True, True, str(request.config or "built-in defaults")))
    except UserError as error:
        report.checks.append(Check("config", False, True, str(error)))
        config = None

    bundle = _check_policy(request, config, report)
    # The two probes run side by side, each with the whole timeout.
    with ThreadPoolExecutor(2) as pool:
        camera_check = pool.submit(_camera_check, request, bundle, config)
        link_check = pool.submit(_link_check, request)
        report.checks += [camera_check.result(), link_check.result()]
    return report


def _check_policy(request: SelfTestRequest, config: Any, report: SelfTestReport) -> Any:
    """The bundle and inference checks; the loaded bundle, or None when it did not load."""
    from navigator.onboard.bundle import STATE_FIELDS, BundlePolicy, load_bundle

    try:
        bundle = load_bundle(request.bundle)
    except UserError as error:
        report.checks += [Check("bundle", False, True, str(error)),
                          Check("inference", False, True, "not checked: the bundle did not load")]
        return None
    sha = bundle.manifest["onnx"]["sha256"]
    report.checks.append(Check("bundle", True, True, f"{bundle.manifest['model']} for {bundle.task}, policy.onnx "
                                                     f"sha256 {sha[:12]}... as recorded"))
    if config is not None and config.camera.hfov_deg is not None:  # what the runtime refuses before any camera
        try:
            bundle.check_hfov(config.camera.hfov_deg)
        except UserError as error:
            report.checks.append(Check("field of view", False, True, str(error)))
    try:
        policy = BundlePolicy(bundle, threads=config.threads if config is not None else 1)
        spec = bundle.image_spec
        started = time.perf_counter()
        action = policy.step(np.zeros((spec.output_height, spec.output_width, 3), np.uint8),
                             np.zeros(len(STATE_FIELDS), np.float32), bundle.dt)
        elapsed_ms = (time.perf_counter() - started) * 1000
    except Exception as error:  # ONNX Runtime raises its own types for a graph that fails at run time
        report.checks.append(Check("inference", False, True, f"ONNX Runtime failed: {str(error).splitlines()[0]}"))
        return bundle
    finite = bool(np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0))
    detail = f"action {[round(float(v), 3) for v in action]} in {elapsed_ms:.1f} ms"
    report.checks.append(Check("inference", finite, True, detail if finite else f"not finite in [-1, 1]: {detail}"))
    return bundle


def _camera_check(request: SelfTestRequest, bundle: Any, config: Any) -> Check:
    from navigator.onboard.camera import CameraReader, policy_view

    blocking = request.require_camera
    if request.camera is None:
        return Check("camera", False, blocking, "not checked: no camera source given")
    if config is None:
        return Check("camera", False, blocking, "not checked: the settings did not load")
    try:
        camera = CameraReader(request.camera, read_timeout_s=config.camera.read_timeout_s,
                              backoff_s=config.camera.reopen_backoff_s,
                              backoff_max_s=config.camera.reopen_backoff_max_s)
    except UserError as error:  # a missing video file, an empty source: a setting error, unless a device is unplugged
        source = request.camera.strip()
        unplugged = source.isdigit() or source.startswith("/dev/")
        return Check("camera", False, blocking if unplugged else True, str(error))
    try:
        frame = camera.start().wait_first(request.probe_timeout_s)
    except UserError as error:
        return Check("camera", False, blocking, str(error))
    finally:
        camera.close()
    height, width = frame.image.shape[:2]
    detail = f"{request.camera}: {width}x{height}"
    if bundle is not None:
        hfov = config.camera.hfov_deg if config.camera.hfov_deg is not None else bundle.image_spec.input_hfov_deg
        try:
            policy_view(bundle, width, height, hfov)
        except UserError as error:  # this camera can never give the policy its view
            return Check("camera", False, True, str(error))
        detail += f" at {hfov:g} deg gives the policy its view"
    return Check("camera", True, blocking, detail)


def _link_check(request: SelfTestRequest) -> Check:
    from navigator.onboard.link import MavlinkLink

    blocking = request.require_link
    if request.mavlink is None:
        return Check("mavlink", False, blocking, "not checked: no MAVLink URL given")
    try:  # a URL that is no URL or names no host: a setting error, never a link that is down
        link = MavlinkLink(request.mavlink).check_address()
    except UserError as error:
        return Check("mavlink", False, True, str(error))
    try:
        # A busy UDP port, a missing serial device or pyserial, no heartbeat: the check's verdict.
        status = link.open(request.probe_timeout_s).wait_for_autopilot(request.probe_timeout_s)
    except UserError as error:
        return Check("mavlink", False, blocking, str(error))
    finally:
        link.close()
    assert status.autopilot is not None
    return Check("mavlink", True, blocking, f"{status.autopilot.name} (system {status.system_id}) answers, in "
                                            f"{status.mode_name()}")
