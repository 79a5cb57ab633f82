"""The camera reader: a thread that reads any OpenCV source (a device index, a video file, a network stream URL)
and keeps only the newest frame, RGB, with the monotonic time it arrived.

`cv2.VideoCapture.read()` can block for seconds when a network source drops, and FFmpeg queues frames when the
reader falls behind; so the control loop never calls it. The thread reads as fast as frames come (draining any
queue: only the newest is kept), and the loop takes the newest frame and judges its age by its arrival time, which
keeps counting while `read()` hangs. A source that fails (cannot open, read fails, stream ends, no frame for
`read_timeout_s` on a network stream) is released and reopened, waiting `backoff_s` first and doubling the wait up to
`backoff_max_s`; a good frame resets the wait. A video file plays at its own frame rate and starts over at its end.

`policy_view` is what a camera's frames must give the policy: its trained field of view, at no fewer pixels than it
was trained with.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from navigator.errors import UserError
from policies.preprocessing import ImageSpec

if TYPE_CHECKING:  # onnxruntime, which the bundle module imports, is not needed to read a camera
    from navigator.onboard.bundle import Bundle

# How long opening and reading a local video file may take while it is checked: a file answers at once, and a file
# on a stalled network mount should not hold the command for longer than this.
OPEN_TIMEOUT_MS_FILE = 3000


@dataclass(frozen=True)
class Frame:
    """One camera frame: uint8 (height, width, 3) RGB, its arrival (time.monotonic() s) and sequence number."""

    image: np.ndarray
    arrival: float
    sequence: int


def _quiet_capture_logs() -> None:
    """A source that keeps failing is retried every few seconds, and FFmpeg and OpenCV would print a line for each
    try until the runtime stops; the reader keeps the failure in `last_error` for the runtime to report. FFmpeg's
    level is read when a capture opens; OpenCV's is set here, whenever cv2 was imported. A level the user set in the
    environment is kept."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def parse_source(source: str) -> int | str:
    """A device index ("0") as int; anything else (file path, URL) unchanged."""
    return int(source) if source.strip().isdigit() else source


def check_source(source: str) -> None:
    """UserError for a source that can be known at once never to give a frame: empty, a negative device index, a
    path to a file or device that does not exist, or a file OpenCV cannot read a frame from. A URL (`scheme://`), an
    image sequence (`%d`) or a GStreamer pipeline (`!`) is left to OpenCV, which alone can tell."""
    fix = "give a device index (0 for /dev/video0), a video file or a stream URL (rtsp://..., http://...)"
    stripped = source.strip()
    if not stripped:
        raise UserError(f"--camera is empty; {fix}")
    if stripped.startswith("-") and stripped[1:].isdigit():
        raise UserError(f"--camera {source}: a device index is 0 or more (0 is /dev/video0); {fix}")
    if stripped.isdigit():
        device = f"/dev/video{int(stripped)}"
        if sys.platform.startswith("linux") and os.path.isdir("/dev") and not os.path.exists(device):
            raise UserError(f"--camera {source}: this machine has no {device} (is the camera plugged in? `ls "
                            f"/dev/video*` lists the cameras it has); {fix}")
        return
    if "://" not in source and "%" not in source and "!" not in source:
        if not os.path.exists(source):
            raise UserError(f"--camera {source}: no such file or device; {fix}")
        if os.path.isdir(source):
            raise UserError(f"--camera {source} is a folder, not a camera; {fix}")
        if os.path.isfile(source):
            _check_video_file(source, fix)


def _check_video_file(path: str, fix: str) -> None:
    """UserError for a file OpenCV cannot read a frame from (a checkpoint, a text file, a truncated video). A local
    file answers at once, unlike a stream, so this costs milliseconds; otherwise the reader would retry it until the
    open timeout and report only that no frame came."""
    _quiet_capture_logs()
    capture = _capture(path, OPEN_TIMEOUT_MS_FILE)
    try:
        readable = capture is not None and capture.read()[0]
    finally:
        if capture is not None:
            capture.release()
    if not readable:
        raise UserError(f"--camera {path}: OpenCV cannot read a video frame from this file (it is not a video, or a "
                        f"damaged one); {fix}")


def _capture(target: int | str, timeout_ms: int) -> cv2.VideoCapture | None:
    """An opened capture of `target`, or None. A device index opens with OpenCV's default backend; a path or URL
    with FFmpeg, whose waits are bounded by `timeout_ms`, else (an image sequence, a GStreamer pipeline) any backend."""
    if isinstance(target, int):
        capture = cv2.VideoCapture(target)
    else:
        capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        if not capture.isOpened():
            capture = cv2.VideoCapture(target)
    if capture.isOpened():
        return capture
    capture.release()
    return None


