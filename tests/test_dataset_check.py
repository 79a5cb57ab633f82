"""`check_dataset` lists every problem at once (manifest fields, entries against their files, incomplete
collections); datasets given twice are refused; completeness against the recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from navigator.dataset import (Dataset, DatasetError, DatasetNotFoundError, DatasetWriter, DroppedEntry,
                               ManifestError, check_dataset, completeness, open_datasets, read_manifest)
from navigator.dataset.synthetic import synthetic_episode

RECIPE = {"parts": [{"task": "fly-to-target", "preset": "summer", "episodes": 4},
                    {"task": "fly-to-target", "preset": "winter", "episodes": 2}], "seed": 10, "workers": 1}


def make(path: Path, seeds=(0, 1), recipe=None) -> Path:
    writer = DatasetWriter.create(path, image_size=(24, 32), recipe=recipe or {})
    for seed in seeds:
        writer.write(synthetic_episode(seed, frames=5, height=24, width=32))
    return path


def edit_manifest(root: Path, change) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_check_compares_every_manifest_field_with_the_episode_file(tmp_path):
    root = make(tmp_path / "ds")
    assert [e.ending for e in Dataset.open(root).entries] == ["timeout", "timeout"]

    def mark_success(manifest):
        manifest["episodes"][0].update(success=True, ending="success")
        manifest["episodes"][1].update(seed=7, preset="winter")
    edit_manifest(root, mark_success)
    report = check_dataset(root)
    first, second = (f"episodes/fly-to-target__summer__seed0000000{i}.npz" for i in (0, 1))
    assert sorted((p.file, p.message.split(" but ")[0]) for p in report.errors) == [
        (first, "the manifest lists ending \"success\""), (first, "the manifest lists success true"),
        (second, "the manifest lists preset \"winter\""), (second, "the manifest lists seed 7")]
    assert "set the manifest entry back to false" in " ".join(p.message for p in report.errors)
    with pytest.raises(DatasetError, match="does not match its sha256: it was edited by hand"):
        Dataset.open(root)  # what it lists is not read as the episodes' truth


def test_check_compares_the_recipe_with_the_settings_each_episode_was_flown_with(tmp_path):
    """An episode copied in from another collection (another airframe, camera or recovery noise) is not one of the
    collection the manifest's recipe describes, though its own checksum and entry match; a recipe that no episode
    was flown with is the recipe's fault."""
    camera = {"width": 32, "height": 24, "fov_deg": 90.0, "tilt_deg": 0.0, "rate_hz": 30}
    recipe = {"airframe": "synthetic", "camera": camera, "dart_noise": 0.1, "parts": [], "seed": 0}
    root = make(tmp_path / "ds", recipe=recipe)
    assert check_dataset(root).sound
    other = synthetic_episode(2, frames=5, height=24, width=32)
    other.metadata.update(airframe="x500", dart_noise_std=0.2)
    writer = DatasetWriter.open(root)
    writer.write(other)
    del writer
    report = check_dataset(root)
    assert [(p.file, p.message) for p in report.errors] == [
        ("episodes/fly-to-target__summer__seed00000002.npz", 'it was flown with airframe "x500" but the manifest\'s '
         'recipe says "synthetic"; it was flown with dart_noise 0.2 but the manifest\'s recipe says 0.1: it comes from '
         "another collection; move it to a dataset of its own settings")]
    # The recipe edited (its checksum no longer matches): the manifest is at fault, not the episodes.
    edit_manifest(root, lambda manifest: manifest["recipe"].update(camera={**camera, "fov_deg": 80.0}))
    report = check_dataset(root)
    assert [p.file for p in report.errors] == ["manifest.json", "episodes/fly-to-target__summer__seed00000002.npz"][:1]
    assert report.errors[0].message == (
        'its recipe says camera {"width": 32, "height": 24, "fov_deg": 80.0, "tilt_deg": 0.0, "rate_hz": 30} but its 3 '
        'episodes were flown with {"fov_deg": 90.0, "height": 24, "rate_hz": 30.0, "tilt_deg": 0.0, "width": 32}; its '
        'recipe says airframe "synthetic" but 1 of its 3 episodes was flown with "x500"; its recipe says dart_noise '
        "0.1 but 1 of its 3 episodes was flown with 0.2: the recipe does not describe its episodes (edited by hand?); "
        "restore the manifest from a copy of the dataset")
    assert "restore the manifest from a copy of the dataset" in report.errors[0].message
    assert not any("collect --resume" in p.message for p in report.problems)  # no advice to continue an edited one
    # A policy's roll-outs (DAgger) fly without the expert's recovery noise, whatever the recipe's setting; a recipe
    # whose pilot was changed is reported for the pilot alone.
    from navigator.dataset.reader import recipe_mismatches

    rollout = synthetic_episode(5, frames=5, height=24, width=32)
    rollout.metadata.update(pilot="runs/r/best.pt", dart_noise_std=0.0)
    assert recipe_mismatches({**recipe, "pilot": "runs/r/best.pt"}, rollout) == []
    demonstration = synthetic_episode(6, frames=5, height=24, width=32)
    demonstration.metadata.update(pilot="expert")
    assert recipe_mismatches({**recipe, "pilot": "pretrained"}, demonstration) == [("pilot", "pretrained", "expert")]


