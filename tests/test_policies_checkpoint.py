"""Checkpoints are self-describing, load with weights_only=True, and fail clearly when they cannot be used."""

from pathlib import Path

import pytest
import torch

from policies import PolicyConfig, build_policy, checkpoint_bytes, load_checkpoint
from policies.checkpoint import CheckpointError


def test_round_trip(tmp_path: Path) -> None:
    policy = build_policy(PolicyConfig(model="lstm", head_size=16, seed=4))
    policy.set_state_normalisation(torch.arange(7.0), torch.full((7,), 3.0))
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(policy, {"epoch": 3, "val_loss": 0.25}))
    assert set(torch.load(path, weights_only=True)) == {"format", "version", "config", "state_dict", "metadata"}
    loaded, metadata = load_checkpoint(path)
    assert metadata == {"epoch": 3, "val_loss": 0.25} and loaded.config == policy.config
    for (name, ours), theirs in zip(policy.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(ours, theirs), name
    image = torch.randint(0, 256, (1, 48, 64, 3), dtype=torch.uint8)
    torch.testing.assert_close(loaded.step(image, torch.ones(1, 7), None, 0.03)[0],
                               policy.step(image, torch.ones(1, 7), None, 0.03)[0])


def _good_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "good.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8))))
    return path.read_bytes()


@pytest.mark.parametrize("make, reason", [
    (lambda good: b"", "empty file"),
    (lambda good: bytes(range(256)) * 8, "not a PyTorch file"),
    (lambda good: good[:300], "truncated or damaged"),
    (lambda good: good[:-10], "truncated or damaged"),
    (lambda good: good[:200] + bytes(len(good) - 400) + good[-200:], "truncated or damaged"),
])
def test_damaged_files_say_what_is_wrong_and_what_to_do(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(make(_good_bytes(tmp_path)))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (f"{path} is not a liquid-navigator checkpoint ({reason}): re-run navigator train "
                                 f"or pick another file")
    assert "weights_only" not in str(caught.value)  # never torch's advice to turn off the safe loader


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"policy.pt is not a liquid-navigator checkpoint \(no such file\)"):
        load_checkpoint(tmp_path / "policy.pt")
    with pytest.raises(CheckpointError, match=r"\(a folder, not a file\)"):
        load_checkpoint(tmp_path)


def test_pickled_code_is_refused_without_advice_to_disable_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled module: loading it would run code
    with pytest.raises(CheckpointError, match="pickled Python objects") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


def test_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"other content: \['weight'\], not a policy checkpoint"):
        load_checkpoint(path)


def test_unsupported_version_and_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8))))
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "version": 99}, path)
    with pytest.raises(CheckpointError, match="checkpoint format version 99, and this version of liquid-navigator "
                                              "reads version 1"):
        load_checkpoint(path)
    torch.save({key: value for key, value in payload.items() if key != "state_dict"}, path)
    with pytest.raises(CheckpointError, match=r"\(incomplete: no state_dict\)"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="gru", head_size=16))))
    payload = torch.load(path, weights_only=True)
    payload["config"]["head_size"] = 17
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match its own config"):
        load_checkpoint(path)


def test_unknown_model_in_config(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8))))
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"] = "transformer"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="valid models"):
        load_checkpoint(path)


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-able"):
        checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8)), {"t": torch.ones(1)})