def policy_view(bundle: Bundle, width: int, height: int, hfov_deg: float) -> ImageSpec:
    """The preprocessing from frames of `width` x `height` pixels at a horizontal field of view `hfov_deg` to the
    policy of `bundle` (`Bundle.image_spec_for`), refusing (UserError) frames that cannot give the policy its view:
    narrower than its trained field of view, or so small that the crop to that view has fewer pixels than the
    trained image (a 16x12 video would be blown up to 64x48, a blur the policy never saw in training)."""
    spec = bundle.image_spec_for(width, height, hfov_deg)
    _, _, crop_height, crop_width = spec.crop_box()
    if crop_width < spec.output_width or crop_height < spec.output_height:
        fraction = math.tan(math.radians(spec.output_hfov_deg) / 2) / math.tan(math.radians(hfov_deg) / 2)
        need = math.ceil(spec.output_width / fraction)
        raise UserError(f"a {width}x{height} camera with {hfov_deg:g} deg of horizontal field of view gives the policy "
                        f"of {bundle.path} only {crop_width}x{crop_height} pixels of its trained "
                        f"{spec.output_hfov_deg:g} deg view, which it was trained to see at {spec.output_width}x"
                        f"{spec.output_height}; use frames at least {need} pixels wide at that field of view (a higher "
                        f"camera resolution)")
    return spec


class CameraReader:
    """Reads `source` on a daemon thread. `start()` begins; `latest()` and `wait_newer()` give the newest frame;
    `close()` stops (never blocks on a hung read: the thread releases the capture itself when the read returns)."""

    def __init__(self, source: str, *, read_timeout_s: float = 3.0, backoff_s: float = 0.5,
                 backoff_max_s: float = 5.0) -> None:
        check_source(source)
        _quiet_capture_logs()
        self.source = source
        self._target = parse_source(source)
        self._is_file = isinstance(self._target, str) and os.path.isfile(self._target)
        self._read_timeout_s = read_timeout_s
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-reader", daemon=True)
        self.reopens = 0
        self.last_error: str | None = None

    def start(self) -> CameraReader:
        self._thread.start()
        return self

    def latest(self) -> Frame | None:
        with self._condition:
            return self._latest

    def wait_newer(self, sequence: int, timeout: float) -> Frame | None:
        """The newest frame if its sequence number is above `sequence`, waiting up to `timeout` s for one; else
        None."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._latest is None or self._latest.sequence <= sequence:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._condition.wait(remaining)
            return self._latest

    def wait_first(self, timeout: float) -> Frame:
        """The first frame, or a UserError naming the source when none arrives within `timeout` s."""
        frame = self.wait_newer(-1, timeout)
        if frame is None:
            detail = f" ({self.last_error})" if self.last_error else ""
            raise UserError(f"--camera {self.source}: no frame within {timeout:.3g} s{detail}; check the device "
                            f"index, file or stream URL (and that the stream is running)")
        return frame

    def close(self) -> None:
        """Stop the thread and wait for it to end. A read or open in progress ends within the read timeout (OpenCV's
        own, set on network sources), so the wait is bounded by it; the thread must not outlive the caller: Python
        ending while a daemon thread is still inside OpenCV aborts the process ("terminate called without an active
        exception")."""
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(self._read_timeout_s + 1.0)

    def _open(self) -> cv2.VideoCapture | None:
        capture = _capture(self._target, int(self._read_timeout_s * 1000))
        if capture is None:
            self.last_error = "cannot open the source"
        return capture

    def _run(self) -> None:
        backoff = self._backoff_s
        sequence = 0
        while not self._stop.is_set():
            capture = self._open()
            if capture is not None:
                period = 0.0
                if self._is_file:
                    fps = capture.get(cv2.CAP_PROP_FPS)
                    period = 1.0 / fps if 0 < fps < 1000 else 1.0 / 30.0
                next_time = time.monotonic()
                try:
                    while not self._stop.is_set():
                        ok, bgr = capture.read()
                        if not ok or bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
                            self.last_error = "read failed or the stream ended"
                            break
                        if period:  # a file: play at its frame rate, not as fast as it decodes
                            next_time += period
                            self._stop.wait(max(0.0, next_time - time.monotonic()))
                        sequence += 1
                        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic(), sequence)
                        with self._condition:
                            self._latest = frame
                            self._condition.notify_all()
                        backoff = self._backoff_s
                finally:
                    capture.release()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2.0, self._backoff_max_s)
            self.reopens += 1
