"""`navigator data preview`: a contact sheet (.png) or a playback video (.mp4) of some episodes with their actions
drawn on, to look at what a dataset holds before training on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from navigator.dataset.atomic import atomic_write_bytes
from navigator.dataset.episode import Episode
from navigator.dataset.errors import DatasetError
from navigator.dataset.overlay import draw_action, put_text, upscale
from navigator.dataset.reader import Dataset
from navigator.video import VideoWriter

SHEET_EXTENSIONS = (".png",)
VIDEO_EXTENSIONS = (".mp4",)
_HEADER = 18  # pixels of caption above each contact-sheet row


def pick_episodes(datasets: Sequence[Dataset], count: int) -> list[Episode]:
    """`count` episodes spread evenly over all datasets' entries (so several tasks and presets show, not just the
    first few seeds)."""
    refs = [(dataset, entry) for dataset in datasets for entry in dataset.entries]
    if not refs:
        raise DatasetError(f"{', '.join(str(d.path) for d in datasets)}: no episodes to preview")
    indices = np.unique(np.linspace(0, len(refs) - 1, min(count, len(refs))).round().astype(int))
    return [refs[i][0].read(refs[i][1]) for i in indices]


def _caption(episode: Episode) -> str:
    meta = episode.metadata
    return f"{meta['task']} {meta['preset']} seed {meta['seed']}: {meta['outcome']['ending']}"


def contact_sheet(episodes: Sequence[Episode], columns: int = 8, scale: int = 3) -> np.ndarray:
    """A BGR image: one row per episode, `columns` frames spread over it, actions drawn on each."""
    height, width = episodes[0].image_size
    cell_h, cell_w = height * scale, width * scale
    sheet = np.full((len(episodes) * (cell_h + _HEADER), columns * cell_w, 3), 32, dtype=np.uint8)
    for row, episode in enumerate(episodes):
        top = row * (cell_h + _HEADER)
        put_text(sheet, _caption(episode) + "   green: expert label, orange: executed", (4, top + 13))
        frames = np.linspace(0, episode.frames - 1, columns).round().astype(int)
        for column, t in enumerate(frames):
            cell = upscale(episode.images[t], scale)
            draw_action(cell, episode.action_label[t], episode.action_executed[t])
            put_text(cell, f"t={episode.timestamp[t]:.1f}s", (3, cell_h - 5), 0.35)
            sheet[top + _HEADER:top + _HEADER + cell_h, column * cell_w:(column + 1) * cell_w] = cell
    return sheet


def write_video(episodes: Sequence[Episode], out: Path, scale: int = 6, overwrite: bool = False) -> int:
    """Play the episodes back one after the other at the camera rate; returns the number of frames written."""
    height = episodes[0].image_size[0]
    rate = float(episodes[0].metadata.get("camera", {}).get("rate_hz") or 1.0 / float(np.median(episodes[0].dt[1:])))
    with VideoWriter(out, rate, overwrite=overwrite) as video:
        for episode in episodes:
            for t in range(episode.frames):
                canvas = upscale(episode.images[t], scale)
                draw_action(canvas, episode.action_label[t], episode.action_executed[t])
                put_text(canvas, _caption(episode), (6, 16))
                put_text(canvas, f"t={episode.timestamp[t]:.2f}s", (6, height * scale - 8))
                video.write(canvas[..., ::-1])  # the overlay draws in BGR; the writer takes RGB
    return video.frames


def write_preview(datasets: Sequence[Dataset], out: str | Path, episodes: int = 4,
                  overwrite: bool = False) -> tuple[Path, int]:
    """Write a contact sheet or a video of up to `episodes` episodes to `out`, chosen by its extension; an existing
    `out` is replaced only with `overwrite` (it may be something the user wants to keep). Returns `out` and how many
    episodes it shows (fewer than asked where the datasets hold fewer)."""
    out = Path(out)
    extension = out.suffix.lower()
    if extension not in SHEET_EXTENSIONS + VIDEO_EXTENSIONS:
        raise DatasetError(f"{out}: unknown preview kind {extension or '(no extension)'}; use "
                           f"{', '.join(SHEET_EXTENSIONS)} for a contact sheet or {', '.join(VIDEO_EXTENSIONS)} for "
                           f"a video")
    if episodes < 1:
        raise DatasetError(f"--episodes must be at least 1, got {episodes}")
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} already exists; choose another name or pass --overwrite to replace it")
    if not out.parent.is_dir():  # created by no one here: a failed preview leaves nothing behind
        raise DatasetError(f"{out}: folder {out.parent} does not exist; create it first")
    chosen = pick_episodes(datasets, episodes)
    if extension in SHEET_EXTENSIONS:
        encoded, png = cv2.imencode(".png", contact_sheet(chosen))
        if not encoded:
            raise DatasetError(f"{out}: cannot encode the contact sheet")
        atomic_write_bytes(out, png.tobytes())
    else:
        write_video(chosen, out, overwrite=overwrite)
    return out, len(chosen)
