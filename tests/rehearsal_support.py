"""The rehearsal harness: `navigator sitl` and `navigator onboard` as two processes on loopback, one episode, for
tests/test_rehearsal.py and bench/bench_sitl.py. Not a test module (no `test_` prefix)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navigator.onboard.log import read_log
from tests.onboard_support import free_port

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "policies" / "pretrained" / "bundles" / "fly-to-target"
SEED = 100000  # an evaluation seed (the shipped policy trained on seeds below 100000)
STREAM_FOV = 100.0  # the SITL's default camera, wider than the policy's 80 deg: the runtime crops it


@dataclass
class Rehearsal:
    events: list[dict[str, Any]]  # the SITL's --json lines
    rows: list[dict[str, Any]]  # the onboard flight log's step rows
    end: dict[str, Any] | None  # the log's end record
    onboard_code: int
    onboard_stderr: str
    sitl_code: int
    episodes: list[dict[str, Any]] = field(default_factory=list)

    def rows_in_flight(self) -> list[dict[str, Any]]:
        """The log rows up to the end of the episode: after it the SITL process exits, and the runtime, which
        outlives it until the harness stops it, rightly finds the link lost."""
        end = self.episodes[0]["received"] if self.episodes else float("inf")
        return [row for row in self.rows if row["t"] <= end]


def _read_events(stream, into: list[dict[str, Any]]) -> None:
    """The SITL's JSON lines, each stamped with the wall time it arrived (`received`): the clock of the onboard
    log's rows, so that a fault window can be matched with what the runtime did meanwhile."""
    for line in iter(stream.readline, ""):
        if line.strip():
            into.append({**json.loads(line), "received": time.time()})


def rehearse(tmp_path: Path, python: Path | str, autopilot: str = "px4", faults: tuple[str, ...] = (),
             max_seconds: float | None = None, seed: int = SEED, bundle: Path = BUNDLE) -> Rehearsal:
    """Start the SITL (one episode), wait until it is ready, start the onboard runtime with --engage against it,
    wait for the episode to end, then stop the runtime with Ctrl-C (SIGINT) and read its log."""
    port = free_port() if autopilot == "px4" else 0  # PX4: the port the runtime listens on; ArduPilot: any free
    sitl_argv = [sys.executable, "-m", "navigator.cli", "sitl", "--autopilot", autopilot, "--seed", str(seed),
                 "--episodes", "1", "--json", "--mavlink-port", str(port), "--gcs-port", "0", "--camera-port", "0",
                 "--camera-fov", str(STREAM_FOV)]
    if autopilot == "px4":
        sitl_argv += ["--mavlink-local-port", "0"]
    if max_seconds is not None:
        sitl_argv += ["--max-seconds", str(max_seconds)]
    for fault in faults:
        sitl_argv += ["--fault", fault]
    sitl = subprocess.Popen(sitl_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    onboard = None
    try:
        events: list[dict[str, Any]] = []
        reader = threading.Thread(target=_read_events, args=(sitl.stdout, events), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any(e["event"] == "ready" for e in events):
            if sitl.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the SITL did not become ready: {sitl.poll()} {sitl.stderr.read()}")
            time.sleep(0.05)
        ready = next(e for e in events if e["event"] == "ready")
        log_dir = tmp_path / "onboard-logs"
        onboard = subprocess.Popen(
            [str(python), "-m", "navigator.cli", "onboard", "--bundle", str(bundle), "--camera", ready["camera"],
             "--mavlink", ready["mavlink"], "--camera-fov", str(STREAM_FOV), "--engage", "--duration", "120",
             "--log-dir", str(log_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        sitl_code = sitl.wait(timeout=150)
        reader.join(timeout=5)
        assert onboard.poll() is None, f"the onboard runtime ended on its own: {onboard.communicate()[1]}"
        onboard.send_signal(signal.SIGINT)
        _, onboard_stderr = onboard.communicate(timeout=30)
    finally:
        for process in (sitl, onboard):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    logs = sorted(log_dir.glob("onboard-*.jsonl"))
    assert len(logs) == 1, f"expected one flight log, found {logs}: {onboard_stderr}"
    _, rows, end = read_log(logs[0])
    return Rehearsal(events, rows, end, onboard.returncode, onboard_stderr, sitl_code,
                     [e for e in events if e["event"] == "episode"])
