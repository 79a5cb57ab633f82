"""Every policy model: built by name, matched budgets, single step equals sequence, per-sample dt, trains."""

import json

import numpy as np
import pytest
import torch
from torch import Tensor

import policies
from policies import MODEL_NAMES, PolicyConfig, build_policy
from policies.policy import Policy
from policies.preprocessing import ImageSpec, normalise

BATCH, STEPS = 3, 5


def episode(batch: int = BATCH, steps: int = STEPS, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, steps, 48, 64, 3), dtype=torch.uint8, generator=generator)
    states = torch.randn(batch, steps, 7, generator=generator)
    dt = 0.01 + 0.06 * torch.rand(batch, steps, generator=generator)  # irregular, and different per sample
    return images, states, dt


@pytest.fixture(scope="module", params=MODEL_NAMES)
def policy(request: pytest.FixtureRequest) -> Policy:
    model = build_policy(PolicyConfig(model=request.param))
    model.set_state_normalisation(torch.linspace(-1, 1, 7), torch.linspace(0.5, 2, 7))
    return model


def test_registry_names_and_unknown_name() -> None:
    assert MODEL_NAMES == ("cfc-ncp", "cfc", "ltc-ncp", "lstm", "gru", "mlp")
    assert PolicyConfig().model == "cfc-ncp"
    with pytest.raises(ValueError, match="valid models: cfc-ncp, cfc, ltc-ncp, lstm, gru, mlp"):
        build_policy(PolicyConfig(model="transformer"))


def test_parameter_budgets_are_matched() -> None:
    counts = {name: build_policy(PolicyConfig(model=name)).parameter_counts() for name in MODEL_NAMES}
    assert {name: c["head"] for name, c in counts.items()} == {
        "cfc-ncp": 20272, "cfc": 19948, "ltc-ncp": 19749, "lstm": 19556, "gru": 19912, "mlp": 19804
    }
    for c in counts.values():
        assert c["cnn"] == 24600 and c["total"] == c["cnn"] + c["head"]


def test_step_equals_sequence(policy: Policy) -> None:
    images, states, dt = episode()
    actions, final = policy(images, states, dt)
    assert actions.shape == (BATCH, STEPS, 4) and bool((actions.abs() <= 1).all())
    hidden = policy.initial_hidden(BATCH)
    for t in range(STEPS):
        action, hidden = policy.step(images[:, t], states[:, t], hidden, dt[:, t])
        torch.testing.assert_close(action, actions[:, t], atol=1e-5, rtol=0)
    for stepped, sequenced in zip(hidden, final):
        torch.testing.assert_close(stepped, sequenced, atol=1e-5, rtol=0)


def test_windows_chain_through_hidden(policy: Policy) -> None:
    # Truncated BPTT feeds one window's final hidden state to the next: two windows equal one long sequence.
    images, states, dt = episode()
    whole, _ = policy(images, states, dt)
    first, hidden = policy(images[:, :2], states[:, :2], dt[:, :2])
    second, _ = policy(images[:, 2:], states[:, 2:], dt[:, 2:], tuple(h.detach() for h in hidden))
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=0)


def test_batched_variable_dt_equals_single_runs(policy: Policy) -> None:
    images, states, dt = episode()
    batched, _ = policy(images, states, dt)
    for i in range(BATCH):
        single, _ = policy(images[i : i + 1], states[i : i + 1], dt[i : i + 1])
        torch.testing.assert_close(single, batched[i : i + 1], atol=1e-5, rtol=0)


def test_liquid_heads_use_dt() -> None:
    images, states, dt = episode()
    for name in ("cfc-ncp", "cfc", "ltc-ncp"):
        model = build_policy(PolicyConfig(model=name))
        assert not torch.allclose(model(images, states, dt)[0], model(images, states, 2 * dt)[0]), name


# Every dt the dataset format allows (finite, >= 0): 0 (a repeated frame, and the loader's padding of short
# windows), the nominal rate, and huge gaps up to float32's largest value.
EXTREME_DT = (0.0, 1e-30, 1.0 / 30.0, 1e3, 1e9, float(np.finfo(np.float32).max))


@pytest.mark.parametrize("dt_value", EXTREME_DT)
def test_finite_outputs_and_gradients_for_every_allowed_dt(policy: Policy, dt_value: float) -> None:
    images, states, dt = episode(steps=3)
    dt = dt.clone()
    dt[:, 1] = dt_value  # one step of the extreme value between two ordinary ones, per sample
    dt[1] = dt_value  # and one sample that has it everywhere
    trainee = build_policy(policy.config)
    actions, hidden = trainee(images, states, dt)
    assert bool(torch.isfinite(actions).all()) and all(bool(torch.isfinite(h).all()) for h in hidden)
    actions.square().mean().backward()
    for name, parameter in trainee.named_parameters():
        assert parameter.grad is None or bool(torch.isfinite(parameter.grad).all()), name
    with torch.no_grad():
        step_hidden = trainee.initial_hidden(BATCH)
        for t in range(3):
            action, step_hidden = trainee.step(images[:, t], states[:, t], step_hidden, dt[:, t])
            assert bool(torch.isfinite(action).all()) and all(bool(torch.isfinite(h).all()) for h in step_hidden)
        torch.testing.assert_close(action, actions[:, -1].detach(), atol=1e-5, rtol=0)


