"""A prefect.yaml deployment accepted without importing Prefect is one Prefect's own model accepts: every entry the
quick path accepts, over a corpus of tricky entries and every deployment of the fixtures' prefect.yaml files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tasks.core.errors import ConfigError
from tasks.pipeline.prefect_rules import PrefectRules, deployment_schema, prefect_verdict
from tasks.pipeline.prefect_schema import entries_accepted
from tests.helpers import REPO

TRICKY: list[Any] = [
    {"name": "a", "entrypoint": "f.py:x"}, {"name": 3}, {"name": "a", "tags": "x"}, {"name": "a", "tags": [1, {"a": 2}]},
    {"name": "a", "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/Berlin"}]},
    {"name": "a", "schedules": [{"cron": "0 6 * * *", "interval": 5}]}, {"name": "a", "schedules": [{"cron": "bad"}]},
    {"name": "a", "schedules": [{"interval": "PT1H"}]}, {"name": "a", "schedules": [{"interval": "01:00:00"}]},
    {"name": "a", "schedules": [{"interval": "nonsense"}]}, {"name": "a", "schedules": [{"interval": -5}]},
    {"name": "a", "schedules": [{"cron": "0 6 * * *", "extra": 1}]}, {"name": "a", "schedules": [{}]},
    {"name": "a", "schedules": [{"schedule": {"cron": "0 6 * * *"}}]}, {"name": "a", "schedules": [{"schedule": {"cron": "x"}}]},
    {"name": "a", "schedule": {"cron": "0 6 * * *", "active": "{{ x }}"}},
    {"name": "a", "schedule": {"cron": "0 6 * * *", "rrule": "x"}}, {"name": "a", "paused": "yes"},
    {"name": "a", "paused": "maybe"}, {"name": "a", "concurrency_limit": 2},
    {"name": "a", "concurrency_limit": {"limit": 2, "collision_strategy": "ENQUEUE"}},
    {"name": "a", "concurrency_limit": {"limit": "x"}}, {"name": "a", "work_pool": {"name": "p", "job_variables": {"a": 1}}},
    {"name": "a", "work_pool": None}, {"name": "a", "work_pool": "p"}, {"name": "a", "work_pool": {"name": 3}},
    {"name": "a", "parameters": None}, {"name": "a", "sla": [{"name": "x", "duration": 10}]},
    {"name": "a", "triggers": [{"expect": ["x"]}]}, {"name": "a", "triggers": "x"}, {"name": "a", "build": {"prefect.x": {}}},
    {"name": "a", "build": "x"}, {"name": "a", "pull": ["x"]}, {"name": "a", "version": 2},
    {"name": "a", "schedules": [{"cron": "0 6 * * *", "day_or": "true"}]},
    {"name": "a", "schedules": [{"rrule": "FREQ=DAILY", "anchor_date": "2020-01-01"}]},
    {"name": "a", "schedules": [{"interval": 60, "anchor_date": 5}]}, {"name": "a", "schedules": None},
    {"name": "a", "schedules": [None]}, {"name": "a", "schedules": "daily"}, {"name": "a", "enforce_parameter_schema": 1},
    "just a string", None, [],
]


def fixture_deployments() -> list[Any]:
    found = []
    for file in sorted((REPO / "tests" / "fixtures").rglob("prefect.y*ml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("deployments"), list):
            found += data["deployments"]
    return found


def prefect_accepts(entry: Any) -> bool:
    from prefect.cli.deploy._models import DeploymentConfig

    try:
        DeploymentConfig.model_validate(entry)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("entry", TRICKY + fixture_deployments(), ids=lambda entry: json.dumps(entry, default=str)[:50])
def test_an_entry_accepted_without_prefect_is_one_prefect_accepts(entry: Any) -> None:
    if entries_accepted([entry], deployment_schema()):
        assert prefect_accepts(entry)


def test_the_quick_path_decides_the_common_entries() -> None:
    """Not a rule of Prefect's, but the point of the quick path: the fixtures' deployments need no Prefect."""
    entries = [entry for entry in fixture_deployments() if prefect_accepts(entry)]
    decided = [entry for entry in entries if entries_accepted([entry], deployment_schema())]
    assert len(decided) >= len(entries) * 3 // 4, [json.dumps(e)[:80] for e in entries if e not in decided]


def test_a_changed_deployment_is_accepted_without_prefect_and_a_bad_one_in_prefects_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline import prefect_rules

    file = tmp_path / "prefect-rules.json"
    data: dict[str, Any] = {"name": "x", "deployments": [
        {"name": f"d{n}", "entrypoint": "f.py:x", "parameters": {"x": n}, "schedules": [{"cron": "0 6 * * *"}]}
        for n in range(3)]}
    prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))

    def no_prefect(*_: Any) -> Any:
        raise AssertionError("Prefect was asked")

    monkeypatch.setattr(prefect_rules, "refusal_of", no_prefect)
    data["deployments"][1]["parameters"] = {"x": 10}
    assert prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file)) == (data, [])
    monkeypatch.undo()
    data["deployments"][2]["schedules"] = [{"cron": "0 6 * * *", "interval": 60}]
    with pytest.raises(ConfigError, match=r"deployments.2\(d2\).schedules.0: Value error, Exactly one of 'cron', "
                                          r"'interval', or 'rrule' must be provided"):
        prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))


@pytest.mark.parametrize("entry", TRICKY + fixture_deployments(), ids=lambda entry: json.dumps(entry, default=str)[:50])
def test_an_entry_and_its_shape_get_one_verdict(entry: Any) -> None:
    from tasks.core.schema_shape import shape

    schema = deployment_schema()
    assert entries_accepted([shape(entry, schema)], schema) == entries_accepted([entry], schema)


def test_a_shape_keeps_what_the_schema_checks_and_stands_in_for_the_rest() -> None:
    from tasks.core.schema_shape import shape

    entry = {"name": "d", "parameters": {"x": 5, "y": [1.5, "a"]}, "paused": "yes", "concurrency_limit": 2,
             "work_pool": {"name": "p", "job_variables": {"image": "x"}}, "schedules": [{"cron": "0 6 * * *"}]}
    assert shape(entry, deployment_schema()) == {
        "name": "", "parameters": {"x": 0, "y": [0.5, ""]}, "paused": "", "concurrency_limit": 0,
        "work_pool": {"name": "", "job_variables": {"image": ""}}, "schedules": [{"cron": "0 6 * * *"}]}


def test_new_parameter_values_need_no_schema_check_and_a_model_only_acceptance_is_not_remembered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.pipeline import prefect_schema

    file = tmp_path / "prefect-rules.json"
    data: dict[str, Any] = {"name": "x", "deployments": [
        {"name": f"d{n}", "entrypoint": "f.py:x", "parameters": {"x": n}, "paused": "yes" if n == 1 else False}
        for n in range(2)]}
    prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))  # Prefect reads it; its schema hears the shapes
    asked: list[Any] = []
    real = prefect_schema.entries_accepted

    def counted(entries: list[Any], schema: dict[str, Any]) -> bool:
        asked.append(entries)
        return real(entries, schema)

    monkeypatch.setattr(prefect_schema, "entries_accepted", counted)
    data["deployments"][0]["parameters"] = {"x": 10}
    assert prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file)) == (data, [])
    assert asked == []
    data["deployments"][1]["paused"] = "maybe"  # the model accepted "yes", its schema did not: Prefect is asked again
    with pytest.raises(ConfigError, match=r"deployments.1\(d1\).paused"):
        prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))
