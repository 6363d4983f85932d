"""Deployment values checked as Prefect's own validator checks them, with Prefect imported only for a schema not
seen before (tasks/pipeline/prefect_values.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline.prefect_values import PrefectSchemas, prefect_problems


def process_pool_variables() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    found: dict[str, Any] = ProcessWorker.get_default_base_job_template()["variables"]
    return found


PARAMETERS = {"title": "Parameters", "type": "object", "required": ["x"], "definitions": {
    "Size": {"title": "Size", "type": "object", "properties": {"rows": {"type": "integer"}}, "required": ["rows"]}},
    "properties": {"x": {"title": "x", "type": "integer", "position": 0},
                   "label": {"title": "label", "type": "string", "default": "bench", "position": 1},
                   "when": {"title": "when", "type": "string", "format": "date-time", "position": 2},
                   "pair": {"title": "pair", "type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
                   "size": {"$ref": "#/definitions/Size"}, "maybe": {"title": "maybe", "type": "integer"}}}

VALUES = [
    {"x": 1}, {"x": "one"}, {"label": 3}, {"x": 1, "label": None}, {"maybe": None}, {"when": "not a date"},
    {"when": "2024-01-01T00:00:00Z"}, {"pair": [1, "a"]}, {"pair": ["a", 1]}, {"size": {"rows": "many"}},
    {"size": {}}, {"x": 1.5, "label": ["a"]}, {},
]


@pytest.mark.parametrize("value", VALUES, ids=json.dumps)
def test_parameters_get_prefects_own_verdict(value: dict[str, Any], tmp_path: Path) -> None:
    schemas = PrefectSchemas(tmp_path / "schemas.json")
    assert schemas.problems(value, PARAMETERS) == prefect_problems(value, PARAMETERS)


JOB_VARIABLES = [{"env": {"A": "b"}}, {"env": "A=b"}, {"command": 3}, {"stream_output": "yes"},
                 {"working_dir": "/tmp"}, {"env": {"DEPLOYMENT_NAME": "x"}, "labels": {"a": 1}}]


@pytest.mark.parametrize("value", JOB_VARIABLES, ids=json.dumps)
def test_job_variables_get_prefects_own_verdict(value: dict[str, Any], tmp_path: Path) -> None:
    template = process_pool_variables()
    assert PrefectSchemas(tmp_path / "s.json").problems(value, template) == prefect_problems(value, template)


def test_a_schema_is_prepared_by_prefect_once_and_remembered(tmp_path: Path) -> None:
    file = tmp_path / "schemas.json"
    first = PrefectSchemas(file)
    assert first.problems({"x": "one"}, PARAMETERS) == [("x", "'one' is not of type 'integer'")]
    first.save()
    saved = json.loads(file.read_text())
    assert len(saved["schemas"]) == 1 and saved["prefect"] == first.version
    again = PrefectSchemas(file)
    again.prepared = {key: {**value, "properties": {"x": {"type": "string"}}} for key, value in again.prepared.items()}
    assert again.problems({"x": "one"}, PARAMETERS) == [], "the remembered form is used, not Prefect's again"


@pytest.mark.parametrize("value", VALUES, ids=json.dumps)
def test_a_value_and_its_shape_get_one_verdict(value: dict[str, Any], tmp_path: Path) -> None:
    from tasks.core.schema_shape import shape

    schemas = PrefectSchemas(tmp_path / "s.json")
    _, prepared = schemas.prepare(PARAMETERS)
    assert bool(schemas.validated(shape(value, prepared), PARAMETERS, prepared)) == bool(
        schemas.validated(value, PARAMETERS, prepared))


def test_new_values_of_an_accepted_shape_need_no_validator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "schemas.json"
    first = PrefectSchemas(file)
    assert first.problems({"x": 1, "label": "a"}, PARAMETERS) == []
    first.save()
    again = PrefectSchemas(file)
    monkeypatch.setattr(PrefectSchemas, "validated", lambda *_: pytest.fail("validated again"))
    assert again.problems({"x": 2, "label": "b"}, PARAMETERS) == []
    monkeypatch.undo()
    assert again.problems({"x": "two", "label": "b"}, PARAMETERS) == [("x", "'two' is not of type 'integer'")]
    late = {"x": 1, "when": "not a date"}
    assert again.problems(late, PARAMETERS) == prefect_problems(late, PARAMETERS)


@pytest.mark.parametrize("value", JOB_VARIABLES, ids=json.dumps)
def test_job_variables_and_their_shape_get_one_verdict(value: dict[str, Any], tmp_path: Path) -> None:
    from tasks.core.schema_shape import shape

    template = process_pool_variables()
    schemas = PrefectSchemas(tmp_path / "s.json")
    _, prepared = schemas.prepare(template)
    assert bool(schemas.validated(shape(value, prepared), template, prepared)) == bool(
        schemas.validated(value, template, prepared))
