"""Records navigator continues from carry a checksum: edited by hand (or damaged in a way that still parses), they
are refused before any work, naming the file, rather than continued with settings the work did not start with.
Records written before checksums carry none and are read as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from navigator.cli import main
from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode
from navigator.json_fields import CHECKSUM_KEY, with_checksum, without_checksum

EDITED = "it does not match its sha256: it was edited by hand or damaged since navigator wrote it"


def test_a_checksum_round_trips_whatever_the_key_order_and_catches_any_edit():
    fields = {"format": "x", "settings": {"episodes": 3, "suites": ["summer"]}}
    document = with_checksum(fields)
    assert without_checksum(document) == fields
    assert without_checksum(json.loads(json.dumps(dict(reversed(document.items()))))) == fields
    assert without_checksum(fields) == fields  # written before checksums: read as it is
    for edit in ({"settings": {"episodes": 4, "suites": ["summer"]}}, {"added": True}):
        with pytest.raises(ValueError, match=EDITED):
            without_checksum({**document, **edit})
    with pytest.raises(ValueError, match="already hold"):
        with_checksum(document)


def _edit(path: Path, change) -> str:
    """Edit the JSON record at `path` by hand, keeping its checksum; returns the new text."""
    document = json.loads(path.read_text())
    assert CHECKSUM_KEY in document  # written with one
    change(document)
    path.write_text(json.dumps(document, indent=1))
    return path.read_text()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_edited_dataset_manifest_is_refused_by_collect_and_flagged_by_data_check(tmp_path, capsys):
    from navigator.collect import CollectConfig, CollectPart

    out = tmp_path / "ds"
    recipe = CollectConfig(parts=(CollectPart(task="hike", episodes=3),), seed=3).recipe()
    # Synthetic episodes record their own airframe and camera: `data check` would report them as another collection's.
    recipe = {name: value for name, value in recipe.items() if name not in ("airframe", "camera")}
    writer = DatasetWriter.create(out, image_size=(48, 64), recipe=recipe)
    writer.write(synthetic_episode(3, frames=12, task="hike"))
    del writer
    _edit(out / "manifest.json", lambda manifest: manifest["recipe"].update(max_seconds=99.0))
    before = _files(out)
    assert main(["collect", "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{out / 'manifest.json'} cannot be continued from: {EDITED}; restore it" in error
    assert len(error.strip().splitlines()) == 1
    assert main(["collect", "--out", str(out), "--resume", "--config", str(_yaml(tmp_path, COLLECT))]) == 2
    assert f"{out / 'manifest.json'}: {EDITED}; restore it" in capsys.readouterr().err
    assert main(["data", "check", str(out)]) == 0  # a warning: the episodes still match what it lists
    assert EDITED in "".join(capsys.readouterr())
    assert _files(out) == before


def _yaml(tmp_path: Path, text: str) -> Path:
    """A config file holding `text`, for --config."""
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*.yaml')))}.yaml"
    path.write_text(text)
    return path


COLLECT = "seed: 3\nmax_seconds: 99.0\nparts: [{task: hike, episodes: 3}]\n"
EVALUATE = "pilots: [expert]\nsuites: [summer]\nepisodes: 2\nmax_seconds: 0.5\n"


def test_an_edited_evaluation_record_is_refused_before_anything_flies(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "2", "--max-seconds", "0.2",
                 "--workers", "1", "--out", str(out)]) == 0
    episode = next((out / "episodes").rglob("*.json"))
    episode.unlink()  # one episode left to fly
    _edit(out / "eval.json", lambda record: record["settings"].update(max_seconds=0.5))
    _each_refused(["eval", "--out", str(out)], out / "eval.json", capsys,
                  ["--resume"], ["--resume", "--config", str(_yaml(tmp_path, EVALUATE))],
                  ["--extend", "--episodes", "3"])


def _each_refused(command: list[str], record: Path, capsys, *continuations: list[str]) -> None:
    """Each of `continuations` of `command` is refused as continuing the edited `record`, and changes nothing."""
    before = _files(record.parent)
    for argv in continuations:
        assert main([*command, *argv]) == 2
        error = capsys.readouterr().err
        assert f"{record} cannot be continued from: {EDITED}; restore it" in error, error
        assert _files(record.parent) == before


def test_an_edited_training_record_is_refused_before_anything_trains(tmp_path, capsys):
    data = tmp_path / "ds"
    writer = DatasetWriter.create(data, image_size=(48, 64), recipe={})
    for seed in range(3):
        writer.write(synthetic_episode(seed, frames=12))
    del writer
    out = tmp_path / "run"
    recipe = tmp_path / "train.yaml"
    recipe.write_text("window: 8\nstride: 4\nthreads: 1\n")
    assert main(["train", "--config", str(recipe), "--data", str(data), "--out", str(out), "--epochs", "1", "--model",
                 "mlp", "--batch-size", "2"]) == 0
    _edit(out / "run.json", lambda record: record["config"].update(epochs=2))
    _each_refused(["train", "--out", str(out)], out / "run.json", capsys, ["--resume"], ["--extend", "--epochs", "3"])


@pytest.mark.parametrize("command", ["compare", "adapt curve"])
def test_an_edited_study_record_is_refused_before_anything_trains(tmp_path, capsys, command):
    from navigator.adapt.curve import CURVE
    from navigator.comparison.runner import COMPARISON, open_study

    study = COMPARISON if command == "compare" else CURVE
    out = tmp_path / "study"
    _, lock = open_study(out, {"seeds": [0, 1]}, resume=False, study=study)
    lock.release()
    _edit(out / study.record, lambda record: record["settings"].update(seeds=[0]))
    before = _files(out)
    assert main([*command.split(), "--out", str(out), "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{out / study.record} cannot be continued from: {EDITED}; restore it" in error, error
    with pytest.raises(Exception, match=f"cannot be continued from: {EDITED}"):
        open_study(out, {"seeds": [0]}, resume=True, study=study)
    assert _files(out) == before


MISSING = "it has no sha256, which every record of its version carries: it was edited by hand or damaged"


def _without_checksum(path: Path, change=lambda document: None) -> None:
    """Delete the checksum of the JSON record at `path` by hand (and make `change`), leaving its version."""
    document = json.loads(path.read_text())
    del document[CHECKSUM_KEY]
    change(document)
    path.write_text(json.dumps(document, indent=1))


def test_a_record_whose_version_carries_a_checksum_is_refused_without_one(tmp_path, capsys):
    from navigator.adapt.curve import CURVE
    from navigator.comparison.runner import open_study

    data = tmp_path / "ds"
    writer = DatasetWriter.create(data, image_size=(48, 64), recipe={"seed": 0})
    writer.write(synthetic_episode(0, frames=12))
    del writer
    _without_checksum(data / "manifest.json", lambda manifest: manifest["recipe"].update(seed=5))
    assert main(["collect", "--out", str(data), "--resume", "--config", str(_yaml(tmp_path, COLLECT))]) == 2
    assert f"{data / 'manifest.json'}: {MISSING}" in capsys.readouterr().err

    evaluation = tmp_path / "eval"
    assert main(["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "2", "--max-seconds", "0.2",
                 "--workers", "1", "--out", str(evaluation)]) == 0
    episode = next((evaluation / "episodes").rglob("*.json"))
    flown = json.loads(episode.read_text())["success"]
    # An episode record without its checksum is not taken as flown: written again from results.json.
    _without_checksum(episode, lambda record: record.update(success=not flown))
    assert main(["eval", "--out", str(evaluation), "--resume"]) == 0
    assert "does not match its sha256" in " ".join(capsys.readouterr().err.split())
    assert json.loads(episode.read_text())["success"] == flown
    _without_checksum(evaluation / "eval.json")
    assert main(["eval", "--out", str(evaluation), "--resume"]) == 2
    assert f"{evaluation / 'eval.json'} cannot be continued from: {MISSING}" in capsys.readouterr().err

    from navigator.adapt.curve_config import CurveConfig, curve_settings

    study = tmp_path / "curve"
    config = CurveConfig(sceneries=("night",), demonstrations=(1,), strategies=("finetune",), seeds=(0, 1),
                         out=str(study))
    _, lock = open_study(study, curve_settings(config, "0" * 64), resume=False, study=CURVE)
    lock.release()
    _without_checksum(study / CURVE.record, lambda record: record["settings"].update(seeds=[0, 1, 2]))
    assert main(["adapt", "curve", "--out", str(study), "--resume"]) == 2
    assert f"{study / CURVE.record} cannot be continued from: {MISSING}" in capsys.readouterr().err


def test_a_record_written_before_checksums_is_continued_without_one_added(tmp_path, capsys):
    """A checksum added to a record read without one would vouch for whatever was edited in it before."""
    out = tmp_path / "ds"
    writer = DatasetWriter.create(out, image_size=(48, 64), recipe={})
    writer.write(synthetic_episode(0, frames=12))
    writer.write(synthetic_episode(1, frames=12))
    del writer
    _without_checksum(out / "manifest.json", lambda manifest: manifest.pop("manifest_version"))
    writer = DatasetWriter.open(out)
    writer.write(synthetic_episode(2, frames=12))
    del writer
    written = json.loads((out / "manifest.json").read_text())
    assert len(written["episodes"]) == 3 and CHECKSUM_KEY not in written and "manifest_version" not in written
    assert main(["data", "check", str(out)]) == 0
    assert "sha256" not in capsys.readouterr().out


@pytest.mark.parametrize("text", ['["not", "a", "record"]', '{"format": "liquid-navigator/adapt-curve-run"}',
                                  '{"format": "liquid-navigator/adapt-curve-run", "version": "2"}'])
def test_a_study_record_of_no_known_version_is_named_before_its_checksum_is_read(tmp_path, text):
    from navigator.adapt.curve import CURVE
    from navigator.comparison.runner import open_study
    from navigator.errors import UserError

    (tmp_path / CURVE.record).write_text(text)
    with pytest.raises(UserError, match="is not a liquid-navigator/adapt-curve-run version 1 or 2 record"):
        open_study(tmp_path, {}, resume=True, study=CURVE)


NEWER = "was written by a newer release of liquid-navigator"


def _bump_version(path: Path, key: str = "version") -> None:
    """What a newer release would write: a higher version, with a checksum by that release's rules (here: none
    that matches)."""
    document = json.loads(path.read_text())
    document[key] = 99
    path.write_text(json.dumps(document, indent=1))


def test_every_record_of_a_newer_release_is_named_as_such_not_as_edited(tmp_path, capsys):
    """A record whose version this release does not know was read by this release's checksum rules first, and
    refused as edited by hand (collect --resume of a manifest_version 99): each kind says a newer release wrote it."""
    from navigator.adapt.curve import CURVE
    from navigator.comparison.runner import COMPARISON, open_study

    data = tmp_path / "ds"
    writer = DatasetWriter.create(data, image_size=(48, 64), recipe={"seed": 0})
    writer.write(synthetic_episode(0, frames=12))
    del writer
    _bump_version(data / "manifest.json", "manifest_version")
    evaluation = tmp_path / "eval"
    assert main(["eval", "--pilot", "expert", "--suites", "summer", "--episodes", "1", "--max-seconds", "0.2",
                 "--workers", "1", "--out", str(evaluation)]) == 0
    _bump_version(evaluation / "eval.json")
    studies = {}
    for command, study in (("compare", COMPARISON), ("adapt curve", CURVE)):
        studies[command] = tmp_path / command.replace(" ", "-")
        _, lock = open_study(studies[command], {"seeds": [0, 1]}, resume=False, study=study)
        lock.release()
        _bump_version(studies[command] / study.record)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps(with_checksum({"format": "liquid-navigator/training-run", "version": 99})))
    capsys.readouterr()
    continuations = [
        (["collect", "--out", str(data), "--resume"], data, "manifest_version is 99"),
        (["collect", "--out", str(data), "--extend", "--episodes", "3"], data, "manifest_version is 99"),
        (["eval", "--out", str(evaluation), "--resume"], evaluation, NEWER),
        (["compare", "--out", str(studies["compare"]), "--resume"], studies["compare"], NEWER),
        (["adapt", "curve", "--out", str(studies["adapt curve"]), "--resume"], studies["adapt curve"], NEWER),
        (["train", "--out", str(run), "--resume"], run, NEWER),
    ]
    for argv, folder, said in continuations:
        before = _files(folder)
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert said in error and "newer release" in error and "sha256" not in error, (argv, error)
        assert len(error.strip().splitlines()) == 1, error
        assert _files(folder) == before
