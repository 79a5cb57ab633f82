"""Test helpers for the onboard runtime (imported by tests/test_onboard_*.py): a tiny bundle built with onnx.helper
(no torch), a video file written by OpenCV, a free port, and a fake autopilot made of real pymavlink sockets."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

import navigator.onboard.link  # noqa: F401  (MAVLink 2 framing before pymavlink is imported here)
from navigator.onboard.bundle import (FORMAT, MANIFEST_CHECKSUM, SCHEMA_VERSION, STATE_FIELDS, manifest_checksum,
                                      sealed)
from policies.preprocessing import ImageSpec
from pymavlink import mavutil

ACTION_LIMITS = {"vx": 2.0, "vy": 2.0, "vz": 1.0, "yaw_rate": 1.5}
HIDDEN = 8


def tiny_graph() -> bytes:
    """The single-step graph interface of policies.PolicyStep (image uint8 (B,48,64,3), state (B,7), dt (B,),
    h_in (B,8) -> action (B,4), h_out (B,8)): action = tanh(state @ W + b + 0.001 mean(image)) + 0 * sqrt(height),
    so a negative height (a vehicle below its origin) gives NaN."""
    weights = np.zeros((7, 4), np.float32)
    weights[0, 0] = -0.5  # forward speed slows the forward command
    weights[5, 3] = -0.5
    bias = np.array([0.5, 0.0, 0.1, 0.2], np.float32)
    nodes = [
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["image_f"], ["brightness"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["brightness", "shape_b1"], ["brightness_2d"]),
        helper.make_node("Mul", ["brightness_2d", "milli"], ["brightness_term"]),
        helper.make_node("MatMul", ["state", "W"], ["linear"]),
        helper.make_node("Add", ["linear", "b"], ["biased"]),
        helper.make_node("Add", ["biased", "brightness_term"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["squashed"]),
        helper.make_node("Slice", ["state", "six", "seven", "one_axis"], ["height"]),
        helper.make_node("Sqrt", ["height"], ["root"]),
        helper.make_node("Mul", ["root", "zero"], ["nan_if_below"]),
        helper.make_node("Reshape", ["dt", "shape_b1"], ["dt_2d"]),
        helper.make_node("Mul", ["dt_2d", "zero"], ["dt_term"]),
        helper.make_node("Add", ["nan_if_below", "dt_term"], ["extra"]),
        helper.make_node("Add", ["squashed", "extra"], ["action"]),
        helper.make_node("Mul", ["h_in", "half"], ["h_half"]),
        helper.make_node("Add", ["h_half", "milli"], ["h_out"]),
    ]
    initializers = [
        helper.make_tensor("W", TensorProto.FLOAT, (7, 4), weights.ravel()),
        helper.make_tensor("b", TensorProto.FLOAT, (4,), bias),
        helper.make_tensor("milli", TensorProto.FLOAT, (), [0.001]),
        helper.make_tensor("zero", TensorProto.FLOAT, (), [0.0]),
        helper.make_tensor("half", TensorProto.FLOAT, (), [0.5]),
        helper.make_tensor("shape_b1", TensorProto.INT64, (2,), [-1, 1]),
        helper.make_tensor("six", TensorProto.INT64, (1,), [6]),
        helper.make_tensor("seven", TensorProto.INT64, (1,), [7]),
        helper.make_tensor("one_axis", TensorProto.INT64, (1,), [1]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_policy",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 48, 64, 3]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", 7]),
         helper.make_tensor_value_info("dt", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, ["batch", HIDDEN])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, ["batch", HIDDEN])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_tiny_bundle(folder: Path) -> Path:
    """A bundle folder (policy.onnx + policy.json) that navigator.onboard.bundle.load_bundle accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = tiny_graph()
    (folder / "policy.onnx").write_bytes(graph)
    manifest = {
        "schema_version": SCHEMA_VERSION, "format": FORMAT, "model": "tiny", "task": "fly-to-target",
        "airframe": "x500", "image": ImageSpec().to_dict(),
        "camera": {"width": 64, "height": 48, "fov_deg": 80.0, "tilt_deg": 0.0, "rate_hz": 30},
        "action_limits": ACTION_LIMITS, "state_fields": list(STATE_FIELDS), "rate_hz": 30, "dt": 1 / 30,
        "hidden": [{"name": "h", "size": HIDDEN}],
        "onnx": {"file": "policy.onnx", "sha256": hashlib.sha256(graph).hexdigest()},
    }
    (folder / "policy.json").write_text(json.dumps(sealed(manifest), indent=1))
    return folder


