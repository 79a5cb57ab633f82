"""robomimic export, read back with h5py and compared with the source episodes."""

from __future__ import annotations

import json

import h5py
import numpy as np

from navigator.dataset import Dataset, DatasetWriter, split_keys
from navigator.dataset.export_robomimic import export_robomimic
from navigator.dataset.synthetic import synthetic_episode


def test_robomimic_export_matches_the_source(tmp_path):
    writer = DatasetWriter.create(tmp_path / "ds", image_size=(24, 32), recipe={})
    for seed in range(5):
        writer.write(synthetic_episode(seed, frames=10 + seed, height=24, width=32,
                                       preset="summer" if seed % 2 else "winter"))
    dataset = Dataset.open(writer.path)
    out = tmp_path / "demos.hdf5"
    assert export_robomimic([dataset], out, val_fraction=0.4, split_seed=2) == 5

    with h5py.File(out, "r") as handle:
        data = handle["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == "fly-to-target" and env_args["type"] == 2
        assert env_args["env_kwargs"]["presets"] == ["summer", "winter"]
        assert data.attrs["total"] == sum(e.frames for e in dataset.entries)
        for index, entry in enumerate(dataset.entries):
            episode = dataset.read(entry)
            demo = data[f"demo_{index}"]
            assert demo.attrs["num_samples"] == episode.frames
            assert json.loads(demo.attrs["metadata"])["seed"] == entry.seed
            np.testing.assert_array_equal(demo["actions"][()], episode.action_label)
            np.testing.assert_array_equal(demo["actions_executed"][()], episode.action_executed)
            np.testing.assert_array_equal(demo["obs/image"][()], episode.images)
            np.testing.assert_array_equal(demo["obs/state"][()], episode.state)
            np.testing.assert_array_equal(demo["obs/dt"][()][:, 0], episode.dt)
            assert demo["dones"][()].tolist() == [0] * (episode.frames - 1) + [1]
            assert demo["rewards"][()].sum() == float(entry.success) and demo["rewards"][-1] == float(entry.success)
            column = 0
            for name, width in json.loads(demo.attrs["state_layout"]):
                block = demo["states"][:, column:column + width]
                np.testing.assert_array_equal(block, episode.privileged[name].reshape(episode.frames, -1))
                column += width
            assert column == demo["states"].shape[1]
        train = [name.decode() for name in handle["mask/train"][()]]
        valid = [name.decode() for name in handle["mask/valid"][()]]
    expected_train, expected_val = split_keys([e.key for e in dataset.entries], 0.4, 2)
    assert train == [f"demo_{i}" for i in expected_train] and valid == [f"demo_{i}" for i in expected_val]
    assert len(valid) == 2 and not set(train) & set(valid)
    assert sorted(p.name for p in out.parent.iterdir()) == ["demos.hdf5", "ds"]  # no temporary left behind
