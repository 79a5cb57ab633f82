"""Drawing an action on a camera frame, for previews: a person should see at a glance what the expert asked for
(green) and what was flown after DART noise (orange)."""

from __future__ import annotations

import cv2
import numpy as np

LABEL_BGR = (60, 220, 60)
EXECUTED_BGR = (0, 150, 255)


def upscale(image_rgb: np.ndarray, scale: int) -> np.ndarray:
    """An RGB camera frame as a BGR canvas `scale` times larger, pixels kept sharp."""
    canvas = cv2.resize(image_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(canvas[..., ::-1])


def _draw_zero_marks(canvas: np.ndarray) -> None:
    # Where each bar starts, so a small command is not mistaken for none.
    height, width = canvas.shape[:2]
    grey = (200, 200, 200)
    bar_x, bar_y = width - 10, 9
    cv2.line(canvas, (bar_x - 5, height // 2), (bar_x + 5, height // 2), grey, 1)
    cv2.line(canvas, (width // 2, bar_y - 5), (width // 2, bar_y + 5), grey, 1)
    cv2.circle(canvas, (width // 2, height // 2), 2, grey, -1)


def _draw_one(canvas: np.ndarray, action: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    height, width = canvas.shape[:2]
    reach = 0.35 * min(height, width)
    centre = (width // 2, height // 2)
    vx, vy, vz, yaw_rate = (float(v) for v in action)
    # Horizontal velocity seen from above and behind: forward points up the image, left points left.
    tip = (int(round(centre[0] - vy * reach)), int(round(centre[1] - vx * reach)))
    cv2.arrowedLine(canvas, centre, tip, colour, thickness, cv2.LINE_AA, tipLength=0.25)
    # Climb rate: a bar on the right edge, up from the middle for climbing.
    bar_x = width - 10
    cv2.line(canvas, (bar_x, height // 2), (bar_x, int(round(height / 2 - vz * reach))), colour, thickness + 1)
    # Yaw rate: a bar along the top, to the left for counter-clockwise (a left turn).
    bar_y = 9
    cv2.line(canvas, (width // 2, bar_y), (int(round(width / 2 - yaw_rate * reach)), bar_y), colour, thickness + 1)


def draw_action(canvas: np.ndarray, label: np.ndarray, executed: np.ndarray) -> None:
    """Draw both normalised actions on a BGR canvas in place: executed first, so the label stays on top."""
    _draw_zero_marks(canvas)
    _draw_one(canvas, executed, EXECUTED_BGR, 1)
    _draw_one(canvas, label, LABEL_BGR, 2)


def put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.4) -> None:
    """White text on a dark box (readable on sky and grass alike), `origin` at the text's bottom left."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = origin
    cv2.rectangle(canvas, (x - 2, y - height - 2), (x + width + 2, y + baseline), (20, 20, 20), -1)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