def write_video(path: Path, frames: int = 30, width: int = 320, height: int = 240, fps: float = 30.0) -> Path:
    """An MJPG .avi of moving gradient frames; frame i has a bright square at column 4 i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for index in range(frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, :, 2] = 200  # red in BGR: the reader must hand out RGB with red first
        image[10:30, 4 * index % (width - 20):4 * index % (width - 20) + 20] = 255
        writer.write(image)
    writer.release()
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PX4_LOITER = (4 << 16) | (3 << 24)
PX4_OFFBOARD = 6 << 16
PX4_POSCTL = 3 << 16
ARDU_LOITER, ARDU_GUIDED = 5, 4


class FakeAutopilot:
    """A minimal vehicle over real pymavlink sockets: HEARTBEAT (5 Hz), ATTITUDE and LOCAL_POSITION_NED (30 Hz);
    answers DO_SET_MODE (PX4: accepted into OFFBOARD only after setpoints above 2 Hz in the last second, else
    denied; ArduPilot: GUIDED accepted); records what it receives. `silent` stops everything it sends,
    `no_heartbeats` only its HEARTBEATs."""

    def __init__(self, url: str, flavour: str = "px4", system_id: int = 1, height: float = 2.0) -> None:
        self.flavour = flavour
        self.connection = mavutil.mavlink_connection(url, source_system=system_id, source_component=1)
        self.custom_mode = PX4_LOITER if flavour == "px4" else ARDU_LOITER
        self.height = height
        self.silent = threading.Event()
        self.no_heartbeats = threading.Event()
        self.setpoints: list[tuple[float, object]] = []
        self.heartbeats: list[object] = []
        self.mode_commands: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FakeAutopilot:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.connection.close()

    def _run(self) -> None:
        mav = self.connection.mav
        autopilot = 12 if self.flavour == "px4" else 3
        next_heartbeat = next_telemetry = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if not self.silent.is_set():
                if now >= next_heartbeat and not self.no_heartbeats.is_set():
                    next_heartbeat = now + 0.2
                    mav.heartbeat_send(2, autopilot, 1 | 128, self.custom_mode, 4)
                if now >= next_telemetry:
                    next_telemetry = now + 1 / 30
                    boot = int(now * 1000) & 0xFFFFFFFF
                    mav.attitude_send(boot, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0)
                    mav.local_position_ned_send(boot, 1.0, 2.0, -self.height, 0.0, 0.0, 0.0)
            message = self.connection.recv_match(blocking=True, timeout=0.01)
            if message is None:
                continue
            kind = message.get_type()
            if kind == "SET_POSITION_TARGET_LOCAL_NED":
                self.setpoints.append((time.monotonic(), message))
            elif kind == "HEARTBEAT":
                self.heartbeats.append(message)
            elif kind == "COMMAND_LONG" and message.command == 176:
                self.mode_commands.append(message)
                recent = [t for t, _ in self.setpoints if t > time.monotonic() - 1.0]
                accepted = self.flavour != "px4" or len(recent) > 2
                if accepted:
                    self.custom_mode = int(message.param2) << 16 if self.flavour == "px4" else int(message.param2)
                if not self.silent.is_set():
                    mav.command_ack_send(176, 0 if accepted else 2)


def resealed(edit: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    """An edit of a bundle's policy.json that also writes the new content's checksum, as a bundle made by hand (or
    by a faulty exporter) would carry one: for tests of the checks behind the checksum."""
    def apply(manifest: dict[str, Any]) -> None:
        edit(manifest)
        manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    return apply
