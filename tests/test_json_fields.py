"""Fields of a recorded JSON document checked by path and kind, with problems in the user's terms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from navigator.dataset import DatasetWriter
from navigator.dataset.synthetic import synthetic_episode
from navigator.json_fields import field_problems, read_problem

FIELDS = (("camera", "mapping"), ("camera.width", "positive number"), ("hidden", "list"), ("hidden[]", "mapping"),
          ("hidden[].size", "positive integer"), ("source", "optional mapping"), ("source.seed", "integer"))


def test_a_sound_document_has_no_problems():
    document = {"camera": {"width": 64}, "hidden": [{"size": 8}, {"size": 2}], "source": {"seed": 0}}
    assert field_problems(document, FIELDS) == []
    assert field_problems({"camera": {"width": 64.5}, "hidden": []}, FIELDS) == []  # optional source left out


@pytest.mark.parametrize("document, problems", [
    ({"camera": "abc", "hidden": []}, ['camera must be a mapping of names to values (got "abc")']),
    ({"camera": {}, "hidden": []}, ["camera.width is missing"]),
    ({"camera": {"width": "64"}, "hidden": []}, ['camera.width must be a number above 0 (got "64")']),
    ({"camera": {"width": -1}, "hidden": []}, ["camera.width must be a number above 0 (got -1)"]),
    ({"camera": {"width": True}, "hidden": []}, ["camera.width must be a number above 0 (got true)"]),
    ({"camera": {"width": float("nan")}, "hidden": []}, ["camera.width must be a number above 0 (got NaN)"]),
    ({"camera": {"width": 1}, "hidden": ["x", {"size": 2.5}]},
     ['hidden[0] must be a mapping of names to values (got "x")', "hidden[1].size must be a whole number above 0 "
                                                                  "(got 2.5)"]),
    ({"camera": {"width": 1}, "hidden": {"size": 1}},
     ['hidden must be a list (got {"size": 1})']),
    ({"camera": {"width": 1}, "hidden": [], "source": {"seed": None}},
     ["source.seed must be a whole number (got null)"]),
    ("abc", ['the file must be a mapping of names to values (got "abc")']),
])
def test_every_problem_is_named_by_its_path_once(document, problems):
    found = field_problems(document, FIELDS)
    assert found == problems


def test_every_problem_at_once_in_the_order_given():
    found = field_problems({"camera": {"width": 0}, "hidden": [{"size": 0}]}, FIELDS)
    assert found == ["camera.width must be a number above 0 (got 0)", "hidden[0].size must be a whole number above 0 "
                                                                       "(got 0)"]


def test_every_value_of_a_mapping_and_null_only_where_allowed():
    fields = (("datasets", "optional mapping"), ("datasets{}", "mapping"), ("datasets{}.episodes", "integer"),
              ("recipe", "optional mapping or null"))
    assert field_problems({"datasets": {"a": {"episodes": 3}}, "recipe": None}, fields) == []
    assert field_problems({}, fields) == []  # both may be missing
    assert field_problems({"datasets": None}, fields) == ["datasets must be a mapping of names to values (got null)"]
    assert field_problems({"datasets": {"a": {"episodes": "3"}, "b": 7}}, fields) == [
        "datasets.b must be a mapping of names to values (got 7)",
        'datasets.a.episodes must be a whole number (got "3")']
    assert field_problems({"datasets": []}, fields) == ["datasets must be a mapping of names to values (got [])"]


@pytest.mark.parametrize("content, problem", [
    (None, "it is a folder, not a file"),
    (b"", "it is empty"),
    (b'{"format": "x", "episodes": [1, 2', "it is cut short: its JSON stops at line 1 before it is complete"),
    (b'{"a": 1}\n{"b": 2}\n', "it is not valid JSON: extra data at line 2, column 1"),
    (b'{"a": \xff}', "it is not text: it holds bytes that are not UTF-8"),
])
def test_why_a_record_cannot_be_read_is_said_in_the_users_terms(tmp_path, content, problem):
    path = tmp_path / "record.json"
    path.mkdir() if content is None else path.write_bytes(content)
    with pytest.raises((OSError, ValueError)) as caught:
        json.loads(path.read_text(encoding="utf-8"))
    assert read_problem(caught.value) == problem
    assert read_problem(FileNotFoundError(2, "No such file or directory")) == "it is missing"
    assert read_problem(OSError(5, "Input/output error")) == "input/output error"


@pytest.mark.parametrize("what", ["bundle", "dataset", "run", "evaluation"])
def test_a_record_that_is_a_folder_or_cut_short_is_named_so_by_every_reader(tmp_path, capsys, monkeypatch, what):
    # Each command that reads back a JSON record it wrote says what is wrong with it, never Python's error text.
    from navigator.cli import main

    monkeypatch.setenv("COLUMNS", "1000")
    shipped = Path(__file__).resolve().parent.parent / "policies" / "pretrained"
    for damage, said in ((lambda p: (p.unlink(), p.mkdir()), "is a folder"),
                         (lambda p: p.write_text(p.read_text()[:40]), "it is cut short")):
        folder = tmp_path / f"{what}-{len(said)}"
        if what == "bundle":
            shutil.copytree(shipped / "bundles" / "fly-to-target", folder)
            record, argv = folder / "policy.json", ["fly", "--pilot", str(folder), "--episodes", "1"]
        elif what == "dataset":
            writer = DatasetWriter.create(folder, image_size=(24, 32), recipe={})
            writer.write(synthetic_episode(0, frames=12, height=24, width=32))
            del writer
            record, argv = folder / "manifest.json", ["data", "check", str(folder)]
        elif what == "run":
            folder.mkdir()
            (folder / "run.json").write_text(json.dumps({"format": "liquid-navigator/run", "version": 1}))
            record, argv = folder / "run.json", ["train", "--out", str(folder), "--resume"]
        else:
            folder.mkdir()
            (folder / "eval.json").write_text(json.dumps({"format": "liquid-navigator/eval", "version": 1}))
            record, argv = folder / "eval.json", ["eval", "--out", str(folder), "--resume"]
        damage(record)
        capsys.readouterr()
        code = main(argv)
        error = "".join(capsys.readouterr())  # data check reports on stdout
        assert code == (1 if what == "dataset" else 2), error  # data check reports a damaged dataset: exit 1
        assert said in error and "Errno" not in error and "char " not in error and "Traceback" not in error, error
