"""Checkpoints are self-describing, load with weights_only=True, and fail clearly when they cannot be used."""

from pathlib import Path

import pytest
import torch

from policies import PolicyConfig, build_policy, checkpoint_bytes, load_checkpoint
from policies.checkpoint import TRAINING_STATE_FORMAT, CheckpointError, with_checksum


def test_round_trip(tmp_path: Path) -> None:
    policy = build_policy(PolicyConfig(model="lstm", head_size=16, seed=4))
    policy.set_state_normalisation(torch.arange(7.0), torch.full((7,), 3.0))
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(policy, {"epoch": 3, "val_loss": 0.25}))
    assert set(torch.load(path, weights_only=True)) == {"format", "version", "config", "state_dict", "metadata",
                                                        "sha256"}
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
    torch.save(with_checksum(payload), path)
    with pytest.raises(CheckpointError, match="do not match its own config"):
        load_checkpoint(path)


def test_unknown_model_in_config(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8))))
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"] = "transformer"
    torch.save(with_checksum(payload), path)
    with pytest.raises(ValueError, match="valid models"):
        load_checkpoint(path)


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-able"):
        checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8)), {"t": torch.ones(1)})


def test_a_flipped_bit_in_a_weight_is_refused_as_damaged(tmp_path: Path) -> None:
    # torch's zip container stores tensors uncompressed and does not check its CRCs: without a checksum of its own a
    # checkpoint with one weight turned into 3e37 loads and flies.
    policy = build_policy(PolicyConfig(model="mlp", head_size=8))
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(policy))
    name, weight = next((k, t) for k, t in policy.state_dict().items() if t.numel() > 64)
    raw = bytearray(path.read_bytes())
    at = raw.find(bytes(weight.untyped_storage().tolist()[:64]))  # as torch.save stores it: its storage's bytes
    assert at > 0
    raw[at + 3] ^= 0x40  # the top exponent bit of the first float32 (little-endian)
    path.write_bytes(bytes(raw))
    assert not torch.equal(torch.load(path, weights_only=True)["state_dict"][name], weight)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"{path} is damaged (its checksum does not match its content")
    assert str(caught.value).endswith("re-run navigator train or pick another file")


def test_changed_metadata_is_refused_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8)), {"airframe": "x500"}))
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "metadata": {"airframe": "cf2x"}}, path)
    with pytest.raises(CheckpointError, match=r"is damaged \(its checksum does not match"):
        load_checkpoint(path)


def test_a_checkpoint_written_before_checksums_still_loads(tmp_path: Path) -> None:
    policy = build_policy(PolicyConfig(model="mlp", head_size=8))
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(policy, {"epoch": 1}))
    payload = torch.load(path, weights_only=True)
    del payload["sha256"]
    torch.save(payload, path)
    loaded, metadata = load_checkpoint(path)
    assert metadata == {"epoch": 1}
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("checksummed", [True, False])
def test_non_finite_weights_are_refused(tmp_path: Path, bad: float, checksummed: bool) -> None:
    policy = build_policy(PolicyConfig(model="mlp", head_size=8))
    name, first = next(iter(policy.state_dict().items()))
    values = first.flatten().clone()
    values[:2] = bad
    policy.load_state_dict({**policy.state_dict(), name: values.reshape(first.shape)})
    path = tmp_path / "policy.pt"
    path.write_bytes(checkpoint_bytes(policy))  # a well-formed file, checksum and all, of a diverged policy
    if not checksummed:
        payload = torch.load(path, weights_only=True)
        del payload["sha256"]
        torch.save(payload, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"{path} is unusable (2 of its weights are NaN or infinite, in {name})")
    assert "re-run navigator train" in str(caught.value)


def test_a_training_state_is_not_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    torch.save({"format": TRAINING_STATE_FORMAT, "epoch": 1}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == (f"{path} is a training state, not a policy (what navigator train --resume continues "
                                 f"from): use the run's policy, {tmp_path / 'run' / 'best.pt'}")


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path: Path) -> None:
    import io

    from policies.checkpoint import with_checksum

    payload = torch.load(io.BytesIO(checkpoint_bytes(build_policy(PolicyConfig(model="mlp", head_size=8)))),
                         weights_only=True)
    del payload["state_dict"][next(iter(payload["state_dict"]))]
    torch.save(with_checksum(payload), tmp_path / "p.pt")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "p.pt")
    assert "\n" not in str(error.value) and "missing, unexpected or misshapen weights" in str(error.value)
