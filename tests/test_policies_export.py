"""Every model's single-step module exports to ONNX with explicit hidden state and runs the same in onnxruntime."""

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from policies import MODEL_NAMES, PolicyConfig, PolicyStep, build_policy


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_onnx_step_matches_torch(model: str) -> None:
    policy = build_policy(PolicyConfig(model=model)).eval()
    policy.set_state_normalisation(torch.linspace(-1, 1, 7), torch.linspace(0.5, 2, 7))
    step = PolicyStep(policy)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(
            step, step.example_inputs(batch=1), buffer, dynamo=False,
            input_names=list(step.input_names), output_names=list(step.output_names),
            dynamic_axes=step.dynamic_axes(),
        )
    session = ort.InferenceSession(buffer.getvalue())
    # Every graph takes the same inputs (hidden ones per hidden_shapes), whether or not its head reads dt.
    hidden_names = list(policy.hidden_shapes())
    assert [i.name for i in session.get_inputs()] == ["image", "state", "dt", *[f"{n}_in" for n in hidden_names]]
    assert [o.name for o in session.get_outputs()] == ["action", *[f"{n}_out" for n in hidden_names]]

    generator = torch.Generator().manual_seed(0)
    hidden = policy.initial_hidden(batch=2)
    for _ in range(3):  # batch 2, irregular dt, hidden state fed back as the onboard loop does
        image = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8, generator=generator)
        state = torch.randn(2, 7, generator=generator)
        dt = 0.01 + 0.06 * torch.rand(2, generator=generator)
        with torch.no_grad():
            expected = step(image, state, dt, *hidden)
        feeds = {name: tensor.numpy() for name, tensor in zip(step.input_names, (image, state, dt, *hidden))}
        got = session.run(list(step.output_names), feeds)
        for ours, theirs in zip(got, expected):
            np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5, rtol=0)
        hidden = tuple(expected[1:])
