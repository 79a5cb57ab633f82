"""Export to robomimic's HDF5 layout, for tools and baselines that read it.

data/demo_<i>/ holds actions (the expert labels), actions_executed, states (the privileged arrays flattened and
concatenated; the per-demo attribute `state_layout` names their columns), obs/image, obs/state, obs/dt, dones (1 on
the last step) and rewards (1 on the last step of a successful episode); mask/train and mask/valid list demo names
split by episode exactly as the training loader splits them. No next_obs is written: set robomimic's
`hdf5_load_next_obs` to false.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from navigator.dataset.atomic import atomic_path
from navigator.dataset.episode import Episode
from navigator.dataset.errors import DatasetError
from navigator.dataset.reader import Dataset
from navigator.dataset.schema import FORMAT_NAME, SCHEMA_VERSION
from navigator.dataset.split import split_keys

_GYM_ENV_TYPE = 2  # robomimic's EnvType.GYM_TYPE
HDF5_SUFFIXES = (".hdf5", ".h5")  # what robomimic and h5py tools expect an HDF5 file to be called


def _states(episode: Episode) -> tuple[np.ndarray, list[list[Any]]]:
    names = sorted(episode.privileged)
    columns = [np.asarray(episode.privileged[n], dtype=np.float64).reshape(episode.frames, -1) for n in names]
    return np.concatenate(columns, axis=1), [[n, c.shape[1]] for n, c in zip(names, columns, strict=True)]


def _env_args(datasets: Sequence[Dataset], first: Episode) -> dict[str, Any]:
    tasks = sorted({e.task for d in datasets for e in d.entries})
    presets = sorted({e.preset for d in datasets for e in d.entries})
    meta = first.metadata
    return {"env_name": "+".join(tasks), "type": _GYM_ENV_TYPE,
            "env_kwargs": {"presets": presets, "camera": meta.get("camera"), "airframe": meta.get("airframe"),
                           "action_limits": meta.get("action_limits"),
                           "action_convention": meta.get("action_convention")}}


def _write_demo(group: Any, episode: Episode) -> None:
    frames = episode.frames
    states, layout = _states(episode)
    group.attrs["num_samples"] = frames
    group.attrs["state_layout"] = json.dumps(layout)
    group.attrs["metadata"] = json.dumps(episode.metadata, sort_keys=True)
    group.create_dataset("actions", data=episode.action_label)
    group.create_dataset("actions_executed", data=episode.action_executed)
    group.create_dataset("states", data=states)
    height, width = episode.image_size
    group.create_dataset("obs/image", data=episode.images, chunks=(min(frames, 32), height, width, 3),
                         compression="gzip", compression_opts=4)
    group.create_dataset("obs/state", data=episode.state)
    group.create_dataset("obs/dt", data=episode.dt.reshape(frames, 1))
    dones = np.zeros(frames, dtype=np.int64)
    dones[-1] = 1
    rewards = np.zeros(frames, dtype=np.float64)
    rewards[-1] = float(episode.metadata["outcome"]["success"])
    group.create_dataset("dones", data=dones)
    group.create_dataset("rewards", data=rewards)


def export_robomimic(datasets: Sequence[Dataset], out: str | Path, *, val_fraction: float = 0.1,
                     split_seed: int = 0) -> int:
    """Write every episode of `datasets` (checksums verified) to the HDF5 file `out`, atomically; returns the number
    of demos."""
    import h5py  # only here: the rest of the dataset package must not need it

    out = Path(out)
    if not out.parent.is_dir():  # created by no one here: a failed export leaves nothing behind
        raise DatasetError(f"{out}: folder {out.parent} does not exist; create it first")
    refs = [(d, entry) for d in datasets for entry in d.entries]
    if not refs:
        raise DatasetError(f"{', '.join(str(d.path) for d in datasets)}: no episodes to export")
    train, val = split_keys([entry.key for _, entry in refs], val_fraction, split_seed)
    with atomic_path(out) as temporary:
        with h5py.File(temporary, "w") as handle:
            data = handle.create_group("data")
            total = 0
            for index, (dataset, entry) in enumerate(refs):
                episode = dataset.read(entry)
                if index == 0:
                    data.attrs["env_args"] = json.dumps(_env_args(datasets, episode))
                _write_demo(data.create_group(f"demo_{index}"), episode)
                total += episode.frames
            data.attrs["total"] = total
            handle.attrs["source_format"] = FORMAT_NAME
            handle.attrs["source_schema_version"] = SCHEMA_VERSION
            handle.attrs["source_datasets"] = json.dumps([str(d.path) for d in datasets])
            handle.create_dataset("mask/train", data=np.array([f"demo_{i}" for i in train], dtype="S"))
            handle.create_dataset("mask/valid", data=np.array([f"demo_{i}" for i in val], dtype="S"))
    return len(refs)
