"""The single-step ONNX graph of a policy (`policies.PolicyStep`): exported with a dynamic batch, weights inside the
one file, checked by onnx's full checker."""

from __future__ import annotations

import io
import warnings

import onnx
import torch

from policies.policy import Policy, PolicyStep

OPSET = 17


def export_graph(policy: Policy, opset: int = OPSET) -> bytes:
    """The serialised ONNX model of `policy`'s single step (inputs image, state, dt, `<name>_in`...; outputs action,
    `<name>_out`...; axis 0 the batch everywhere). Raises onnx.checker.ValidationError if the checker refuses it."""
    step = PolicyStep(policy.eval())
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation; it exports this graph exactly
        torch.onnx.export(step, step.example_inputs(batch=1), buffer, dynamo=False, opset_version=opset,
                          input_names=list(step.input_names), output_names=list(step.output_names),
                          dynamic_axes=step.dynamic_axes(), do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    # The exporter names the non-batch sizes of some outputs symbolically (e.g. "Concath_out_dim_1"): state them, so
    # that a runtime can check a graph against its manifest and the full checker verifies them by shape inference.
    with torch.no_grad():
        shapes = [tuple(tensor.shape) for tensor in step(*step.example_inputs(batch=1))]
    for output, shape in zip(model.graph.output, shapes):
        for dim, size in zip(list(output.type.tensor_type.shape.dim)[1:], shape[1:]):
            dim.dim_value = size
    data = model.SerializeToString()
    check_graph(data)
    return data


def check_graph(data: bytes) -> None:
    """onnx.checker with full checks (shape inference included) on a serialised model."""
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)


def graph_opset(data: bytes) -> int:
    """The default-domain opset a serialised model imports."""
    model = onnx.load_from_string(data)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