@pytest.mark.parametrize("field, value, said", [
    ("manifest_version", 99, "its manifest_version is 99, and this software reads 1 or 2: a newer release wrote it"),
    ("manifest_version", "2", 'its manifest_version must be a whole number, got "2"; restore the manifest'),
    ("schema_version", "1", 'its schema_version must be a whole number, got "1"'),
])
def test_a_manifest_of_a_version_this_software_does_not_read_is_refused_by_every_reader(tmp_path, field, value, said):
    """A manifest_version of a newer release was read as an old manifest without a checksum, and extended."""
    root = make(tmp_path / "ds")
    edit_manifest(root, lambda manifest: manifest.update({field: value}))
    with pytest.raises(ManifestError, match=re.escape(said)):
        Dataset.open(root)
    report = check_dataset(root)
    assert not report.sound and any(said in problem.message for problem in report.errors), report.errors


def test_check_lists_every_manifest_problem_in_one_run(tmp_path):
    root = make(tmp_path / "ds", seeds=(0, 1, 2))

    def break_three_fields(manifest):
        manifest["episodes"][0]["frames"] = 999
        manifest["episodes"][1]["success"] = "yes"
        manifest["image_width"] = -3
        manifest["episodes"][2]["seed"] = 0  # now listed twice
    edit_manifest(root, break_three_fields)
    messages = [p.message for p in check_dataset(root).errors]
    assert any(m == "image_width must be a positive integer, the camera image width in pixels (got -3)"
               for m in messages)
    assert any(m.endswith("seed00000001.npz: success must be true or false (got \"yes\")") for m in messages)
    assert any(m.startswith("the manifest lists frames 999 but the episode file records 5") for m in messages)
    assert any("are both listed as fly-to-target/summer seed 0" in m for m in messages)
    assert not any("EpisodeKey" in m or "camera size" in m for m in messages)
    with pytest.raises(ManifestError, match="does not match its sha256"):  # a reader refuses it as edited
        read_manifest(root)
    with pytest.raises(ManifestError) as raised:  # read past its checksum, it names every field problem
        read_manifest(root, verify=False)
    assert "image_width" in str(raised.value) and "success must be true or false" in str(raised.value)


def test_check_refuses_a_file_given_as_the_dataset(tmp_path):
    root = make(tmp_path / "ds", seeds=(0,))
    for path in (root / "manifest.json", root / "episodes" / "fly-to-target__summer__seed00000000.npz"):
        with pytest.raises(DatasetNotFoundError, match="is a file, not a dataset folder"):
            check_dataset(path)
        with pytest.raises(DatasetNotFoundError, match="is a file, not a dataset folder"):
            Dataset.open(path)


