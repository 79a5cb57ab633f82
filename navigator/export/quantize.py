"""int8 graphs: ONNX Runtime's dynamic quantization (weights stored as int8, activations quantised per run), which
needs no calibration data. What it costs in action error and closed-loop success is measured by the pipeline."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from navigator.export.graph import check_graph

METHOD = "onnxruntime dynamic quantization, int8 weights (MatMul, Gemm, Conv)"


def quantize_int8(graph: bytes) -> bytes:
    """The int8 version of a float graph (same inputs and outputs), checked by onnx's full checker."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="navigator-quantize-") as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(graph)
        # The quantizer logs advice about calibration pre-processing to the root logger; dynamic quantization has
        # no calibration, and a command's console is no place for it.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            # uint8 weights: ORT's CPU ConvInteger kernel takes uint8 weights only.
            quantize_dynamic(source, target, weight_type=QuantType.QUInt8,
                             op_types_to_quantize=["MatMul", "Gemm", "Conv"])
        finally:
            root.setLevel(level)
        data = target.read_bytes()
    check_graph(data)
    return data
