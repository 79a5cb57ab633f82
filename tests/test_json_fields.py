"""Fields of a recorded JSON document checked by path and kind, with problems in the user's terms."""

from __future__ import annotations

import pytest

from navigator.json_fields import field_problems

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
