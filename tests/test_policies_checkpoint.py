"""Checkpoints are self-describing, load with weights_only=True, and fail clearly when they cannot be used."""

from pathlib import Path

import pytest
import torch

from policies import PolicyConfig, build_policy, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path: Path) -> None:
    policy = build_policy(PolicyConfig(model="lstm", head_size=16, seed=4))
    policy.set_state_normalisation(torch.arange(7.0), torch.full((7,), 3.0))
    path = tmp_path / "policy.pt"
    save_checkpoint(policy, path, {"epoch": 3, "val_loss": 0.25})
    assert set(torch.load(path, weights_only=True)) == {"format", "version", "config", "state_dict", "metadata"}
    loaded, metadata = load_checkpoint(path)
    assert metadata == {"epoch": 3, "val_loss": 0.25} and loaded.config == policy.config
    for (name, ours), theirs in zip(policy.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(ours, theirs), name
    image = torch.randint(0, 256, (1, 48, 64, 3), dtype=torch.uint8)
    torch.testing.assert_close(loaded.step(image, torch.ones(1, 7), None, 0.03)[0],
                               policy.step(image, torch.ones(1, 7), None, 0.03)[0])


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    save_checkpoint(build_policy(PolicyConfig(model="mlp")), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a readable policy checkpoint"):
        load_checkpoint(path)


def test_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a policy checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    save_checkpoint(build_policy(PolicyConfig(model="gru", head_size=16)), path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["head_size"] = 17
    torch.save(payload, path)
    with pytest.raises(ValueError, match="does not match its own config"):
        load_checkpoint(path)


def test_unknown_model_in_config(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    save_checkpoint(build_policy(PolicyConfig(model="mlp", head_size=8)), path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"] = "transformer"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="valid models"):
        load_checkpoint(path)


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-able"):
        save_checkpoint(build_policy(PolicyConfig(model="mlp", head_size=8)), tmp_path / "p.pt", {"t": torch.ones(1)})