def test_a_zero_step_leaves_a_liquid_state_nearly_unchanged() -> None:
    # dt = 0: no time passed, so the state stays (LTC used to divide by the zero dt and return NaN).
    images, states, _ = episode(batch=1, steps=1)
    model = build_policy(PolicyConfig(model="ltc-ncp"))
    _, hidden = model.step(images[:, 0], states[:, 0], None, 1.0 / 30.0)
    _, after = model.step(images[:, 0], states[:, 0], hidden, 0.0)
    torch.testing.assert_close(after[0], hidden[0], atol=1e-4, rtol=0)


def test_trains(policy: Policy) -> None:
    images, states, dt = episode(batch=4, steps=6, seed=3)
    targets = torch.rand(4, 1, 4, generator=torch.Generator().manual_seed(4)).expand(4, 6, 4) * 1.6 - 0.8
    trainee = build_policy(policy.config)
    optimiser = torch.optim.Adam(trainee.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        actions, _ = trainee(images, states, dt)
        loss = torch.nn.functional.mse_loss(actions, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_step_takes_a_float_dt_and_no_hidden(policy: Policy) -> None:
    images, states, _ = episode(batch=2, steps=1)
    action, hidden = policy.step(images[:, 0], states[:, 0], None, 1 / 30)
    expected, _ = policy.step(images[:, 0], states[:, 0], policy.initial_hidden(2), torch.full((2,), 1 / 30))
    torch.testing.assert_close(action, expected)
    assert tuple(tuple(h.shape) for h in hidden) == tuple(policy.hidden_shapes(2).values())


def test_hidden_shapes_and_names() -> None:
    shapes = {name: build_policy(PolicyConfig(model=name)).hidden_shapes(batch=2) for name in MODEL_NAMES}
    assert shapes == {
        "cfc-ncp": {"h": (2, 70)}, "cfc": {"h": (2, 53)}, "ltc-ncp": {"h": (2, 53)},
        "lstm": {"h": (2, 52), "c": (2, 52)}, "gru": {"h": (2, 63)}, "mlp": {},
    }


def test_rejects_mismatched_inputs() -> None:
    model = build_policy(PolicyConfig())
    images, states, dt = episode()
    with pytest.raises(ValueError, match="hidden shapes"):
        model(images, states, dt, (torch.zeros(BATCH, 5),))
    with pytest.raises(ValueError, match="dt"):
        model(images, states, dt[:, :2])
    with pytest.raises(ValueError, match="frames"):
        model(images[:, :, :40], states, dt)
    with pytest.raises(ValueError, match="std > 0"):
        model.set_state_normalisation(torch.zeros(7), torch.zeros(7))


def test_in_graph_normalisation_equals_preprocessing() -> None:
    spec = ImageSpec(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    model = build_policy(PolicyConfig(image=spec))
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    in_graph = model.encoder.normalisation(torch.from_numpy(frames))
    np.testing.assert_array_equal(in_graph.numpy(), normalise(frames, spec))


def test_in_graph_per_frame_normalisation_equals_preprocessing() -> None:
    spec = ImageSpec(normalisation="per_frame")
    model = build_policy(PolicyConfig(image=spec))
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    frames[1] //= 12  # a night-dark frame
    in_graph = model.encoder.normalisation(torch.from_numpy(frames))
    np.testing.assert_allclose(in_graph.numpy(), normalise(frames, spec), atol=2e-5)


def test_same_config_same_weights() -> None:
    a, b = build_policy(PolicyConfig(seed=5)), build_policy(PolicyConfig(seed=5))
    c = build_policy(PolicyConfig(seed=6))
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.head.cfc.layers[0].mask, c.head.cfc.layers[0].mask)  # the wiring follows the seed


def test_config_round_trips_through_json() -> None:
    config = PolicyConfig(model="gru", head_size=40, seed=3, image=ImageSpec(input_hfov_deg=100.0))
    assert PolicyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown PolicyConfig keys"):
        PolicyConfig.from_dict({"model": "gru", "units": 3})


def test_package_exports() -> None:
    assert policies.Policy is Policy
    with pytest.raises(AttributeError):
        policies.nonexistent  # noqa: B018
