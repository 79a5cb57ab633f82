"""Rehearsal: `navigator sitl` and `navigator onboard` as two processes on loopback, as on a bench before a real flight.

The vehicle runs in this test run's environment; the onboard runtime runs in a virtual environment that has only
`liquid-navigator[onboard]` (no torch, pybullet or gymnasium), as on a companion computer, and flies the shipped
fly-to-target bundle through the SITL's MJPEG camera stream and MAVLink. The clean flights must reach the target for
the PX4 and the ArduPilot flavours. Each fault case injects one fault on the SITL side and checks, from the onboard
flight log, that the runtime never crashed, entered the documented safe state while the fault lasted, and recovered
when it cleared (navigator/onboard/safety.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.rehearsal_support import Rehearsal, rehearse

# Real time (two processes fly an episode over MAVLink at the camera's rate):
# in the suite's serial pass (`pytest -m serial`), never beside another test file.
pytestmark = pytest.mark.serial


def _assert_clean_run(run: Rehearsal) -> None:
    assert run.sitl_code == 0
    assert run.onboard_code == 0, run.onboard_stderr
    assert "Traceback" not in run.onboard_stderr
    assert run.end is not None  # the log was closed, not torn
    assert len(run.episodes) == 1


@pytest.mark.parametrize("autopilot", ["px4", "ardupilot"])
def test_onboard_flies_the_sitl_vehicle_to_the_target(tmp_path: Path, onboard_python: Path, autopilot: str) -> None:
    run = rehearse(tmp_path, onboard_python, autopilot)
    _assert_clean_run(run)
    episode = run.episodes[0]
    assert episode["ending"] == "success", episode
    modes = [e for e in run.events if e["event"] == "mode"]
    assert any(e["by"] != "episode" and e["mode"] in ("OFFBOARD", "GUIDED") for e in modes), modes
    engaged = [row for row in run.rows if row["safety"] == "ENGAGED"]
    assert len(engaged) > 30  # more than a second of policy commands
    assert all(row["command_ned"] is not None for row in engaged)


def _states_in_window(run: Rehearsal, fault: str) -> tuple[set[str], set[str]]:
    """Safety states logged while the SITL's fault window was open, and after it closed until the episode ended
    (after that the SITL exits, and a runtime the harness has not stopped yet rightly finds the link lost)."""
    windows = [e for e in run.events if e["event"] == "fault" and e["fault"].startswith(fault)]
    start = next(e["received"] for e in windows if e["state"] == "start")
    stop = next(e["received"] for e in windows if e["state"] == "end")
    during = {row["safety"] for row in run.rows if start <= row["t"] <= stop}
    after = {row["safety"] for row in run.rows_in_flight() if row["t"] > stop + 1.0}
    return during, after


def test_camera_stall_holds_then_resumes(tmp_path: Path) -> None:
    run = rehearse(tmp_path, sys.executable, faults=("camera-stall:3:1.5",), max_seconds=8)
    _assert_clean_run(run)
    during, after = _states_in_window(run, "camera-stall")
    assert "HOLD" in during and "ENGAGED" in after
    held = [row for row in run.rows if row["safety"] == "HOLD"]
    assert all(row["command_ned"] == [0.0, 0.0, 0.0, 0.0] for row in held)


@pytest.mark.parametrize("fault", ["camera-drop:0.3:4:3", "camera-corrupt:0.3:4:3"])
def test_dropped_and_corrupt_frames_keep_flying(tmp_path: Path, fault: str) -> None:
    run = rehearse(tmp_path, sys.executable, faults=(fault,), max_seconds=9)
    _assert_clean_run(run)
    during, after = _states_in_window(run, fault.split(":")[0])
    assert "ENGAGED" in during and "ENGAGED" in after
    assert not {"LINK_LOST", "STANDBY"} & during


def test_lossy_link_still_reaches_the_target(tmp_path: Path) -> None:
    run = rehearse(tmp_path, sys.executable, faults=("mavlink-loss:0.2",))
    _assert_clean_run(run)
    assert run.episodes[0]["ending"] == "success", run.episodes[0]
    assert "LINK_LOST" not in {row["safety"] for row in run.rows_in_flight()}


def test_added_latency_keeps_the_policy_engaged(tmp_path: Path) -> None:
    # 100 ms each way is within every timeout, so the runtime keeps flying; whether the policy still reaches the
    # target is a property of the policy (bench/bench_sitl.py measures it), not of the runtime.
    run = rehearse(tmp_path, sys.executable, faults=("mavlink-latency:100:4:3",), max_seconds=9)
    _assert_clean_run(run)
    during, after = _states_in_window(run, "mavlink-latency")
    assert during <= {"ENGAGED"} and during
    assert "ENGAGED" in after or run.episodes[0]["ending"] != "timeout"


def test_heartbeat_loss_stops_commanding_and_recovers(tmp_path: Path) -> None:
    run = rehearse(tmp_path, sys.executable, faults=("heartbeat-silence:3:4",), max_seconds=11)
    _assert_clean_run(run)
    during, after = _states_in_window(run, "heartbeat-silence")
    assert "LINK_LOST" in during
    lost = [row for row in run.rows if row["safety"] == "LINK_LOST"]
    assert all(row["command_ned"] is None for row in lost)  # the autopilot's failsafe is in charge
    # PX4 left OFFBOARD on the setpoint loss (its failsafe): the runtime waits for the operator, never re-engages.
    assert after == {"STANDBY"}


def test_operator_mode_change_wins(tmp_path: Path) -> None:
    run = rehearse(tmp_path, sys.executable, faults=("mode-change:3:2",), max_seconds=9)
    _assert_clean_run(run)
    during, after = _states_in_window(run, "mode-change")
    assert "STANDBY" in during
    assert "ENGAGED" in after  # the operator switched back to OFFBOARD: engaged again by their choice
