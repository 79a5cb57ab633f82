"""MP4 videos that browsers play, written atomically and off the caller's thread.

Frames are encoded as H.264 (libx264 from PyAV's wheels, yuv420p, moov atom first) so that a video plays in a
browser, a notebook and a chat window alike; OpenCV's only mp4 codec, MPEG-4 Part 2, plays in none of them.
Encoding runs in a background thread (PyAV releases the GIL while x264 works), so where a core is free a caller
that renders frames pays for rendering only. Frames go to a temporary file in the destination folder that is renamed
into place once complete: an interrupted run never leaves a truncated video under the requested name.
"""

from __future__ import annotations

import queue
import threading
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

import cv2
import numpy as np

from navigator.dataset.atomic import commit, temporary_name
from navigator.errors import UserError
from navigator.threads import join_through_interrupts

if TYPE_CHECKING:
    import av

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"  # the one H.264 profile every browser decodes; needs even width and height
# Measured on `fly --video` frames (640x240, one thread, crf 23): ultrafast 2.8 ms/frame and 119 KiB/s of video,
# superfast 5.8 ms and 69 KiB/s, veryfast 8.5 ms and 40 KiB/s. The encoder's thread only hides its cost where a
# core is idle; on a busy machine it adds to the flying loop's ~5.5 ms per step, so the cheapest preset wins
# (7-9 MB per minute of video).
ENCODER_OPTIONS = {"preset": "ultrafast", "crf": "23"}
_QUEUE_FRAMES = 16  # frames waiting for the encoder; bounds memory when the encoder falls behind
_DONE = None  # queue sentinel: no more frames


def even_size(frame: np.ndarray) -> np.ndarray:
    """`frame` padded by one edge row/column where its height/width is odd: yuv420p halves both."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return cv2.copyMakeBorder(frame, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)


def _import_av() -> ModuleType:
    """PyAV, imported only by what writes videos: the base install (the companion computer's) goes without it."""
    try:
        import av
    except ImportError as error:
        raise UserError("writing .mp4 videos needs PyAV: pip install \"liquid-navigator[sim]\" (or pip install av)"
                        ) from error
    return av


def _check_destination(path: Path, overwrite: bool) -> None:
    if path.suffix.lower() != ".mp4":
        raise UserError(f"video path {path} must end in .mp4")
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} for the video does not exist; create it first")
    if path.exists() and not overwrite:
        raise UserError(f"video {path} already exists; choose another name or pass --overwrite to replace it")


class VideoWriter:
    """Write RGB frames to an H.264 .mp4. Use as a context manager, or call `close` (keep) / `discard` (drop).

    Construction already creates the temporary file, so an unwritable folder is reported before any frame is
    rendered, not after a long run.
    """

    def __init__(self, path: str | Path, fps: float, overwrite: bool = False) -> None:
        self.path = Path(path)
        _check_destination(self.path, overwrite)
        av = _import_av()
        self._partial = temporary_name(self.path)
        try:  # PyAV opens its file only at the first frame: create it now to find an unwritable folder early
            self._partial.open("xb").close()
        except OSError as error:
            raise UserError(f"cannot write the video into folder {self.path.parent} ({error.strerror}); "
                            f"choose a folder you can write to") from error
        try:
            self._container = av.open(str(self._partial), "w", format="mp4", options={"movflags": "+faststart"})
        except BaseException:
            self._partial.unlink(missing_ok=True)
            raise
        self._rate = Fraction(fps).limit_denominator(1001)
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (width, height) fixed by the first frame
        self._queue: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._abandoned = threading.Event()  # set by discard: queued frames need no encoding
        self._closed = False  # set by a close that finished the file
        self._encoded = threading.Event()  # set by the encoder thread as it ends
        self._thread = threading.Thread(target=self._encode_all, name="video-encoder", daemon=True)
        self._thread.start()
        self.frames = 0

    # --- caller's side ---------------------------------------------------------------------------------------
    def write(self, frame_rgb: np.ndarray, caption: str | None = None) -> None:
        """Queue one RGB frame (any size, the same for every frame) with an optional caption at its bottom left.

        The frame is copied, so the caller may reuse its buffer.
        """
        self._raise_encoder_error()
        size = (frame_rgb.shape[1], frame_rgb.shape[0])
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the video's {self._size}")
        self._queue.put((np.array(frame_rgb, np.uint8, copy=True), caption))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None, and no file, when no frame was written).
        Closing again returns the same (an explicit close inside a `with` block is followed by the block's own).

        On any failure the temporary file is removed and the error raised."""
        if self._closed:
            return self.path if self.frames else None
        try:
            self._finish_encoding()
            self._container.close()
        except BaseException:
            self.discard()
            raise
        self._closed = True
        if self.frames == 0:
            self._partial.unlink(missing_ok=True)
            return None
        commit(self._partial, self.path)
        return self.path

    def discard(self) -> None:
        """Stop and remove the temporary file. Raises nothing but a Ctrl-C that arrived meanwhile (after the file is
        removed): it runs while another error is on its way."""
        self._abandoned.set()
        interrupted: KeyboardInterrupt | None = None
        try:
            self._finish_encoding()
        except KeyboardInterrupt as error:
            interrupted = error
        except Exception:  # noqa: BLE001 - the error on its way is the one to report
            pass
        with suppress(Exception):
            self._container.close()
        with suppress(OSError):
            self._partial.unlink(missing_ok=True)
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def _finish_encoding(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            join_through_interrupts(self._thread, self._encoded)  # it may be inside OpenCV or FFmpeg
        self._raise_encoder_error()

    def _raise_encoder_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # --- encoder thread --------------------------------------------------------------------------------------
    def _encode_all(self) -> None:
        try:
            self._encode_queued()
        finally:
            self._encoded.set()

    def _encode_queued(self) -> None:
        # After an error, keep draining the queue so that the caller never blocks on a full one; the error is
        # raised on the caller's next write or close.
        while (item := self._queue.get()) is not _DONE:
            if self._error is None and not self._abandoned.is_set():
                try:
                    self._encode(*item)
                except BaseException as error:  # noqa: BLE001 - handed over to the caller's thread
                    self._error = error
        if self._error is None and self._stream is not None and not self._abandoned.is_set():
            try:
                self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames
            except BaseException as error:  # noqa: BLE001 - handed over to the caller's thread
                self._error = error

    def _encode(self, frame: np.ndarray, caption: str | None) -> None:
        av = _import_av()
        if caption:
            cv2.putText(frame, caption, (6, frame.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                        cv2.LINE_AA)
        frame = even_size(frame)
        if self._stream is None:
            self._stream = self._container.add_stream(CODEC, rate=self._rate, options=ENCODER_OPTIONS)
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = PIXEL_FORMAT
        self._container.mux(self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