def test_an_interrupted_collection_is_sound_but_reported_incomplete(tmp_path):
    root = make(tmp_path / "ds night", seeds=(10, 11), recipe=RECIPE)  # the command it suggests quotes the space
    writer = DatasetWriter.open(root)
    writer.drop(DroppedEntry("fly-to-target", "winter", 11, "collision", 3))
    state = completeness(read_manifest(root))
    assert (state.complete, state.done, len(state.expected)) == (False, 3, 6)
    assert [str(key) for key in state.missing] == ["fly-to-target/summer seed 12", "fly-to-target/summer seed 13",
                                                   "fly-to-target/winter seed 10"]
    report = check_dataset(root)
    assert report.sound and [p.file for p in report.warnings] == ["manifest.json"]
    assert report.warnings[0].message == (
        "incomplete: 3 of 6 episodes flown, the collection stopped early (missing fly-to-target/summer seeds 12-13; "
        f"fly-to-target/winter seed 10); finish it with `navigator collect --out '{root}' --resume` and the settings "
        "it was started with (the manifest's recipe)")
    for seed in (12, 13):
        writer.write(synthetic_episode(seed, frames=5, height=24, width=32))
    writer.write(synthetic_episode(10, frames=5, preset="winter", height=24, width=32))
    assert completeness(read_manifest(root)).complete and check_dataset(root).problems == []


def test_a_dataset_without_a_collection_recipe_expects_nothing(tmp_path):
    assert completeness(read_manifest(make(tmp_path / "ds"))).complete
    odd = make(tmp_path / "odd", recipe={"parts": "all of them"})
    assert completeness(read_manifest(odd)).complete


def test_the_same_dataset_given_twice_is_refused_however_it_is_spelt(tmp_path, monkeypatch):
    root = make(tmp_path / "ds", seeds=(0,))
    other = make(tmp_path / "other", seeds=(1,))
    (tmp_path / "link").symlink_to(root)
    monkeypatch.chdir(tmp_path)
    for spelling in (root, f"{root}/", "./ds", "ds", tmp_path / "link"):
        with pytest.raises(DatasetError, match="give each dataset once") as raised:
            open_datasets([root, other, spelling])
        assert str(root) in str(raised.value)
    assert len(open_datasets([root, other])) == 2


def test_a_copy_of_a_dataset_given_beside_it_is_refused(tmp_path):
    import shutil

    root = make(tmp_path / "ds", seeds=(0, 1))
    shutil.copytree(root, tmp_path / "copy")
    with pytest.raises(DatasetError, match=f"{root} and {tmp_path / 'copy'} hold the same episode .*seed 0"):
        open_datasets([root, tmp_path / "copy"])
    assert len(open_datasets([root, make(tmp_path / "other", seeds=(5,))])) == 2


def test_completeness_expects_exactly_the_episodes_collect_flies():
    from navigator.collect import CollectConfig, CollectPart
    from navigator.dataset import Manifest

    config = CollectConfig(parts=(CollectPart(episodes=3), CollectPart(preset="winter+wind", episodes=2)), seed=5)
    assert completeness(Manifest(48, 64, recipe=config.recipe())).expected == tuple(config.keys())


def test_a_file_resume_set_aside_is_told_as_such(tmp_path):
    """collect --resume renames a damaged episode file NAME.damaged; check called it an unexpected file, as if the
    user had put it there, without saying what it is or that it may go."""
    root = make(tmp_path / "ds")
    (root / "episodes" / "fly-to-target_summer_seed00000009.npz.damaged").write_bytes(b"damaged")
    (root / "episodes" / "notes.txt").write_text("mine")
    said = {p.file.split("/")[-1]: p.message for p in check_dataset(root).problems}
    assert "set aside" in said["fly-to-target_summer_seed00000009.npz.damaged"]
    assert said["notes.txt"] == "unexpected file in the episodes folder"
