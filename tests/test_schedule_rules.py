"""Prefect's schedule rules applied without importing Prefect give Prefect's own verdicts, and flow discovery
does not import Prefect at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline.deployments import prefect_schedule_problem
from tasks.pipeline.schedule_rules import schedule_problem
from tests.helpers import REPO

SCHEDULES: list[dict[str, Any]] = [
    {"cron": "0 6 * * *"}, {"cron": "0 6 * * 1-5"}, {"cron": "0 6 * * SUN#2"}, {"cron": "0 6 L * *"},
    {"cron": "*/15 * * * *"}, {"cron": "0 0 1 jan *"}, {"cron": "@daily"}, {"cron": "@hourly"},
    {"cron": "0 6 LW * *"}, {"cron": "61 6 * * *"}, {"cron": "0 25 * * *"}, {"cron": "H 6 * * *"},
    {"cron": "R 6 * * *"}, {"cron": "0 6 * *"}, {"cron": "not a cron"}, {"cron": "0 6 * * 8"},
    {"cron": "0 6 31 2 *"}, {"cron": "0 0 * * mon-fri"}, {"cron": "0 6 * * 7"}, {"cron": "0 6 1,15 * *"},
    {"cron": "0 6 * * * 30"}, {"cron": "0 6 W * *"}, {"cron": ""},
    {"interval": 3600}, {"interval": 0.5}, {"interval": 86400, "timezone": "Europe/Berlin"},
    {"interval": 60, "timezone": "Mars/Olympus"}, {"interval": 60, "anchor_date": "2024-01-01T00:00:00"},
    {"interval": 0}, {"interval": -5},
    {"rrule": "FREQ=DAILY;BYHOUR=6"}, {"rrule": "DTSTART:20200101T000000\nRRULE:FREQ=WEEKLY;BYDAY=MO"},
    {"rrule": "FREQ=SOMETIMES"}, {"rrule": "FREQ=DAILY;BYHOUR=6", "timezone": "America/New_York"},
    {"rrule": "FREQ=DAILY", "timezone": "Mars/Olympus"}, {"rrule": "FREQ=SOMETIMES", "timezone": "Mars/Olympus"},
    {"rrule": "RDATE:" + ",".join(["20200101T000000"] * 500)}, {"rrule": "not an rrule"},
]


@pytest.mark.parametrize("fields", SCHEDULES, ids=lambda fields: json.dumps(fields)[:60])
def test_a_schedule_gets_prefects_own_verdict(fields: dict[str, Any]) -> None:
    assert schedule_problem(fields) == prefect_schedule_problem(fields)


def test_a_refused_schedule_is_refused_in_prefects_words() -> None:
    assert schedule_problem({"cron": "61 6 * * *"}) == 'Invalid cron string: "61 6 * * *"'
    assert schedule_problem({"interval": 60, "timezone": "Mars/Olympus"}) == (
        'Invalid timezone: "Mars/Olympus" (specify in IANA tzdata format, for example, America/New_York)')
    assert schedule_problem({"rrule": "FREQ=DAILY", "timezone": "Mars/Olympus"}) == 'Invalid timezone: "Mars/Olympus"'


DISCOVERY = """
import json, sys
from pathlib import Path
from tasks.pipeline.settings import load_settings
from tasks.stages.flows import flows_report
report, refusal = flows_report(load_settings(Path(sys.argv[1])))
print(json.dumps({"deployments": len(report["deployments"]), "errors": report["errors"], "refusal": str(refusal or ""),
                  "flows": sorted(flow["name"] for flow in report["flows"]),
                  "prefect": sorted(name for name in sys.modules if name == "prefect" or name.startswith("prefect."))}))
