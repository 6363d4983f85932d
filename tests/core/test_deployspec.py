"""Deployment specs as data: layering, Prefect's cron rules, Retry-After, image references (no server)."""

from __future__ import annotations

import httpx
import pytest

from tasks.core.deployment import Context, EnvironmentSettings
from tasks.core.deployspec import Document, desired_deployment, parse_document
from tasks.core.discovery import discover_source
from tests.helpers import REPO
from tests.test_deploy import SPECS


def test_layers_environment_overrides_and_fixed_fields() -> None:
    flows = {}
    for file in ("orbit_flows/hello.py", "orbit_flows/reports/daily_flow.py"):
        found, _ = discover_source((REPO / "examples/demo/upstream/flows" / file).read_text(), file)
        flows[found[0].name] = found[0]
    doc: Document = parse_document(SPECS, "deployments.yaml")
    ctx = Context(project="orbit", branch="release", commit="c0ffee", version="1.2.3")
    dev = EnvironmentSettings("dev", "http://x/api", "pool-dev", None, schedules=False)
    prod = EnvironmentSettings("prod", "http://x/api", "pool-prod", None, schedules=True)
    hello_dev = desired_deployment(doc, flows["hello"], dev, ctx)
    hello_prod = desired_deployment(doc, flows["hello"], prod, ctx)
    assert hello_dev.name == "orbit--release--hello--dev"
    assert hello_dev.spec["parameters"] == {"name": "orbit"} and hello_prod.spec["parameters"] == {"name": "production"}
    assert hello_prod.spec["work_pool_name"] == "pool-prod" and hello_prod.spec["work_queue_name"] == "critical"
    assert hello_dev.spec["work_queue_name"] == "default"
    assert hello_dev.spec["tags"] == ["orbit", "PACKAGE_VERSION=1.2.3", "COMMIT_HASH=c0ffee"]
    assert hello_dev.spec["job_variables"] == {"env": {"TEAM": "data", "DEPLOYMENT_NAME": "orbit--release--hello--dev"}}
    assert hello_dev.spec["version"] == "1.2.3" and "paused" not in hello_dev.spec
    report_dev = desired_deployment(doc, flows["daily-report"], dev, ctx)
    report_prod = desired_deployment(doc, flows["daily-report"], prod, ctx)
    assert report_dev.spec["description"] == "Build the daily report.", "from FLOW_SPEC"
    assert report_dev.spec["tags"][:2] == ["orbit", "reports"], "defaults and FLOW_SPEC tags add up"
    assert [s["active"] for s in report_dev.spec["schedules"]] == [False, False], "schedules off outside prod"
    assert [s["active"] for s in report_prod.spec["schedules"]] == [True, True]
    assert report_prod.spec["schedules"][1]["schedule"]["rrule"].startswith("DTSTART:")
    assert report_prod.spec["concurrency_limit"] == 1


@pytest.mark.parametrize(("cron", "problem"), [
    ("0 6 * * *", None), ("@daily", None), ("*/15 9-17 * jan-jun mon-fri", None), ("0 0 L * *", None),
    ("0 0 * * 5#3", None), ("0 0 * * SUN#2", None), ("0 0 1,15 * sun", None), ("0 0 * * * 30", None),
    ("0 0 15W * *", "'W' (nearest weekday) is not supported"), ("0 0 LW * *", "'W' (nearest weekday) is not supported"),
    ("0 24 * * *", "hour: '24' is not in 0-23"), ("0 0 * * funday", "day of week: 'funday' is not in 0-7"),
    ("*/0 * * * *", "minute: bad step '0'"), ("0 0 * *", "expected 5 fields"),
])
def test_cron_check_agrees_with_prefect(cron: str, problem: str | None) -> None:
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    from tasks.core.schedules import cron_problem

    found = cron_problem(cron)
    assert (found is None) if problem is None else (problem in (found or "")), found
    try:
        CronSchedule(cron=cron)
        prefect_accepts = True
    except ValidationError:
        prefect_accepts = False
    assert prefect_accepts == (found is None), f"Prefect {'accepts' if prefect_accepts else 'rejects'} {cron!r}"


def test_retry_after_reads_seconds_and_dates() -> None:
    import datetime as dt
    from email.utils import format_datetime

    from tasks.adapters.prefect import retry_after

    def answer(header: str | None) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": header} if header else {})

    assert retry_after(answer("3"), 0) == 3.0
    later = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after(answer(later), 0) <= 30
    assert retry_after(answer(None), 0) < 1 and retry_after(None, 10) <= 5.2


def test_image_reference_prefers_the_digest() -> None:
    from tasks.core.runtime import image_reference, repository_of

    report = {"images": [  # as the image stage writes it: bare tags, the repository and the full references
        {"python": "3.11", "flavor": "base", "tags": ["1.0-python3.11"], "repository": "reg:5001/orbit",
         "references": ["reg:5001/orbit:1.0-python3.11"], "status": "built", "digest": "sha256:1"},
        {"python": "3.12", "flavor": "base", "tags": ["1.0-python3.12"], "repository": "reg:5001/orbit",
         "status": "built", "digest": None},
        {"python": "3.12", "flavor": "kubernetes", "tags": ["1.0-python3.12-kubernetes"], "repository": "reg:5001/orbit",
         "references": ["reg:5001/orbit:1.0-python3.12-kubernetes"], "status": "up-to-date", "digest": "sha256:2"},
    ]}
    assert image_reference(report, "3.11", "base") == "reg:5001/orbit@sha256:1"
    assert image_reference(report, "3.12", "base") == "reg:5001/orbit:1.0-python3.12"
    assert image_reference(report, "3.12", "kubernetes") == "reg:5001/orbit@sha256:2"
    older = {"images": [{"python": "3.12", "flavor": "base", "tags": ["reg:5001/orbit:1.0"], "status": "built", "digest": "sha256:3"}]}
    assert image_reference(older, "3.12", "base") == "reg:5001/orbit@sha256:3", "a report whose tags are full references"
    assert image_reference(None, "3.12", "base") is None
    assert repository_of("reg:5001/orbit") == "reg:5001/orbit"
