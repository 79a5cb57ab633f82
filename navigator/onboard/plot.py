"""A picture of one onboard flight log (`navigator onboard plot LOG`): commands sent, the vehicle's state, camera
frame age and inference time, and the safety state, against time. The only module of the runtime that imports
matplotlib, and only when called (the companion computer need not have it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from navigator.onboard.log import read_log
from navigator.onboard.safety import State

_STATES = [state.value for state in State]


def _column(rows: list[dict], key: str, width: int) -> np.ndarray:
    """(len(rows), width) float array of a list field; NaN where a row has null."""
    out = np.full((len(rows), width), np.nan)
    for index, row in enumerate(rows):
        value = row.get(key)
        if value is not None:
            out[index] = [np.nan if v is None else v for v in value] if width > 1 else value
    return out


def plot_log(log: Path, out: Path) -> dict[str, int | float]:
    """Draw the run logged at `log` (any part) into PNG `out` (written atomically). Returns a summary: steps,
    seconds, per-state step counts. ValueError for a file that is not an onboard log or has no steps."""
    from navigator.figures import pyplot, save_png

    plt = pyplot()
    header, rows, _ = read_log(log)
    if not rows:
        raise ValueError(f"{log}: the log has no steps to plot")
    t = _column(rows, "t", 1)[:, 0]
    t = t - t[0]
    command = _column(rows, "command_ned", 4)
    state = _column(rows, "state", 7)
    frame_age = _column(rows, "frame_age_s", 1)[:, 0]
    inference = _column(rows, "inference_ms", 1)[:, 0]
    safety = np.array([_STATES.index(row["safety"]) if row.get("safety") in _STATES else np.nan for row in rows])

    figure, axes = plt.subplots(5, 1, sharex=True, figsize=(11, 12), constrained_layout=True)
    for index, label in enumerate(("vx forward", "vy right", "vz down")):
        axes[0].plot(t, command[:, index], label=label)
    axes[0].set_ylabel("command (m/s, body NED)")
    axes[1].plot(t, command[:, 3], label="yaw rate command (CW)")
    axes[1].plot(t, -state[:, 5], label="yaw rate (CW)", alpha=0.7)
    axes[1].set_ylabel("rad/s")
    for index, label in enumerate(("vx forward", "vy left", "vz up")):
        axes[2].plot(t, state[:, index], label=label)
    axes[2].plot(t, state[:, 6], label="height (m)", color="black")
    axes[2].set_ylabel("state (m/s, heading FLU; m)")
    axes[3].plot(t, frame_age, label="frame age (s)")
    axes[3].set_ylabel("frame age (s)")
    twin = axes[3].twinx()
    twin.plot(t, inference, ".", markersize=2, color="tab:red", label="inference (ms)")
    twin.set_ylabel("inference (ms)", color="tab:red")
    axes[4].step(t, safety, where="post")
    axes[4].set_yticks(range(len(_STATES)), _STATES)
    axes[4].set_xlabel("time since the first step (s)")
    for axis in axes[:4]:
        axis.legend(loc="upper right", fontsize="small")
        axis.grid(alpha=0.3)
    figure.suptitle(f"{log.name} · {header.get('task', '?')} · {header.get('autopilot', '?')} · "
                    f"{len(rows)} steps")
    save_png(figure, out, dpi=90)
    counts = {name: int(np.sum(safety == index)) for index, name in enumerate(_STATES)}
    return {"steps": len(rows), "seconds": float(t[-1]), **counts}
