"""The onboard camera as an HTTP MJPEG stream that `cv2.VideoCapture(url)` opens: `http://HOST:PORT/camera.mjpg`.

stdlib `ThreadingHTTPServer`, one thread per client. The simulation publishes each frame (JPEG-encoded once, in the
publisher's thread); every client thread sends only the newest frame when it is ready for one, so there is no queue
anywhere: a slow client skips frames and never stalls the simulation or the other clients. `/camera.jpg` serves the
newest frame as one image (a browser or `curl` check).

Measured with OpenCV 4.x's FFmpeg on loopback (320x240, quality 95): `VideoCapture` opens in a few milliseconds once a
frame exists, and a frame reaches `read()` about 1 ms after it is published. Frames are JPEG-encoded at high quality
(default 95) since compression artefacts are an input the policy never trained on. Clients get BGR images, as OpenCV
always gives; the JPEG itself has the true colours.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

BOUNDARY = "frame"
PATH = "/camera.mjpg"
SNAPSHOT_PATH = "/camera.jpg"
# A client thread wakes at least this often to notice that the server is closing.
_WAKE_S = 0.25
# A client that accepts no bytes for this long is disconnected (its thread would otherwise hang forever).
_SEND_TIMEOUT_S = 5.0


def encode_jpeg(image_rgb: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes at `quality` (1..100)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG frame")
    return data.tobytes()


def corrupt_jpeg(data: bytes, rng: np.random.Generator) -> bytes:
    """The same JPEG with its image data (everything after the headers, up to the end marker) replaced by random
    bytes: what a damaged frame from a real camera link looks like to a decoder."""
    marker = data.find(b"\xff\xda")  # start of scan: the headers and the scan header before the data stay intact
    start = len(data) // 4 if marker < 0 else marker + 2 + int.from_bytes(data[marker + 2 : marker + 4], "big")
    garbage = rng.integers(0, 256, len(data) - 2 - start, dtype=np.uint8).tobytes()
    return data[:start] + garbage + data[-2:]


class CameraStream:
    """Serves published JPEG frames at http://host:port/camera.mjpg (port 0: any free port) from a background
    thread until `close()`. Raises OSError (EADDRINUSE) when the port is taken."""

    def __init__(self, host: str, port: int) -> None:
        self._condition = threading.Condition()
        self._frame: bytes | None = None
        self._sequence = 0
        self._closed = False
        self.clients = 0  # connected stream clients
        stream = self
        handler = type("Handler", (_Handler,), {"stream": stream})
        self._server = ThreadingHTTPServer((host, port), handler, bind_and_activate=False)
        self._server.daemon_threads = True
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError:
            self._server.server_close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": _WAKE_S},
                                        name="sitl-camera-stream", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}{PATH}"

    def publish(self, jpeg: bytes) -> None:
        """Make `jpeg` the newest frame; clients waiting for one get it."""
        with self._condition:
            self._frame = jpeg
            self._sequence += 1
            self._condition.notify_all()

    def newest(self, after: int) -> tuple[int, bytes | None]:
        """(sequence, frame) of the newest frame once one newer than `after` exists; waits at most a fraction of a
        second (frame None: none yet, or closing)."""
        with self._condition:
            self._condition.wait_for(lambda: self._sequence > after or self._closed, timeout=_WAKE_S)
            if self._closed or self._sequence <= after:
                return after, None
            return self._sequence, self._frame

    def count_client(self, change: int) -> None:
        with self._condition:
            self.clients += change

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop serving and close every connection."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    stream: CameraStream
    protocol_version = "HTTP/1.0"  # one response per connection; the stream ends when the connection does

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(_SEND_TIMEOUT_S)

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        path = self.path.split("?", 1)[0]
        if path == SNAPSHOT_PATH:
            self._snapshot()
        elif path == PATH:
            self._stream()
        else:
            self.send_error(404, f"the camera stream is at {PATH} (one frame: {SNAPSHOT_PATH})")

    def _snapshot(self) -> None:
        _, frame = self.stream.newest(-1)
        if frame is None:
            self.send_error(503, "no camera frame yet")
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(frame)))
        self.end_headers()
        self.wfile.write(frame)

    def _stream(self) -> None:
        stream = self.stream
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        stream.count_client(+1)
        sequence = 0
        try:
            while not stream.closed:
                sequence, frame = stream.newest(sequence)
                if frame is None:
                    continue
                header = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
                          .encode())
                self.wfile.write(header + frame + b"\r\n")
        except OSError:  # the client left, or stopped reading for _SEND_TIMEOUT_S
            pass
        finally:
            stream.count_client(-1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the http.server API)
        """Quiet: a request log line per client would interleave with the SITL console."""
