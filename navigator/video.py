"""MP4 videos written atomically: frames go to a temporary file that is renamed into place when complete, so an
interrupted run never leaves a truncated video under the requested name."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from navigator.errors import UserError


class VideoWriter:
    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise UserError(f"video path {self.path} must end in .mp4")
        if not self.path.parent.exists():
            raise UserError(f"folder {self.path.parent} for the video does not exist; create it first")
        self._partial = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial.mp4")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame_rgb: np.ndarray, caption: str | None = None) -> None:
        height, width = frame_rgb.shape[:2]
        if self._writer is None:
            self._size = (width, height)
            self._writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           self._size)
            if not self._writer.isOpened():
                raise UserError(f"cannot open a video writer for {self.path} (mp4v codec)")
        frame = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        if caption:
            cv2.putText(frame, caption, (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                        cv2.LINE_AA)
        self._writer.write(frame)

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None when no frame was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._partial, self.path)
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._partial.unlink(missing_ok=True)
