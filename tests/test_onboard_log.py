"""The flight log: rows round-trip, a torn last line is skipped, parts rotate within their bound, and the log
plots (in code and through `navigator onboard plot`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from navigator.cli import main
from navigator.onboard.log import FlightLog, log_parts, read_log


def write_run(folder: Path, steps: int, **kwargs) -> FlightLog:
    log = FlightLog(folder, {"task": "fly-to-target", "autopilot": "px4"}, **kwargs)
    for index in range(steps):
        engaged = index >= steps // 2
        log.step(t=1000.0 + index / 30, frame_age_s=0.01, inference_ms=0.4 if engaged else None,
                 dt_s=1 / 30 if engaged else None, action=np.array([0.5, np.nan, 0.0, 0.1], np.float32),
                 command_ned=np.array([1.0, 0.0, -0.1, 0.2]), state=np.arange(7, dtype=np.float32),
                 safety="ENGAGED" if engaged else "STANDBY", reason="test", mode="OFFBOARD")
    return log


def test_round_trip(tmp_path: Path) -> None:
    log = write_run(tmp_path / "logs", 10)
    log.close(ended="duration")
    header, rows, end = read_log(log.path)
    assert header["task"] == "fly-to-target" and header["part"] == 1
    assert len(rows) == 10 and end["ended"] == "duration" and end["steps"] == 10
    assert rows[0]["action"] == [0.5, None, 0.0, 0.1]  # NaN is written as null
    assert rows[9]["command_ned"] == [1.0, 0.0, -0.1, 0.2] and rows[9]["state"] == list(range(7))
    assert rows[0]["inference_ms"] is None and rows[9]["inference_ms"] == 0.4
    assert rows[3]["safety"] == "STANDBY"


def test_rows_reach_the_file_before_close_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    log = write_run(tmp_path, 5)
    # Not closed (a crash): every row written is already in the file.
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "step", "t": 1')  # torn mid-row
    _, rows, end = read_log(log.path)
    assert len(rows) == 5 and end is None


def test_parts_rotate_and_stay_bounded(tmp_path: Path) -> None:
    log = write_run(tmp_path, 400, part_bytes=4000, max_parts=3)
    log.close(ended="stopped")
    parts = log_parts(log.path)
    assert len(parts) == 3 and all(p.stat().st_size < 4000 + 1000 for p in parts)
    assert not log.path.exists()  # the oldest parts were deleted
    header, rows, end = read_log(parts[-1])
    assert header["kind"] == "header" and end["steps"] == 400
    times = [row["t"] for row in rows]
    assert times == sorted(times) and times[-1] == pytest.approx(1000 + 399 / 30)  # the newest rows are kept


def test_plot_command(tmp_path: Path, capsys) -> None:
    log = write_run(tmp_path, 60)
    log.close(ended="duration")
    out = tmp_path / "flight.png"
    assert main(["onboard", "plot", str(log.path), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 60 and summary["ENGAGED"] == 30 and summary["STANDBY"] == 30
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["onboard", "plot", str(log.path), "--out", str(out)]) == 2  # exists: needs --overwrite
    assert "already exists" in capsys.readouterr().err
    # onboard's own --json, before `plot`, asks for the same document (plot's default once reset it to text).
    assert main(["onboard", "--json", "plot", str(log.path), "--out", str(out), "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 60


def test_plot_refuses_what_is_not_a_log(tmp_path: Path, capsys) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"kind": "step"}\n')
    assert main(["onboard", "plot", str(other)]) == 2
    assert "not an onboard flight log" in capsys.readouterr().err


def test_rotated_run_is_found_by_its_name(tmp_path: Path, capsys) -> None:
    log = write_run(tmp_path, 400, part_bytes=4000, max_parts=3)
    log.close(ended="stopped")
    assert not log.path.exists() and log.parts == log_parts(log.path) and all(p.exists() for p in log.parts)
    # The run's name (its deleted first part, with or without .jsonl) still names the parts that remain.
    for name in (log.path, log.path.with_suffix("")):
        _, rows, end = read_log(name)
        assert end["steps"] == 400 and rows
        out = tmp_path / f"{name.name}.png"
        assert main(["onboard", "plot", str(name), "--out", str(out)]) == 0, capsys.readouterr().err
        assert out.exists()


def test_plot_names_what_it_was_given(tmp_path: Path, capsys) -> None:
    log = write_run(tmp_path / "logs", 5)
    log.close(ended="stopped")
    assert main(["onboard", "plot", str(tmp_path / "logs")]) == 2
    assert f"is a folder; give one of the .jsonl flight logs in it, e.g. {log.path}" in capsys.readouterr().err
    binary = tmp_path / "policy.onnx"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["onboard", "plot", str(binary), "--out", str(tmp_path / "b.png")]) == 2
    error = capsys.readouterr().err
    assert f"{binary}: not an onboard flight log (not text" in error and "codec" not in error
    assert main(["onboard", "plot", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist, nor any part of a run of that name" in capsys.readouterr().err
    assert main(["onboard", "--engage", "plot", str(log.path)]) == 2
    assert "--engage does not apply to plot" in capsys.readouterr().err


def test_plot_draws_each_of_several_logs_once(tmp_path: Path, capsys) -> None:
    # What a shell makes of `navigator onboard plot logs/onboard/onboard-*.jsonl`: every file, the parts of one run
    # among them (drawn once, as one run).
    first = write_run(tmp_path, 400, part_bytes=4000, max_parts=3)
    first.close(ended="stopped")
    second = write_run(tmp_path, 30)
    second.close(ended="duration")
    logs = sorted(str(path) for path in tmp_path.glob("onboard-*.jsonl"))
    assert len(logs) == 4  # three parts of the first run, and the second
    assert main(["onboard", "plot", *logs, "--json"]) == 0, capsys.readouterr().err
    plots = json.loads(capsys.readouterr().out)["plots"]
    kept = len(read_log(first.parts[-1])[1])  # the rows rotation kept of the first run's 400
    assert sorted(plot["steps"] for plot in plots) == [30, kept]
    assert all(Path(plot["plot"]).read_bytes()[:4] == b"\x89PNG" for plot in plots)
    # Again: the PNGs exist, and none is replaced unasked; one --out cannot name two plots.
    assert main(["onboard", "plot", *logs]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["onboard", "plot", *logs, "--out", str(tmp_path / "one.png")]) == 2
    assert "--out names one PNG, and 2 runs were given" in capsys.readouterr().err
    # A log without steps among them is named before anything is drawn.
    empty = FlightLog(tmp_path / "more", {"task": "fly-to-target"})
    empty.close(ended="interrupted")
    assert main(["onboard", "plot", *logs, str(empty.path), "--overwrite"]) == 2
    assert f"{empty.path}: the log has no steps to plot" in capsys.readouterr().err


def test_plot_finds_a_run_by_name_in_the_default_log_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = write_run(Path("logs/onboard"), 20)
    log.close(ended="duration")
    assert main(["onboard", "plot", log.path.stem, "--json"]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["log"] == str(log.path.with_suffix("")) and summary["steps"] == 20
    assert Path(summary["plot"]) == log.path.with_suffix(".png")  # beside the log
    assert main(["onboard", "plot", "onboard-19990101-000000"]) == 2
    assert ("log onboard-19990101-000000 does not exist, nor any part of a run of that name, in the current folder, "
            "nor in logs/onboard") in capsys.readouterr().err


def test_plot_usage_errors_point_at_plots_own_help(tmp_path: Path, capsys) -> None:
    assert main(["onboard", "plot", str(tmp_path / "a.jsonl"), "--bogus"]) == 2
    assert capsys.readouterr().err.strip() == ("navigator onboard plot: error: unrecognized arguments: --bogus (see "
                                               "'navigator onboard plot --help')")


def test_a_run_keeps_its_name_after_rotation_deleted_its_first_part(tmp_path: Path, monkeypatch) -> None:
    # Two runs started in one second: the second must not take the name of the first, whose later parts remain.
    monkeypatch.setattr("navigator.onboard.log.time.strftime", lambda _: "20250101-120000")
    first = write_run(tmp_path, 400, part_bytes=4000, max_parts=3)
    first.close(ended="stopped")
    assert not first.path.exists()
    second = FlightLog(tmp_path, {"task": "fly-to-target"})
    second.close(ended="stopped")
    assert second.name == "onboard-20250101-120000-2" and log_parts(first.path) == first.parts