"""


def discover(config: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", DISCOVERY, str(config)], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def flows_project(root: Path, schedules: list[dict[str, Any]], **first: Any) -> Path:
    import yaml

    from tests.flows_repo import commit_all

    flows = root / "repo" / "flows"
    flows.mkdir(parents=True)
    for index in range(len(schedules)):
        (flows / f"flow_{index}.py").write_text(
            f"from prefect import flow\n\n\n@flow(name='flow-{index}')\ndef flow_{index}(x: int = 1) -> int:\n"
            "    return x\n")
    specs = {f"flow-{index}": {"schedules": [schedule]} for index, schedule in enumerate(schedules)}
    specs["flow-0"].update(first)
    (flows / "deployments.yaml").write_text(yaml.safe_dump({"flows": specs}))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root / "repo")], check=True)
    commit_all(root / "repo", "flows")
    config = root / "pipeline.toml"
    config.write_text('[project]\nname = "cold"\n[flows]\npath = "repo/flows"\nconfig = "repo/flows/deployments.yaml"\n'
                      '[environments.dev]\nprefect_api_url = "http://127.0.0.1:9/api"\nwork_pool = "dev"\nbranch = "*"\n')
    return config


def test_cold_discovery_checks_every_schedule_without_importing_prefect(tmp_path: Path) -> None:
    config = flows_project(tmp_path, [{"cron": "0 6 * * 1-5", "timezone": "Europe/Berlin"}, {"interval": 3600},
                                      {"rrule": "FREQ=DAILY;BYHOUR=6"}, {"cron": "0 6 * * SUN#2"}])
    found = discover(config)
    assert found == {"deployments": 4, "errors": [], "refusal": "", "prefect": [],
                     "flows": ["flow-0", "flow-1", "flow-2", "flow-3"]}
    assert not (tmp_path / ".forkflow" / "prefect-checks.json").read_text().count("Invalid")


def test_cold_discovery_refuses_a_bad_schedule_without_importing_prefect(tmp_path: Path) -> None:
    config = flows_project(tmp_path, [{"cron": "0 6 * * *"}, {"rrule": "FREQ=SOMETIMES"}])
    found = discover(config)
    assert found["prefect"] == []
    assert "flows.flow-1.schedules.0.rrule: bad rrule 'FREQ=SOMETIMES': invalid 'FREQ': SOMETIMES" in found["refusal"]


def test_a_trigger_is_checked_by_prefect_once_then_remembered(tmp_path: Path) -> None:
    trigger = {"enabled": True, "match": {"prefect.resource.id": "my.resource"}, "expect": ["external.event"]}
    config = flows_project(tmp_path, [{"interval": 60}], triggers=[trigger])
    assert discover(config)["deployments"] == 1
    again = discover(config)
    assert again == {"deployments": 1, "errors": [], "refusal": "", "prefect": [], "flows": ["flow-0"]}
    bad = flows_project(tmp_path / "bad", [{"interval": 60}], triggers=[{"expect": ["x"], "within": "soon"}])
    assert "triggers" in discover(bad)["refusal"]


def test_discovery_is_remembered_by_the_flow_files_content(tmp_path: Path) -> None:
    config = flows_project(tmp_path, [{"interval": 60}])
    assert discover(config)["flows"] == ["flow-0"]
    flow = tmp_path / "repo" / "flows" / "flow_0.py"
    flow.write_text(flow.read_text().replace("@flow(name='flow-0')", "@flow(name='flow-0')\ndef helper() -> None:\n"
                                             "    pass\n\n\n@flow(name='flow-zero')"))
    assert discover(config)["flows"] == ["flow-0", "flow-zero"]
    (tmp_path / "repo" / "flows" / "extra.py").write_text("from prefect import flow\n\n\n@flow\ndef extra() -> None:\n"
                                                         "    pass\n")
    assert discover(config)["flows"] == ["extra", "flow-0", "flow-zero"]
    (tmp_path / "repo" / "flows" / "extra.py").write_text("def extra(:\n")
    assert [error.split(":")[0] for error in discover(config)["errors"]] == ["extra.py"]
