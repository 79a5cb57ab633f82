"""Where the network trains (`--device`): the CPU everywhere, and every CUDA GPU torch sees on the machine that runs
the tests (none on CI: the CUDA cases run where there is a GPU, the refusals everywhere). The data is synthetic
(navigator.dataset.synthetic), so these tests need no simulator."""

import json

import pytest
import torch

from navigator.cli import main
from navigator.config import load_config
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode
from navigator.training.config import TrainConfig
from navigator.training.pipeline import Hooks, run_recipe
from policies.checkpoint import load_checkpoint

DEVICES = ["cpu", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
FAST = ["--epochs", "2", "--batch-size", "4"]


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "synthetic"
    writer = DatasetWriter.create(out, image_size=(48, 64), recipe={"synthetic": True})
    for seed in range(6):
        writer.write(synthetic_episode(seed, frames=40))
    return out


def train(*args):
    return main(["train", *args])


def weights(path):
    policy, _ = load_checkpoint(path)
    return policy.state_dict()


def tensors(value):
    """Every tensor in a nested state (dicts, lists)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors(item)


class Interrupt(Exception):
    pass


class StopAfterFirstEpoch(Hooks):
    def epoch(self, report):
        raise Interrupt


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_result_on_each_device_in_files_any_machine_loads(demos, tmp_path, device):
    for name in ("a", "b"):
        assert train("--data", str(demos), "--out", str(tmp_path / name), "--device", device, *FAST) == 0
    a, b = weights(tmp_path / "a" / "best.pt"), weights(tmp_path / "b" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["device"] == device
    for name in ("best.pt", "last.pt"):  # read without map_location: a GPU tensor would stay on the GPU
        assert all(t.device.type == "cpu" for t in tensors(torch.load(tmp_path / "a" / name, weights_only=True)))
    policy, metadata = load_checkpoint(tmp_path / "a" / "best.pt")
    assert metadata["train_config"]["device"] == device
    actions, _ = policy(torch.zeros(1, 2, 48, 64, 3, dtype=torch.uint8), torch.zeros(1, 2, 7),
                        torch.full((1, 2), 0.033))
    assert actions.shape == (1, 2, 4) and torch.isfinite(actions).all()


@pytest.mark.parametrize("device", DEVICES)
def test_a_resumed_run_matches_an_uninterrupted_one_on_each_device(demos, tmp_path, device):
    args = ["--data", str(demos), "--epochs", "3", "--batch-size", "4", "--device", device]
    assert train(*args, "--out", str(tmp_path / "straight")) == 0
    interrupted = tmp_path / "interrupted"
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(interrupted), "epochs": 3,
                                             "batch_size": 4, "device": device})
    with pytest.raises(Interrupt):
        run_recipe(config, resume=False, hooks=StopAfterFirstEpoch())
    assert train("--out", str(interrupted), "--resume") == 0  # the device too comes from run.json
    a, b = weights(tmp_path / "straight" / "best.pt"), weights(interrupted / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_gpu_this_machine_lacks_is_refused_before_any_work(demos, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without one (CI's)
    assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--device", "cuda", *FAST) == 2
    error = capsys.readouterr().err
    assert "device cuda: this PyTorch" in error and "sees no CUDA GPU" in error and "give --device cpu" in error
    assert "Traceback" not in error and not (tmp_path / "run").exists()


def test_a_gpu_index_past_the_last_is_refused(demos, tmp_path, capsys):
    past = torch.cuda.device_count()
    if past == 0:  # without a GPU the refusal is the one above; with one, the index is checked
        assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--device", "cuda:0", *FAST) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err
    else:
        assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--device", f"cuda:{past}", *FAST) == 2
        assert f"give --device cuda:N with N below {past}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda0", "", "cuda:01", "cuda:99999999999"])
def test_a_device_name_torch_would_not_know_is_a_setting_error(demos, tmp_path, capsys, name):
    assert train("--data", str(demos), "--out", str(tmp_path / "run"), "--device", name, *FAST) == 2
    expected = f"--device must be cpu, cuda or cuda:N (the GPU's index), got {name!r}" if name else (
        "--device: empty value; give a value, or omit --device")  # refused for every option
    assert expected in capsys.readouterr().err


def test_device_names_are_normalised(demos):
    assert TrainConfig(data=(str(demos),), device=" CUDA:1 ").device == "cuda:1"


def test_a_run_recorded_before_the_device_setting_resumes_as_the_cpu_run_it_was(demos, tmp_path, capsys):
    out = tmp_path / "run"
    config = load_config(TrainConfig, None, {"data": [str(demos)], "out": str(out), "epochs": 2, "batch_size": 4})
    with pytest.raises(Interrupt):
        run_recipe(config, resume=False, hooks=StopAfterFirstEpoch())
    record = json.loads((out / "run.json").read_text())
    del record["config"]["device"], record["sha256"]  # as every run.json written before the setting (and checksums)
    record["version"] = 1
    (out / "run.json").write_text(json.dumps(record))
    assert train("--data", str(demos), "--out", str(out), "--epochs", "2", "--batch-size", "4", "--resume") == 0
    out2 = tmp_path / "run2"
    with pytest.raises(Interrupt):
        run_recipe(load_config(TrainConfig, None, {"data": [str(demos)], "out": str(out2), "epochs": 2,
                                                   "batch_size": 4}), resume=False, hooks=StopAfterFirstEpoch())
    record = json.loads((out2 / "run.json").read_text())
    del record["config"]["device"], record["sha256"]
    record["version"] = 1
    (out2 / "run.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert train("--data", str(demos), "--out", str(out2), "--epochs", "2", "--batch-size", "4", "--resume",
                 "--device", "cuda:7") == 2
    error = capsys.readouterr().err
    assert "device: run has 'cpu', you gave 'cuda:7'" in error and "Traceback" not in error
