"""The episode file and manifest: round trip, byte determinism, validation, and each kind of bad input."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from navigator.dataset import (ChecksumError, CorruptEpisodeError, Dataset, DatasetError, DatasetNotFoundError,
                               DatasetWriter, IncompatibleDatasetsError, InvalidEpisodeError, ManifestError,
                               SchemaVersionError, check_dataset, load_episode, open_datasets, write_episode)
from navigator.dataset.synthetic import synthetic_episode
from navigator.errors import UserError


@pytest.fixture(scope="module")
def episodes():
    return [synthetic_episode(seed, frames=40 - 5 * seed, preset="summer" if seed < 2 else "winter")
            for seed in range(4)]


def make_dataset(path: Path, episodes, image_size=(48, 64)) -> Path:
    writer = DatasetWriter.create(path, image_size=image_size, recipe={"task": "fly-to-target", "workers": 1})
    for episode in episodes:
        writer.write(episode)
    return path


def test_round_trip_keeps_every_field_and_metadata(tmp_path, episodes):
    dataset = Dataset.open(make_dataset(tmp_path / "ds", episodes))
    assert [e.seed for e in dataset.entries] == [0, 1, 2, 3]
    for original, entry in zip(episodes, dataset.entries, strict=True):
        loaded = dataset.read(entry)
        for name, array in original.arrays().items():
            np.testing.assert_array_equal(getattr(loaded, name), array)
            assert getattr(loaded, name).dtype == array.dtype
        assert loaded.privileged.keys() == original.privileged.keys()
        for name, array in original.privileged.items():
            np.testing.assert_array_equal(loaded.privileged[name], array)
            assert loaded.privileged[name].dtype == array.dtype
        assert loaded.metadata == json.loads(json.dumps(original.metadata))
        assert (entry.frames, entry.success, entry.ending) == (original.frames, original.metadata["outcome"]["success"],
                                                               original.metadata["outcome"]["ending"])


def test_episode_file_is_a_plain_npz_without_pickles(tmp_path, episodes):
    dataset = Dataset.open(make_dataset(tmp_path / "ds", episodes[:1]))
    with np.load(dataset.episode_path(dataset.entries[0]), allow_pickle=False) as npz:
        assert npz["images"].shape == (40, 48, 64, 3)
        assert "privileged/target_distance" in npz.files


def test_same_episodes_give_identical_bytes(tmp_path, episodes):
    first = make_dataset(tmp_path / "a", episodes)
    second = make_dataset(tmp_path / "b", list(reversed(episodes)))  # order of arrival must not matter either
    assert (first / "manifest.json").read_bytes() == (second / "manifest.json").read_bytes()
    for entry in Dataset.open(first).entries:
        assert (first / "episodes" / entry.file).read_bytes() == (second / "episodes" / entry.file).read_bytes()


def test_writer_refuses_an_invalid_episode_listing_every_problem(tmp_path, episodes):
    DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})
    bad = dataclasses.replace(episodes[0], state=episodes[0].state.astype(np.float64),
                              dt=episodes[0].dt[:-1], action_label=episodes[0].action_label * np.nan)
    with pytest.raises(InvalidEpisodeError) as raised:
        write_episode(tmp_path / "ds", bad)
    message = str(raised.value)
    assert "state has dtype float64" in message and "dt has shape (39,)" in message
    assert not list((tmp_path / "ds" / "episodes").iterdir())
    nan = dataclasses.replace(episodes[0], action_label=episodes[0].action_label * np.nan)
    with pytest.raises(InvalidEpisodeError, match="action_label holds NaN"):
        write_episode(tmp_path / "ds", nan)


def test_writer_refuses_other_image_sizes_and_complete_keys(tmp_path, episodes):
    make_dataset(tmp_path / "ds", episodes[:1])
    with pytest.raises(IncompatibleDatasetsError, match=r"64x48 images but episode .* has 32x24"):
        write_episode(tmp_path / "ds", synthetic_episode(9, frames=5, height=24, width=32))
    with pytest.raises(DatasetError, match="already complete"):
        write_episode(tmp_path / "ds", episodes[0])
    with pytest.raises(ManifestError, match="already exists"):
        DatasetWriter.create(tmp_path / "ds", image_size=(48, 64), recipe={})


def test_truncated_file_is_named_corrupt(tmp_path, episodes):
    dataset = Dataset.open(make_dataset(tmp_path / "ds", episodes[:1]))
    path = dataset.episode_path(dataset.entries[0])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptEpisodeError, match=f"{path}: cannot be read as an episode file") as refused:
        dataset.read(dataset.entries[0], verify=False)
    assert "`navigator collect --out DATASET --resume` records them again" in str(refused.value)  # the way out
    with pytest.raises(ChecksumError):
        dataset.read(dataset.entries[0])


def test_flipped_byte_is_a_checksum_mismatch(tmp_path, episodes):
    dataset = Dataset.open(make_dataset(tmp_path / "ds", episodes[:1]))
    path = dataset.episode_path(dataset.entries[0])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=f"{path}: sha256 .* differs from .* in the manifest"):
        dataset.read(dataset.entries[0])


def test_wrong_schema_version_is_refused(tmp_path, episodes):
    root = make_dataset(tmp_path / "ds", episodes[:1])
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match=r"manifest.json: dataset schema version 99, but this software "
                                                 r"reads version 1"):
        Dataset.open(root)


def test_episode_file_of_another_schema_version_is_refused(tmp_path, episodes):
    path = tmp_path / "old.npz"
    header = np.frombuffer(json.dumps({"format": "liquid-navigator-demonstrations", "schema_version": 0}).encode(),
                           np.uint8)
    np.savez_compressed(path, _format=header, **episodes[0].arrays())
    with pytest.raises(SchemaVersionError, match=f"{path}: episode schema version 0"):
        load_episode(path)


def test_missing_manifest_and_missing_folder_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"empty/manifest.json: manifest is missing"):
        Dataset.open(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="nowhere: no such dataset folder"):
        Dataset.open(tmp_path / "nowhere")
    assert issubclass(DatasetNotFoundError, UserError)


def test_merging_refuses_other_image_sizes_and_conventions(tmp_path, episodes):
    small = make_dataset(tmp_path / "small", [synthetic_episode(0, frames=5, height=24, width=32)], (24, 32))
    big = make_dataset(tmp_path / "big", episodes[:1])
    with pytest.raises(IncompatibleDatasetsError) as raised:
        open_datasets([big, small])
    assert str(big / "manifest.json") in str(raised.value) and str(small / "manifest.json") in str(raised.value)
    assert "64x48" in str(raised.value) and "32x24" in str(raised.value)
    other = tmp_path / "other"
    DatasetWriter.create(other, image_size=(48, 64), recipe={}, action_convention="ned-v0")
    with pytest.raises(IncompatibleDatasetsError, match="'flu-heading-normalised-v1' but .* uses 'ned-v0'"):
        open_datasets([big, other])


def test_check_reports_every_problem_with_its_file(tmp_path, episodes):
    root = make_dataset(tmp_path / "ds", episodes)
    files = [e.file for e in Dataset.open(root).entries]
    truncated, flipped, deleted = (root / "episodes" / name for name in files[:3])
    truncated.write_bytes(truncated.read_bytes()[:100])
    data = bytearray(flipped.read_bytes())
    data[-300] ^= 0x01
    flipped.write_bytes(bytes(data))
    deleted.unlink()
    (root / "episodes" / ".x.npz.123-abcd.tmp").write_bytes(b"partial")
    report = check_dataset(root)
    assert not report.sound and report.episodes_checked == 4
    errors = {p.file: p.message for p in report.errors}
    assert set(errors) == {f"episodes/{name}" for name in files[:3]}
    assert "sha256" in errors[f"episodes/{files[0]}"] and "sha256" in errors[f"episodes/{files[1]}"]
    assert "missing" in errors[f"episodes/{files[2]}"]
    assert [p.file for p in report.warnings] == ["episodes/.x.npz.123-abcd.tmp"]


def test_check_without_a_manifest_still_validates_each_file(tmp_path, episodes):
    root = make_dataset(tmp_path / "ds", episodes[:2])
    (root / "manifest.json").unlink()
    damaged = sorted((root / "episodes").iterdir())[0]
    extra = io.BytesIO()
    np.lib.format.write_array(extra, np.zeros(40, dtype=np.float32))
    with zipfile.ZipFile(damaged, "a") as archive:  # a sound container that breaks the episode contract
        archive.writestr("surprise.npy", extra.getvalue())
    report = check_dataset(root)
    assert report.episodes_checked == 2
    assert [(p.file, p.message.split(" (")[0]) for p in report.errors] == [
        ("manifest.json", "manifest is missing; " + str(root) + " is not a dataset folder"),
        (f"episodes/{damaged.name}", "unexpected array surprise"),
    ]


def test_seed_ranges_cover_stored_and_dropped_episodes_per_task():
    from navigator.dataset.manifest import DroppedEntry, Manifest

    manifest = Manifest(image_height=48, image_width=64, action_convention="x", recipe={})
    for task, seed in [("hike", 7), ("fly-to-target", 0), ("fly-to-target", 1), ("fly-to-target", 3)]:
        manifest = manifest.with_dropped(DroppedEntry(task, "summer", seed, "collision", 5))
    assert manifest.seed_ranges() == [{"task": "fly-to-target", "first": 0, "count": 2},
                                      {"task": "fly-to-target", "first": 3, "count": 1},
                                      {"task": "hike", "first": 7, "count": 1}]


@pytest.mark.parametrize("content, said", [
    (b"not a zip at all", "it is not an .npz (zip) archive"),
    ("object arrays", "it holds pickled Python objects, which are never loaded"),
])
def test_a_file_that_is_no_episode_is_said_so_in_the_users_terms(tmp_path, episodes, content, said):
    dataset = Dataset.open(make_dataset(tmp_path / "ds", episodes[:1]))
    path = dataset.episode_path(dataset.entries[0])
    if content == "object arrays":  # the episode's own entries, then one whose loading would run pickle
        with np.load(path) as npz:
            arrays = {name: npz[name] for name in npz.files}
        with open(path, "wb") as handle:
            np.savez(handle, **{**arrays, "images": np.array([object()], dtype=object)})
    else:
        path.write_bytes(content)
    with pytest.raises(CorruptEpisodeError) as refused:
        dataset.read(dataset.entries[0], verify=False)
    assert said in str(refused.value) and "allow_pickle" not in str(refused.value)
