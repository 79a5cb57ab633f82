"""The flight log: one JSON Lines row per control step of a run, in a folder the user names.

A run's log is `onboard-YYYYmmdd-HHMMSS.jsonl` (a numeric suffix if a run of that name has a part there). Each line
is one JSON object:
  {"kind": "header", ...}   first line of every part: part number, start time, the run's settings (bundle, camera,
                            link, config)
  {"kind": "step", ...}     one per control step (`STEP_FIELDS`):
      t              wall-clock time, UNIX seconds
      frame_age_s    age of the newest camera frame (null: none yet)
      inference_ms   preprocessing + policy step, ms (null: the policy did not run this step)
      dt_s           the dt given to the policy: seconds between the frames it used (null: not run)
      action         the policy's normalised FLU action [vx, vy, vz, yaw_rate] (null: not run)
      command_ned    setpoint sent, body NED [vx, vy, vz m/s, yaw_rate rad/s] (null: nothing sent)
      state          the policy's state vector [vx, vy, vz, roll, pitch, yaw_rate, height] (null: no telemetry)
      safety, reason the safety state and why (navigator/onboard/safety.py)
      mode           the autopilot's flight mode name
  {"kind": "end", ...}      last line of a run that ended cleanly: why it ended, step count, setpoints sent
Non-finite numbers (a NaN action) are written as null (JSON has no NaN); the reason says what happened.

Bounded and crash-safe: the file is line-buffered (each row reaches the operating system when written, so a crash
loses at most the row being written) and fsynced when a part is closed. Past `part_bytes` the part is closed and
`NAME.partN.jsonl` begun; past `max_parts` the oldest part is deleted, so the disk a run uses stays under
part_bytes x max_parts and the newest rows (what led to an incident) are kept.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

STEP_FIELDS = ("t", "frame_age_s", "inference_ms", "dt_s", "action", "command_ned", "state", "safety", "reason",
               "mode")


def _plain(value: Any) -> Any:
    """JSON-ready: numpy arrays and scalars to lists and floats (6 significant digits), non-finite to None."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    number = float(value)
    return float(f"{number:.6g}") if math.isfinite(number) else None


class FlightLog:
    """Writes one run's log in `folder` (created if missing). `header` is stored in every part's first line."""

    def __init__(self, folder: Path, header: dict[str, Any], part_bytes: int = 20_000_000, max_parts: int = 10) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name, index = f"onboard-{stamp}", 1
        # Any part counts: a run whose first part rotation deleted still owns its name (its later parts would be
        # read as this run's).
        while log_parts(folder / f"{name}.jsonl"):
            index += 1
            name = f"onboard-{stamp}-{index}"
        self.folder, self.name = folder, name
        self.path = folder / f"{name}.jsonl"
        self._header = _plain(header)
        self._part_bytes, self._max_parts = part_bytes, max_parts
        self._parts: list[Path] = []
        self._file = None
        self.steps = 0
        self._open_part()

    def _open_part(self) -> None:
        number = len(self._parts) + 1 if not self._parts else _part_number(self._parts[-1]) + 1
        path = self.path if number == 1 else self.folder / f"{self.name}.part{number}.jsonl"
        self._file = open(path, "x", encoding="utf-8", buffering=1)  # line-buffered: each row is written at once
        self._parts.append(path)
        self._write({"kind": "header", "part": number, "started": round(time.time(), 4), **self._header})
        while len(self._parts) > self._max_parts:
            self._parts.pop(0).unlink(missing_ok=True)

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")

    def _close_part(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    def step(self, **row: Any) -> None:
        """Append one step; keys are `STEP_FIELDS` (missing ones are null)."""
        record = {key: _plain(row.get(key)) for key in STEP_FIELDS}
        record["t"] = round(float(row["t"]), 4)  # wall-clock seconds: 6 significant digits would lose the day
        self._write({"kind": "step", **record})
        self.steps += 1
        assert self._file is not None
        if self._file.tell() >= self._part_bytes:
            self._close_part()
            self._open_part()

    @property
    def parts(self) -> list[Path]:
        """The run's parts still on disk, oldest first (rotation deletes the oldest past `max_parts`)."""
        return list(self._parts)

    def close(self, **end: Any) -> None:
        """Write the end record (why the run ended, counts) and close the file durably."""
        if self._file is None:
            return
        self._write({"kind": "end", "steps": self.steps, **_plain(end), "t": round(time.time(), 4)})
        self._close_part()


def _part_number(path: Path) -> int:
    match = re.search(r"\.part(\d+)\.jsonl$", path.name)
    return int(match.group(1)) if match else 1


def log_parts(path: Path) -> list[Path]:
    """Every remaining part of the run whose log is `path`: any part, or the run's name (`onboard-DATE-TIME.jsonl`,
    with or without .jsonl) even when rotation deleted that first part. Oldest first."""
    name = re.sub(r"(\.part\d+)?\.jsonl$", "", path.name)
    parts = [p for p in path.parent.glob(f"{glob.escape(name)}*.jsonl")
             if re.fullmatch(rf"{re.escape(name)}(\.part\d+)?\.jsonl", p.name)]
    return sorted(parts, key=_part_number)


def read_log(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(header of the first remaining part, step rows in order, end record or None) of the run logged at `path`.
    A torn last line (a crash mid-write) is skipped. ValueError for a file that is not an onboard log."""
    # A file named otherwise is read as it is, to be told apart from a log by its content.
    parts = log_parts(path) or ([path] if path.is_file() else [])
    if not parts:
        raise ValueError(f"{path}: no such onboard log")
    header: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    end = None
    for part in parts:
        try:
            lines = part.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"{part}: not an onboard flight log (not text: its bytes are not UTF-8)") from None
        except OSError as error:
            raise ValueError(f"{part}: cannot read it ({error.strerror or error})") from None
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):
                    continue  # the row a crash interrupted
                raise ValueError(f"{part}: line {number} is not JSON") from None
            kind = record.get("kind") if isinstance(record, dict) else None
            if kind == "header":
                header = header or record
            elif kind == "step":
                rows.append(record)
            elif kind == "end":
                end = record
    if header is None:
        raise ValueError(f"{path}: not an onboard flight log (no header line)")
    return header, rows, end
