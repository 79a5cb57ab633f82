"""The camera reader: a real video file written by OpenCV, a real HTTP MJPEG stream that stalls and resumes, and a
source that cannot be opened. The newest frame is always at hand, and its age keeps counting while the source is
silent (the reader's blocked read never reaches the caller)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from onboard_support import write_video

from navigator.errors import UserError
from navigator.onboard.camera import CameraReader, parse_source

# Real time (frame ages and stalls are wall-clock):
# in the suite's serial pass (`pytest -m serial`), never beside another test file.
pytestmark = pytest.mark.serial


def test_parse_source() -> None:
    assert parse_source("0") == 0 and parse_source("http://x/camera.mjpg") == "http://x/camera.mjpg"


def test_video_file_frames_are_rgb_newest_and_paced(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", frames=10, fps=20.0)
    reader = CameraReader(str(video), backoff_s=0.05, backoff_max_s=0.05).start()
    try:
        first = reader.wait_first(5.0)
        assert first.image.shape == (240, 320, 3) and first.image.dtype == np.uint8
        assert first.image[100, 100, 0] > 150 and first.image[100, 100, 2] < 50  # red first: RGB
        time.sleep(0.6)
        newest = reader.latest()
        # Played at its 20 fps (about 12 frames in 0.6 s, not the hundreds a decoder manages; fewer if the machine
        # is loaded), started over at its end (10 frames), newest frame fresh.
        elapsed = newest.arrival - first.arrival
        assert 1 <= newest.sequence - first.sequence <= 20 * elapsed + 3
        assert time.monotonic() - newest.arrival < 1.0
        assert reader.reopens >= 1
        assert reader.wait_newer(newest.sequence, 1.0).sequence > newest.sequence
    finally:
        reader.close()


class MjpegStream:
    """An HTTP multipart MJPEG stream (what navigator sitl serves) at 30 fps that can be paused (the connection
    stays open, nothing is sent: a stalled camera)."""

    def __init__(self) -> None:
        self.paused = threading.Event()
        self.stop = threading.Event()
        ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))
        assert ok
        stream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not stream.stop.is_set():
                        if stream.paused.is_set():
                            time.sleep(0.02)
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg.tobytes() + b"\r\n")
                        time.sleep(1 / 30)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/camera.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def stalled_reader(read_timeout_s: float = 1.0) -> tuple[MjpegStream, CameraReader]:
    """A reader that got its first frame from a stream that then stalled (its read() now blocks, up to
    `read_timeout_s`)."""
    stream = MjpegStream()
    reader = CameraReader(stream.url, read_timeout_s=read_timeout_s, backoff_s=0.1, backoff_max_s=0.2).start()
    reader.wait_first(10.0)
    stream.paused.set()
    time.sleep(0.2)
    return stream, reader


def test_stalled_stream_ages_without_blocking_and_recovers() -> None:
    # read() blocks for up to 30 s: a wait that returned only with it would be unmistakable however loaded the
    # machine, so the bounds below are loose.
    stream, reader = stalled_reader(read_timeout_s=30.0)
    try:
        stalled_at = reader.latest().sequence
        started = time.monotonic()
        assert reader.wait_newer(stalled_at, 0.5) is None  # returns on time although read() is blocked
        assert time.monotonic() - started < 10.0
        assert time.monotonic() - reader.latest().arrival > 0.5  # the age grows: the runtime sees it stale
        stream.paused.clear()
        resumed = reader.wait_newer(stalled_at, 20.0)  # the blocked read() gets the resumed stream's frames
        assert resumed is not None and time.monotonic() - resumed.arrival < 10.0
    finally:
        reader.close()
        stream.close()


def test_source_that_cannot_open_is_a_user_error() -> None:
    reader = CameraReader("rtsp://127.0.0.1:1/none", backoff_s=0.05, backoff_max_s=0.1).start()  # nothing listens
    try:
        with pytest.raises(UserError, match="--camera rtsp://127.0.0.1:1/none: no frame within 0.5 s"):
            reader.wait_first(0.499995)  # the same figure as every other wait's message
    finally:
        reader.close()


@pytest.mark.parametrize("content", [b"not a video", b"PK\x03\x04" + bytes(4000), b""])
def test_a_file_that_is_no_video_is_refused_at_once(tmp_path: Path, content: bytes) -> None:
    # A checkpoint given as --camera used to be retried until the open timeout (10 s), and reported only as "no
    # frame"; a local file tells at once whether OpenCV can read it.
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    started = time.monotonic()
    with pytest.raises(UserError, match=f"--camera {path}: OpenCV cannot read a video frame from this file"):
        CameraReader(str(path))
    assert time.monotonic() - started < 3.0


def test_a_truncated_recording_is_refused_at_once(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", frames=10)  # its header without its frames:
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[:200])
    with pytest.raises(UserError, match="cannot read a video frame from this file"):
        CameraReader(str(cut))


@pytest.mark.parametrize(("source", "message"), [
    ("", "--camera is empty"),
    ("  ", "--camera is empty"),
    ("-1", "--camera -1: a device index is 0 or more"),
    ("missing.mp4", "--camera missing.mp4: no such file or device"),
    ("tests", "--camera tests is a folder, not a camera"),
    ("99", "--camera 99: this machine has no /dev/video99"),  # Linux names its cameras /dev/videoN
])
def test_sources_that_can_never_give_a_frame_are_refused_at_once(source: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        CameraReader(source)  # before any thread starts: no open_timeout_s wait


def test_sources_only_opencv_can_judge_are_left_to_it(tmp_path: Path) -> None:
    for source in ("rtsp://127.0.0.1:1/cam", str(tmp_path / "frame_%03d.png"), "videotestsrc ! appsink"):
        CameraReader(source)  # constructed, not refused


def test_close_waits_for_a_blocked_read_to_end() -> None:
    # Python ending while the reader thread is inside OpenCV aborts the process: close() must outlast a read that
    # hangs on a stalled stream (it ends within the read timeout).
    stream, reader = stalled_reader()
    reader.close()
    stream.close()
    assert not any(thread.name == "camera-reader" and thread.is_alive() for thread in threading.enumerate())
