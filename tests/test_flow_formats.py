"""Real flow repositories as teams have them: prefect.yaml, Pocket-style FlowSpec monorepos, acme static configs,
Prefect 2 style constants and f-string names.

The fixtures under tests/fixtures/ reproduce each pattern. For prefect.yaml, Prefect's own CLI is the oracle:
`prefect --no-prompt deploy --all` deploys the fixture to one server, forkflow to another, and the deployments
are compared field by field.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.core.deployplan import canonical
from tasks.core.discovery import discover_source, duplicate_names
from tasks.core.errors import ConfigError
from tasks.core.static_values import NotStatic, module_constants, static_value
from tasks.core.yamlfile import load_yaml
from tasks.pipeline.settings import settings
from tests.flows_repo import IDENTITY, commit_all, unique_project
from tests.helpers import REPO, prefect_http, run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_wheel_set

FIXTURES = REPO / "tests" / "fixtures"
PREFECT = str(Path(sys.executable).parent / "prefect")


# ---------------------------------------------------------------- static reading


def test_names_from_constants_f_strings_and_concatenation() -> None:
    text = (FIXTURES / "prefect2_style" / "flows" / "bonds" / "reporting.py").read_text()
    flows, errors = discover_source(text, "bonds/reporting.py")
    assert errors == []
    assert [f.name for f in flows] == ["bond-reporting", "Bond Reporting Legacy", "bond-reporting-daily",
                                       "bond-reporting-weekly"]


def test_a_name_that_needs_running_the_file_is_an_error_not_a_silent_fallback() -> None:
    source = "from prefect import flow\nfrom config import NAME\n\n@flow(name=NAME)\ndef job():\n    pass\n"
    flows, errors = discover_source(source, "job.py")
    assert flows == []
    assert [str(e) for e in errors] == ["job.py:5: flow job: NAME is not a module-level constant; its name cannot be "
                                        "known without running the file (use a literal or a module-level constant)"]


def test_a_constant_bound_twice_is_not_static() -> None:
    import ast

    tree = ast.parse("A = 'x'\nB = A + '-y'\nA = 'z'\nC = [1, 2] + [3]\nD = {'k': B, **{'j': -1}}\n")
    constants = module_constants(tree)
    assert "A" not in constants and constants["B"] == "x-y" and constants["C"] == [1, 2, 3]
    assert constants["D"] == {"k": "x-y", "j": -1}
    with pytest.raises(NotStatic, match="adds values of different kinds"):
        static_value(ast.parse("'a' + 1", mode="eval").body, {})


def test_flow_spec_calls_are_read_keyword_by_keyword() -> None:
    path = FIXTURES / "pocket_monorepo" / "marketing" / "src" / "campaigns" / "sync_flow.py"
    flows, errors = discover_source(path.read_text(), "marketing/src/campaigns/sync_flow.py")
    assert errors == []
    (flow,) = flows
    assert flow.name == "sync" and flow.project_prefix
    assert flow.spec_deployments == (
        {"name": "hourly", "parameters": {"batch": 50}, "tags": ["marketing"],
         "schedules": [{"cron": "0 * * * *", "timezone": "UTC"}]},
        {"name": "backfill", "parameters": {"batch": 5000}, "description": "Backfill for marketing"},
    )


@pytest.mark.parametrize(("spec", "message"), [
    ("FlowSpec(flow=other, docker_env='base')", "FlowSpec(flow=...) must name a flow function defined in this file"),
    ("FlowSpec(flow=job, deployments=[FlowDeployment(cpu='1024', name='x')])",
     "FlowDeployment keyword 'cpu' (line 3) is not supported; supported: name, deployment_name, cron"),
    ("FlowSpec(flow=job, deployments=[FlowDeployment(cron='0 * * * *')])", "FlowDeployment on line 3 has no name"),
    ("FlowSpec(flow=job, deployments=[FlowDeployment(name=make())])", "make() is not a literal or module-level constant"),
])
def test_bad_flow_specs_name_the_file_and_line(spec: str, message: str) -> None:
    source = f"from prefect import flow\n\nFLOW_SPEC = {spec}\n\n@flow\ndef job():\n    pass\n"
    _, errors = discover_source(source, "job_flow.py")
    assert len(errors) == 1 and str(errors[0]).startswith("job_flow.py:3: FlowSpec") or "FlowSpec(flow=" in str(errors[0])
    assert message in str(errors[0])


def test_names_differing_only_in_case_or_separator_collide() -> None:
    flows, _ = discover_source("from prefect import flow\n\n@flow(name='Hello')\ndef a():\n    pass\n\n"
                               "@flow(name='hello')\ndef b():\n    pass\n\n@flow(name='my_job')\ndef c():\n    pass\n\n"
                               "@flow(name='my-job')\ndef d():\n    pass\n", "x.py")
    problems = [str(e) for e in duplicate_names(flows)]
    assert problems == ["x.py:8: flow name 'hello' gives the same deployment name as 'Hello' in x.py:4",
                        "x.py:16: flow name 'my-job' gives the same deployment name as 'my_job' in x.py:12"]


def test_yaml_refuses_a_key_given_twice_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"prefect.yaml:4: key 'name' is given twice \(line 2 and line 4\)"):
        load_yaml("deployments:\n  - name: a\n    entrypoint: f.py:a\n    name: b\n", "prefect.yaml")
    merged = load_yaml("d: &d {a: 1, b: 2}\nx:\n  <<: *d\n  b: 3\n", "anchors.yaml")
    assert merged["x"] == {"a": 1, "b": 3}, "merge keys still work and yield to the mapping's own keys"


# ---------------------------------------------------------------- repositories and configs


def fixture_repo(tmp_path: Path, name: str) -> Path:
    """The fixture as a git repository on `main` with an origin remote (as a team's clone has)."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / name, repo, ignore=shutil.ignore_patterns("__pycache__"))
    return fixture_repo_in_place(repo)


def fixture_repo_in_place(repo: Path) -> Path:
    """`repo` (already holding its files) as a git repository on `main` with an origin remote beside it."""
    env = {**os.environ, **IDENTITY}
    origin = repo.parent / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    for argv in (["init", "-q", "-b", "main"], ["remote", "add", "origin", str(origin)]):
        subprocess.run(["git", *argv], cwd=repo, check=True, env=env)
    commit_all(repo, "fixture")
    return repo


def pipeline(tmp_path: Path, api_url: str, pool: str = "ff-dev", flows: str = "", extra: str = "",
             path: str = "repo", project: str = "fixture") -> Path:
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""state_dir = ".forkflow"

[project]
name = "{project}"

[flows]
path = "{path}"
{flows}
[environments.dev]
prefect_api_url = "{api_url}"
work_pool = "{pool}"
branch = "*"
schedules = true
{extra}""", encoding="utf-8")
    return config


def run_stages(config: Path, monkeypatch: pytest.MonkeyPatch, *stages: str, **options: Any) -> dict[str, Any]:
    """The flows stage, then deploy (in process); returns the last report."""
    from tasks.stages.deploy.stage import deploy_action
    from tasks.stages.flows import flows_action

    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    monkeypatch.delenv("FORKFLOW_DRY_RUN", raising=False)
    settings.cache_clear()
    flows_action()
    if "deploy" in stages:
        deploy_action(**options)
    report = "deploy" if "deploy" in stages else "flows"
    loaded: dict[str, Any] = json.loads((config.parent / ".forkflow" / "reports" / f"{report}.json").read_text())
    settings.cache_clear()
    return loaded


def deployments_on(api: str) -> dict[str, dict[str, Any]]:
    """Every deployment on the server by flow/name."""
    with prefect_http(api) as http:
        items = every_page(http, "deployments/filter")
        flows = {f["id"]: f["name"] for f in every_page(http, "flows/filter")}
    return {f"{flows[item['flow_id']]}/{item['name']}": item for item in items}


def every_page(http: Any, path: str) -> list[dict[str, Any]]:
    """Every item a filter endpoint has, page by page (a shared server holds more than one page of 200)."""
    found: list[dict[str, Any]] = []
    while True:
        page = http.post(path, json={"limit": 200, "offset": len(found)}).json()
        found += page
        if len(page) < 200:
            return found


def test_prefect2_style_repository_lists_its_flows_and_deploys_nothing_without_a_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture_repo(tmp_path, "prefect2_style")
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api"), monkeypatch)
    assert report["errors"] == []
    assert sorted(f["name"] for f in report["flows"]) == ["Bond Reporting Legacy", "bond-reporting",
                                                          "bond-reporting-daily", "bond-reporting-weekly", "fx-rates"]
    assert report["deployments"] == [] and report["config"] == ""


def test_a_deployments_yaml_deploys_only_the_flows_it_lists_unless_it_says_every_flow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect2_style")
    specs = repo / "flows" / "deployments.yaml"
    specs.write_text(specs.read_text().replace("every_flow: true\n", ""))
    commit_all(repo, "listed flows only")
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", path="repo/flows"), monkeypatch)
    assert sorted(d["flow"] for d in report["deployments"]) == ["bond-reporting-daily", "fx-rates"]
    assert report["notes"] == ["3 flow(s) not listed in deployments.yaml and without a FLOW_SPEC are not deployed: "
                               "bond-reporting, Bond Reporting Legacy, bond-reporting-weekly "
                               "(list them under flows:, or set every_flow: true)"]


def test_pocket_monorepo_keeps_same_named_flows_apart_and_skips_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture_repo(tmp_path, "pocket_monorepo")
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api"), monkeypatch)
    assert report["errors"] == []
    files = sorted(f["file"] for f in report["flows"])
    assert files == ["marketing/src/campaigns/sync_flow.py", "sales/src/leads/helpers.py", "sales/src/leads/sync_flow.py"]
    names = sorted((d["flow"], d["names"]["dev"]) for d in report["deployments"])
    assert names == [("marketing.sync", "backfill-dev"), ("marketing.sync", "hourly-dev"), ("sales.sync", "daily-dev")]


def test_prefect_yaml_problems_are_refused_before_any_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    config = pipeline(tmp_path, "http://127.0.0.1:9/api")
    text = (repo / "prefect.yaml").read_text()
    monkeypatch.delenv("FIXTURE_POOL", raising=False)
    monkeypatch.delenv("FIXTURE_DIR", raising=False)
    monkeypatch.delenv("FIXTURE_TAG", raising=False)
    with pytest.raises(ConfigError, match=r"\{\{ \$FIXTURE_DIR \}\}, \{\{ \$FIXTURE_POOL \}\}, \{\{ \$FIXTURE_TAG \}\} refer to "
                                          r"environment variables that are not set: FIXTURE_DIR, FIXTURE_POOL, FIXTURE_TAG"):
        run_stages(config, monkeypatch, "deploy", validate_only=True)
    for key, value in {"FIXTURE_POOL": "p", "FIXTURE_TAG": "t", "FIXTURE_DIR": str(repo)}.items():
        monkeypatch.setenv(key, value)
    (repo / "prefect.yaml").write_text(text.replace("    description: Nightly extract.", "    descripton: typo"))
    (warning,) = run_stages(config, monkeypatch)["config_warnings"]  # prefect deploy drops it without a word
    assert warning.endswith("deployments.0(extract-nightly).descripton: prefect deploy ignores this key, so forkflow "
                            "ignores it too; delete it (or correct its spelling: allowed here: build, concurrency_limit, "
                            "description, enforce_parameter_schema, entrypoint, flow_name, name, parameters, paused, "
                            "pull, push, schedule, schedules, sla, tags, triggers, version, version_type, work_pool)")
    strict = pipeline(tmp_path, "http://127.0.0.1:9/api", flows="strict = true\n")
    with pytest.raises(ConfigError, match=r"keys prefect deploy ignores \(\[flows\] strict = true refuses them\)\n"
                                          r"  - deployments.0\(extract-nightly\).descripton: prefect deploy ignores"):
        run_stages(strict, monkeypatch)
    (repo / "prefect.yaml").write_text(text.replace("flows/etl.py:extract", "flows/etl.py:missing"))
    with pytest.raises(ConfigError, match=r"no flow at 'flows/etl.py:missing' \(relative to the flows folder\); "
                                          r"flows: flows/etl.py:extract"):
        run_stages(config, monkeypatch)
    (repo / "prefect.yaml").write_text(text.replace('cron: "0 6 * * 1-5"', 'cron: "0 6 LW * *"'))
    with pytest.raises(ConfigError, match=r"bad cron '0 6 LW \* \*': day of month: 'LW': 'W' \(nearest weekday\)"):
        run_stages(config, monkeypatch)
    (repo / "prefect.yaml").write_text(text.replace('timezone: Europe/Berlin', 'timezone: Mars/Olympus'))
    with pytest.raises(ConfigError, match=r"unknown timezone 'Mars/Olympus'"):
        run_stages(config, monkeypatch)


def test_schedules_prefect_accepts_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    text = (repo / "prefect.yaml").read_text().replace('cron: "0 6 * * 1-5"', 'cron: "0 6 * * SUN#2"')
    (repo / "prefect.yaml").write_text(text.replace('interval: 3600', 'interval: "PT1H"'))
    for key, value in {"FIXTURE_POOL": "p", "FIXTURE_TAG": "t", "FIXTURE_DIR": str(repo)}.items():
        monkeypatch.setenv(key, value)
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api"), monkeypatch)
    assert len(report["deployments"]) == 3 and report["errors"] == []
    verdicts = json.loads((tmp_path / ".forkflow" / "prefect-checks.json").read_text())["verdicts"]
    assert verdicts[json.dumps({"cron": "0 6 * * SUN#2"}, sort_keys=True)] == ""


FIELDS = ("entrypoint", "description", "version", "parameters", "parameter_openapi_schema", "enforce_parameter_schema",
          "tags", "work_pool_name", "work_queue_name", "job_variables", "pull_steps", "concurrency_limit",
          "concurrency_options", "paused")


UNANCHORED = 86400.0  # the fixture's interval without anchor_date: each server anchors it at its deploy time


def schedules_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    def body(schedule: dict[str, Any]) -> dict[str, Any]:
        unanchored = schedule.get("interval") == UNANCHORED
        return {k: v for k, v in schedule.items() if not (unanchored and k == "anchor_date")}
    return sorted(({"schedule": body(s["schedule"]), "active": s["active"], "parameters": s.get("parameters") or {},
                    "slug": s.get("slug")} for s in item["schedules"]), key=canonical)


@pytest.mark.services
@pytest.mark.slow
def test_prefect_yaml_deploys_what_prefect_deploy_all_deploys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], prefect_api: str,
        oracle_api: str) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    values = {"FIXTURE_POOL": "ff-e2e", "FIXTURE_TAG": "nightly", "FIXTURE_DIR": str(repo)}
    for key, value in values.items():
        monkeypatch.setenv(key, value)

    def prefect_deploy(api: str, **env: str) -> None:
        done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "PREFECT_API_URL": api, **env}, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr

    for api in (oracle_api, prefect_api):
        server_values(api, table="orders", token=SECRET)
    prefect_deploy(oracle_api)
    prefect_deploy(prefect_api, FIXTURE_TAG="before-forkflow")
    adopted = {key: item["id"] for key, item in deployments_on(prefect_api).items()}  # the server is shared: others too
    config = pipeline(tmp_path, prefect_api)
    first = run_stages(config, monkeypatch, "deploy")
    assert sorted(e["status"] for e in first["deployments"]) == ["unchanged", "unchanged", "updated"], \
        [(e["flow"], e["diff"]) for e in first["deployments"]]
    expected = ["daily-report/default", "extract/extract-nightly", "load-warehouse/default"]
    theirs = {key: item for key, item in deployments_on(oracle_api).items() if key in expected}  # the servers are shared
    ours = {key: item for key, item in deployments_on(prefect_api).items() if key in theirs}
    assert sorted(ours) == sorted(theirs) == expected
    for key, their in theirs.items():
        assert ours[key]["id"] == adopted[key], f"{key}: adopted in place, not replaced"
        for name in FIELDS:
            assert ours[key][name] == their[name], f"{key}.{name}"
        assert schedules_of(ours[key]) == schedules_of(their), key
        assert automations_of(prefect_api, ours[key]["id"]) == automations_of(oracle_api, their["id"]), key
    assert [a["name"] for a in automations_of(prefect_api, ours["extract/extract-nightly"]["id"])] == [
        "extract-nightly__automation_1", "late-export"], "prefect deploy's automations replaced, not doubled"
    assert ours["load-warehouse/default"]["job_variables"]["env"]["WAREHOUSE_TOKEN"] == SECRET
    assert ours["load-warehouse/default"]["parameters"] == {"table": "orders"}
    short = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True, cwd=repo, capture_output=True,
                           text=True).stdout.strip()
    assert ours["daily-report/default"]["version"] == short, "a deploy-time build step's output, run by Prefect's runner"
    second = run_stages(config, monkeypatch, "deploy")
    assert {e["status"] for e in second["deployments"]} == {"unchanged"} and second["writes"] == 0, second["deployments"]
    state = tmp_path / ".forkflow"
    assert not [f for f in state.rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()], "never written down"
    assert SECRET not in capsys.readouterr().out, "never printed"

    prefect_deploy(prefect_api)  # prefect deploy takes the automations back (its own, untagged) ...
    for api, deployment in ((oracle_api, theirs), (prefect_api, ours)):
        persons_automation(api, deployment["extract/extract-nightly"]["id"])
    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text[:text.index("    triggers:\n")] + text[text.index("  - name: default\n"):])
    commit_all(repo, "drop the triggers")  # ... then the file drops the triggers: both tools leave none
    prefect_deploy(oracle_api)
    untriggered = run_stages(config, monkeypatch, "deploy")
    assert {e["flow"]: e["diff"] for e in untriggered["deployments"] if e["status"] == "updated"}["extract"] == [
        "triggers"]
    for api, deployment in ((oracle_api, theirs), (prefect_api, ours)):
        kept = automations_of(api, deployment["extract/extract-nightly"]["id"])
        assert [a["name"] for a in kept] == ["a person's"], f"{api}: prefect deploy's go, a person's stays"
    assert run_stages(config, monkeypatch, "deploy")["writes"] == 0

    text = (repo / "prefect.yaml").read_text()  # two flows' deployments are named `default`: the right one changes
    (repo / "prefect.yaml").write_text(text.replace("    tags: [reports]\n", "    tags: [reports, weekly]\n"))
    retagged = run_stages(config, monkeypatch, "deploy")
    assert {e["flow"]: e["diff"] for e in retagged["deployments"] if e["status"] != "unchanged"} == {
        "daily-report": ["tags"]} and retagged["writes"] == 1
    now = deployments_on(prefect_api)
    assert "weekly" in now["daily-report/default"]["tags"] and "weekly" not in now["load-warehouse/default"]["tags"]
    commit_all(repo, "tag the report deployment")

    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text[:text.index("  - name: default\n    entrypoint: flows/reports.py")])
    commit_all(repo, "drop the report deployment")
    pruned = run_stages(config, monkeypatch, "deploy", prune=True)
    assert not [e for e in pruned["deployments"] if e["status"] == "pruned"], "prune never deletes what others made"
    assert "daily-report/default" in deployments_on(prefect_api)

    flow_run = start_run(prefect_api, ours["load-warehouse/default"]["id"], {"table": "invoices"})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", "ff-e2e", "--run-once"], check=False, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PREFECT_API_URL": prefect_api})
    assert run_state(prefect_api, flow_run) == "COMPLETED", worker.stdout + worker.stderr


def test_an_unusable_prefect_yaml_stops_the_flows_task_beside_files_no_entrypoint_needs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken file no entrypoint names (a 3.12 f-string, a template) is reported but stops nothing, as prefect deploy
    imports only the entrypoints; a file with a byte-order mark reads fine; a config that cannot be used stops the
    task whatever else is found, after the listing is written."""
    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    (repo / "workflows" / "broken.py").write_text("from prefect import flow\n\n@flow\ndef broken(:\n    pass\n")
    reader = repo / "workflows" / "reader.py"
    reader.write_bytes(b"\xef\xbb\xbf" + reader.read_bytes())
    commit_all(repo, "a broken file and a byte-order mark")
    config = pipeline(tmp_path, "http://127.0.0.1:9/api", pool="ff-e2e")
    listed = run_stages(config, monkeypatch)
    assert listed["errors"] == [] and len(listed["deployments"]) == len(WILD)
    (warning,) = listed["warnings"]
    assert warning.startswith("workflows/broken.py:4: syntax error")
    assert "(no entrypoint is in this file, so it does not stop a deploy)" in capsys.readouterr().err

    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text.replace("pipelines.modal_a:main", "pipelines.modal_z:main"))
    commit_all(repo, "a wrong entrypoint")
    with pytest.raises(ConfigError, match=r"no flow at 'pipelines.modal_z:main'"):
        run_stages(config, monkeypatch)
    report = json.loads((tmp_path / ".forkflow" / "reports" / "flows.json").read_text())
    assert report["unusable_config"] == str(repo / "prefect.yaml") and report["deployments"] == []
    assert len(report["flows"]) == 5, "the listing is written before the run stops"
    out = capsys.readouterr().out
    assert f"deployment config {repo / 'prefect.yaml'} cannot be used (see below): nothing is deployed" in out
    assert "no deployment config" not in out


WILD = ["generate-metadata/metadata-cpu", "main/modal-a", "main/modal-b", "Get Associated Domains/reader",
        "Get Associated Domains/query", "Get Associated Domains/custom-image", "generate-metadata/from-pwd",
        "generate-metadata/pool-image"]


@pytest.mark.services
@pytest.mark.slow
def test_prefect_yaml_as_public_repositories_write_it_deploys_what_prefect_deploy_all_deploys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str, oracle_api: str) -> None:
    """`schedule: null`, `./` and module entrypoints, one flow name in two files, a custom image without pull steps."""
    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    monkeypatch.setenv("FIXTURE_IMAGE", "registry.example.com/team/flows:1.0")
    for api in (oracle_api, prefect_api):
        server_values(api, table="wild", token=SECRET)
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PREFECT_API_URL": oracle_api, "PWD": str(repo)}, timeout=300)  # as a shell
    assert done.returncode == 0, done.stdout + done.stderr
    config = pipeline(tmp_path, prefect_api, pool="ff-e2e")
    report = run_stages(config, monkeypatch, "deploy")
    assert sorted(f"{e['flow']}/{e['name']}" for e in report["deployments"] if e["status"] == "created") == sorted(WILD)
    ours = same_as_prefects(prefect_api, oracle_api, WILD)
    assert ours["main/modal-a"]["entrypoint"] == "pipelines.modal_a:main"
    assert "image" not in ours["generate-metadata/pool-image"]["job_variables"], "the pool's default image, as Prefect"
    assert ours["generate-metadata/from-pwd"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(repo)}}], "{{ $PWD }}: the file's folder"
    assert ours["Get Associated Domains/reader"]["version"] == "release-wild", "the step asked the target server"
    again = run_stages(config, monkeypatch, "deploy")
    assert again["writes"] == 0, [(e["name"], e.get("diff")) for e in again["deployments"] if e["status"] != "unchanged"]
    assert ours["Get Associated Domains/custom-image"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect"}}]

    flow_run = start_run(prefect_api, ours["main/modal-b"]["id"], {"x": 21})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", "ff-e2e", "--run-once"], check=False, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PREFECT_API_URL": prefect_api})
    assert run_state(prefect_api, flow_run) == "COMPLETED", worker.stdout + worker.stderr
    assert "modal-b got x=21" in worker.stdout + worker.stderr, "the module entrypoint ran"


def same_as_prefects(ours_api: str, oracle_api: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """forkflow's deployments `keys` (flow/name) on one server, each field as Prefect's CLI made it on the other."""
    theirs = {key: item for key, item in deployments_on(oracle_api).items() if key in keys}
    ours = {key: item for key, item in deployments_on(ours_api).items() if key in keys}
    assert sorted(ours) == sorted(theirs) == sorted(keys)
    for key in keys:
        for name in FIELDS:
            assert ours[key][name] == theirs[key][name], f"{key}.{name}"
        assert schedules_of(ours[key]) == schedules_of(theirs[key]), key
    return ours


def nested_prefect_file(repo: Path) -> str:
    """The fixture's prefect.yaml one folder down, its entrypoints still from the repository root (as a CI job runs
    `prefect deploy --prefect-file deploy/prefect.yaml` there), its deployments renamed `<name>-nested`."""
    text = (repo / "prefect.yaml").read_text().replace("entrypoint: ./flows/", "entrypoint: flows/")
    (repo / "deploy").mkdir()
    (repo / "deploy" / "prefect.yaml").write_text(re.sub(r"(  - name: [\w-]+)", r"\1-nested", text))
    commit_all(repo, "a prefect.yaml deployed from the root")
    return "deploy/prefect.yaml"


def test_a_nested_prefect_yaml_with_entrypoints_from_the_root_needs_run_from_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    nested = nested_prefect_file(repo)
    config = pipeline(tmp_path, "http://127.0.0.1:9/api", flows=f'config = "repo/{nested}"\n')
    with pytest.raises(ConfigError, match=r"no flow at 'flows/metadata.py:generate_metadata' \(relative to deploy\); flows: "
                                          r"none found; it is there relative to \[flows\] path: set \[flows\] run_from"):
        run_stages(config, monkeypatch)
    config = pipeline(tmp_path, "http://127.0.0.1:9/api", flows=f'config = "repo/{nested}"\nrun_from = "path"\n')
    listed = run_stages(config, monkeypatch)
    assert [d["name"] for d in listed["deployments"]] == [f"{name.split('/')[1]}-nested" for name in WILD]


@pytest.mark.services
@pytest.mark.slow
def test_run_from_path_deploys_what_prefect_deploy_with_a_prefect_file_deploys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str, oracle_api: str) -> None:
    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    nested = nested_prefect_file(repo)
    monkeypatch.setenv("FIXTURE_IMAGE", "registry.example.com/team/flows:1.0")
    for api in (oracle_api, prefect_api):
        server_values(api, table="wild", token=SECRET)
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", nested], check=False, cwd=repo,
                          capture_output=True, text=True, env={**os.environ, "PREFECT_API_URL": oracle_api, "PWD": str(repo)},
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    config = pipeline(tmp_path, prefect_api, flows=f'config = "repo/{nested}"\nrun_from = "path"\n')
    run_stages(config, monkeypatch, "deploy")
    ours = same_as_prefects(prefect_api, oracle_api, [f"{key}-nested" for key in WILD])
    assert ours["main/modal-a-nested"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(repo.resolve())}}], "runs from the root"


IN_IMAGE = """deployments:
  - name: in-image
    entrypoint: pipelines.modal_b:main
    parameters: {{x: 5}}
    pull:
      - prefect.deployments.steps.set_working_directory: {{directory: /opt/flows}}
    work_pool:
      name: ff-docker-dev
      job_variables: {{network_mode: host, volumes: ["{flows}:/opt/flows:ro"]}}
"""


@pytest.mark.docker
@pytest.mark.services
@pytest.mark.slow
def test_a_deployed_flow_runs_on_a_docker_worker_in_the_image_the_image_stage_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry, base_images: list[str],
        prefect_api: str) -> None:
    """The image stage builds an image with Prefect in it and pushes it; deploy names it by digest for a docker
    pool; Prefect's Docker worker pulls it and the flow (a module entrypoint, mounted) completes in it."""
    import prefect

    shared = Path(f"/tmp/forkflow-worker-{os.urandom(4).hex()}")  # readable by the image's non-root user
    try:
        shutil.copytree(FIXTURES / "prefect_yaml_in_the_wild", shared / "repo", ignore=shutil.ignore_patterns("__pycache__"))
        shared.chmod(0o755)
        (shared / "repo" / "prefect.yaml").write_text(IN_IMAGE.format(flows=shared / "repo"))
        repo = fixture_repo_in_place(shared / "repo")
        repository = f"t{os.urandom(4).hex()}/in-image"
        images = image_config_text(registry.address, repository, python=("3.12",), flavors=("base",))
        config = pipeline(tmp_path, prefect_api, pool="ff-docker-dev", path=str(repo),
                          extra=images[images.index("[images]"):])
        write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", requires=[
            f"prefect=={prefect.__version__}", "fastapi==0.150.0"])])
        built = run_doit(config, "image:3.12-base", env=registry.env)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        (image,) = json.loads((tmp_path / ".forkflow" / "reports" / "image.json").read_text())["images"]
        deployed = run_stages(config, monkeypatch, "deploy")
        assert [e["status"] for e in deployed["deployments"]] == ["created"]
        item = deployments_on(prefect_api)["main/in-image"]
        assert item["job_variables"]["image"] == f"{registry.address}/{repository}@{image['digest']}"
        docker_config = tmp_path / "docker-config"  # the worker pulls with the registry's credentials
        registry_login(registry, docker_config)
        flow_run = start_run(prefect_api, item["id"], {"x": 21})
        worker = subprocess.run([PREFECT, "worker", "start", "--pool", "ff-docker-dev", "--type", "docker", "--run-once"],
                                check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                                env={**os.environ, "PREFECT_API_URL": prefect_api, "DOCKER_CONFIG": str(docker_config)})
        assert run_state(prefect_api, flow_run) == "COMPLETED", worker.stdout[-4000:] + worker.stderr[-4000:]
        assert "modal-b got x=21" in worker.stdout + worker.stderr, "the flow ran in the container"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


SECRET = "s3cr3t-" + os.urandom(4).hex()


def server_values(api: str, *, table: str, token: str) -> None:
    """The variable and the Secret block the fixture's prefect.yaml refers to, made with Prefect's own client."""
    script = ("import sys\nfrom prefect.blocks.system import Secret\nfrom prefect.variables import Variable\n"
              "Variable.set('fixture_table', sys.argv[1], overwrite=True)\n"
              "Secret(value=sys.stdin.read()).save('fixture-token', overwrite=True)\n")
    done = subprocess.run([sys.executable, "-c", script, table], check=False, input=token, capture_output=True, text=True,
                          env={**os.environ, "PREFECT_API_URL": api}, timeout=120)
    assert done.returncode == 0, done.stderr


def registry_login(registry: Registry, folder: Path) -> None:
    """A Docker client config holding the registry's credentials, as `docker login` writes it."""
    import base64

    folder.mkdir(mode=0o700)
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": token}}}))


def start_run(api: str, deployment_id: str, parameters: dict[str, Any]) -> str:
    with prefect_http(api) as http:
        response = http.post(f"deployments/{deployment_id}/create_flow_run", json={"parameters": parameters})
    assert response.status_code == 201, f"{response.status_code}: {response.text}"
    return str(response.json()["id"])


def run_state(api: str, flow_run: str) -> str:
    with prefect_http(api) as http:
        return str(http.get(f"flow_runs/{flow_run}").json()["state"]["type"])


def automations_of(api: str, deployment_id: str) -> list[dict[str, Any]]:
    """The automations that run the deployment, without what differs between servers (ids, times, tags)."""
    with prefect_http(api) as http:
        items = http.post("automations/filter", json={}).json()
    runs = [item for item in items if any(action.get("deployment_id") == deployment_id for action in item["actions"])]
    return sorted(({"name": item["name"], "enabled": item["enabled"], "description": item["description"],
                    "trigger": {k: v for k, v in item["trigger"].items() if k != "id"},
                    "actions": [{k: v for k, v in action.items() if k != "deployment_id"} for action in item["actions"]]}
                   for item in runs), key=lambda item: str(item["name"]))


def persons_automation(api: str, deployment_id: str) -> None:
    """An automation someone made by hand that runs the deployment (not owned by it)."""
    body = {"name": "a person's", "trigger": {"type": "event", "posture": "Reactive", "expect": ["manual.go"],
                                              "threshold": 1, "within": 0},
            "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": deployment_id}]}
    with prefect_http(api) as http:
        response = http.post("automations/", json=body)
    assert response.status_code == 201, response.text


def limit_of(item: dict[str, Any]) -> int | None:
    limit = (item.get("global_concurrency_limit") or {}).get("limit", item.get("concurrency_limit"))
    return int(limit) if limit is not None else None


def run_with_worker(api: str, deployment_id: str, pool: str, cwd: Path, parameters: dict[str, Any] | None = None) -> str:
    """Start a run of the deployment, let a real process worker take it; the run's final state."""
    flow_run = start_run(api, deployment_id, parameters or {})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", pool, "--run-once"], check=False, capture_output=True,
                            text=True, timeout=300, cwd=cwd, env={**os.environ, "PREFECT_API_URL": api})
    state = run_state(api, flow_run)
    assert state == "COMPLETED", worker.stdout[-3000:] + worker.stderr[-3000:]
    return state


@pytest.mark.services
@pytest.mark.slow
def test_acme_static_config_deploys_with_acme_conventions_and_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    repo = fixture_repo(tmp_path, "acme_project")
    project = unique_project()
    with prefect_http(prefect_api) as http:
        http.post("work_pools/", json={"name": "acme-pool", "type": "process"})
    report = run_stages(pipeline(tmp_path, prefect_api, pool="ff-e2e", project=project), monkeypatch, "deploy")
    assert sorted(e["status"] for e in report["deployments"]) == ["created", "created"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], check=False, cwd=repo, capture_output=True, text=True).stdout.strip()
    found = deployments_on(prefect_api)
    hello = found[f"hello_world/{project}--main--hello-world--dev"]
    quality = found[f"data_quality/{project}--main--data-quality--dev"]
    assert hello["work_pool_name"] == "acme-pool" and quality["work_pool_name"] == "ff-e2e", "acme's pool, else the environment's"
    assert hello["labels"].get("forkflow.project") == project and hello["labels"].get("forkflow.branch") == "main"
    assert hello["version"] == f"main-{commit}"
    assert f"PROJECT_NAME={project}" in hello["tags"] and "BRANCH_NAME=main" in hello["tags"]
    assert hello["parameters"] == {"name": "acme"} and hello["description"] == "Hello World"
    assert [s["schedule"]["cron"] for s in hello["schedules"]] == ["0 12 * * 1-5"]
    assert limit_of(hello) == 1, "acme's default concurrency limit"
    assert quality["paused"] is True and limit_of(quality) == 3
    with prefect_http(prefect_api) as http:
        automations = http.post("automations/filter", json={}).json()
    assert any(quality["id"] in a["actions"][0].get("deployment_id", "") for a in automations if a.get("actions"))
    run_with_worker(prefect_api, quality["id"], "ff-e2e", tmp_path)


@pytest.mark.services
@pytest.mark.slow
def test_pocket_monorepo_deploys_every_flow_spec_deployment_and_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    fixture_repo(tmp_path, "pocket_monorepo")
    report = run_stages(pipeline(tmp_path, prefect_api, pool="ff-e2e", flows='name_pattern = "{name}-{env}"',
                                 project=unique_project()), monkeypatch, "deploy")
    assert sorted((e["flow"], e["name"]) for e in report["deployments"]) == [
        ("marketing.sync", "backfill-dev"), ("marketing.sync", "hourly-dev"), ("sales.sync", "daily-dev")]
    found = deployments_on(prefect_api)
    hourly, daily = found["marketing.sync/hourly-dev"], found["sales.sync/daily-dev"]
    assert hourly["parameters"] == {"batch": 50} and hourly["entrypoint"] == "marketing/src/campaigns/sync_flow.py:sync_campaigns"
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in daily["schedules"]] == [("30 5 * * *", "Europe/Berlin")]
    run_with_worker(prefect_api, daily["id"], "ff-e2e", tmp_path)


@pytest.mark.services
@pytest.mark.slow
def test_prefect2_style_names_deploy_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    fixture_repo(tmp_path, "prefect2_style")
    project = unique_project()
    report = run_stages(pipeline(tmp_path, prefect_api, pool="ff-e2e", path="repo/flows", project=project),
                        monkeypatch, "deploy")
    assert sorted(e["flow"] for e in report["deployments"]) == [
        "Bond Reporting Legacy", "bond-reporting", "bond-reporting-daily", "bond-reporting-weekly", "fx-rates"]
    found = deployments_on(prefect_api)
    rates = found[f"fx-rates/{project}--main--fx-rates--dev"]
    assert rates["parameters"] == {"day": "2026-01-02"} and rates["description"] == "Load FX rates."
    assert f"Bond Reporting Legacy/{project}--main--bond-reporting-legacy--dev" in found
    run_with_worker(prefect_api, rates["id"], "ff-e2e", tmp_path)


@pytest.mark.services
def test_promote_runs_the_deploy_time_steps_for_the_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    from tasks.stages.deploy.promote import promote_action

    repo = fixture_repo(tmp_path, "prefect_project")
    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text.replace("    tags: [reports]\n", '    tags: [reports, "at-{{ get-commit.stdout }}"]\n'))
    commit_all(repo, "tag with the commit")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.strip()
    for key, value in {"FIXTURE_POOL": "ff-e2e", "FIXTURE_TAG": "t", "FIXTURE_DIR": str(repo)}.items():
        monkeypatch.setenv(key, value)
    server_values(prefect_api, table="invoices", token=SECRET)
    suffix = unique_project()
    config = pipeline(tmp_path, prefect_api, pool="ff-e2e", flows=f'name_pattern = "{{name}}--{{env}}--{suffix}"',
                      extra=f"""
[environments.prod]
prefect_api_url = "{prefect_api}"
work_pool = "ff-e2e"
branch = "release"
""")
    run_stages(config, monkeypatch, "deploy")
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings.cache_clear()
    promote_action(source="dev", target="prod", flows="daily-report")
    settings.cache_clear()
    found = deployments_on(prefect_api)
    dev, prod = found[f"daily-report/default--dev--{suffix}"], found[f"daily-report/default--prod--{suffix}"]
    assert f"at-{commit}" in dev["tags"] and f"at-{commit}" in prod["tags"], prod["tags"]
    assert not any("{{" in tag for tag in prod["tags"]), "no step output left unfilled"
    assert prod["version"] == dev["version"] == commit


def test_environments_layer_on_a_prefect_yaml_without_rewriting_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per environment: values for {{ $NAME }}, the work pool when the file gives none, schedules on or off."""
    from tasks.pipeline.settings import settings as current_settings
    from tasks.stages.deploy.desired import flows_listing, load_desired

    repo = fixture_repo(tmp_path, "prefect_project")
    before = (repo / "prefect.yaml").read_bytes()
    monkeypatch.setenv("FIXTURE_DIR", str(repo))
    monkeypatch.setenv("FIXTURE_TAG", "from-the-shell")
    config = pipeline(tmp_path, "http://127.0.0.1:9/api", pool="dev-pool", flows='name_pattern = "{name}--{env}"', extra="""
variables = { FIXTURE_POOL = "dev-from-config" }

[environments.prod]
prefect_api_url = "http://127.0.0.1:9/api"
branch = "main"
schedules = false
variables = { FIXTURE_POOL = "prod-from-config", FIXTURE_TAG = "prod" }
""")
    run_stages(config, monkeypatch)
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    current_settings.cache_clear()
    desired = {(d.environment, d.flow, d.name): d for d in load_desired(current_settings(), flows_listing(current_settings()),
                                                                        ["dev", "prod"])}
    dev, prod = desired[("dev", "extract", "extract-nightly--dev")], desired[("prod", "extract", "extract-nightly--prod")]
    assert dev.spec["work_pool_name"] == "dev-from-config" and prod.spec["work_pool_name"] == "prod-from-config"
    assert dev.spec["tags"] == ["etl", "from-the-shell"] and prod.spec["tags"] == ["etl", "prod"]
    assert [s["active"] for s in dev.spec["schedules"]] == [True, False, True], "the file's own active: false stays"
    assert [s["active"] for s in prod.spec["schedules"]] == [False, False, False]
    assert (repo / "prefect.yaml").read_bytes() == before
    current_settings.cache_clear()


def test_two_deployments_that_would_share_a_name_are_refused_naming_both() -> None:
    from tasks.core.deploydefs import name_collisions
    from tasks.core.deployment import Desired

    first = Desired("orbit--main--hello--dev", "hello", "dev", "http://x/api")
    second = Desired("orbit--main--Hello--dev", "Hello", "dev", "http://x/api")
    other_server = Desired("orbit--main--hello--dev", "hello", "dev", "http://y/api")
    name_collisions([first, other_server])
    with pytest.raises(ConfigError, match=r"hello/orbit--main--hello--dev \(dev\) and Hello/orbit--main--Hello--dev "
                                          r"\(dev\) would be one deployment on http://x/api"):
        name_collisions([first, second])


@pytest.mark.services
def test_values_prefect_would_refuse_are_refused_before_any_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    text = (repo / "prefect.yaml").read_text()
    text = text.replace("      limit: 100\n", "      limit: ten\n").replace("enforce_parameter_schema: false",
                                                                          "enforce_parameter_schema: true")
    token_line = '          WAREHOUSE_TOKEN: "{{ prefect.blocks.secret.fixture-token }}"\n'
    (repo / "prefect.yaml").write_text(text.replace(token_line, token_line + "        stream_output: maybe\n"))
    commit_all(repo, "bad values")
    for key, value in {"FIXTURE_POOL": "ff-e2e", "FIXTURE_TAG": "t", "FIXTURE_DIR": str(repo)}.items():
        monkeypatch.setenv(key, value)
    server_values(prefect_api, table="orders", token=SECRET)
    before = deployments_on(prefect_api)
    config = pipeline(tmp_path, prefect_api, flows='name_pattern = "{name}--refused"')
    with pytest.raises(ConfigError) as caught:
        run_stages(config, monkeypatch, "deploy")
    message = str(caught.value)
    assert "extract-nightly--refused: parameters.limit: 'ten' is not of type 'integer'" in message
    assert "default--refused: job_variables.stream_output: 'maybe' is not of type 'boolean'" in message
    assert deployments_on(prefect_api).keys() == before.keys(), "nothing was written"


@pytest.mark.parametrize("signature", [
    "()", "(x: int = 1, label: str = 'bench')", "(table: str, batch_size: int = 500, dry: bool = False)",
    "(ratio: float = 0.5, name=None)", "(a, b: str = 'x', *, c: int = 3)", "(flag: bool = True, n: int = -1)",
])
def test_plain_signatures_get_exactly_prefects_parameter_schema(tmp_path: Path, signature: str) -> None:
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    from tasks.pipeline.flow_code import plain_schema

    file = tmp_path / "job.py"
    file.write_text(f"from prefect import flow\n\n@flow\ndef job{signature}:\n    \"\"\"Do the job.\"\"\"\n")
    (flow,), _ = discover_source(file.read_text(), "job.py")
    assert plain_schema(flow) == parameter_schema_from_entrypoint(f"{file}:job").model_dump(exclude_unset=True)


@pytest.mark.parametrize(("signature", "doc"), [
    ("(items: list = [])", ""), ("(x: 'Thing' = None)", ""), ("(**kwargs)", ""), ("(when: datetime.date = None)", ""),
    ("(x: int = 1)", "Do it.\n\n    Args:\n        x: how many\n    "), ("(x: int = 1)", ":param x: how many"),
])
def test_other_signatures_are_left_to_prefect(signature: str, doc: str) -> None:
    from tasks.pipeline.flow_code import plain_schema

    source = f'from prefect import flow\n\n@flow\ndef job{signature}:\n    """{doc}"""\n'
    (flow,), _ = discover_source(source, "job.py")
    assert plain_schema(flow) is None


def test_prefect_yaml_keys_forkflow_cannot_apply_are_refused_not_dropped() -> None:
    from tasks.core.prefect_yaml import parse_file, planned_deployments

    flows, _ = discover_source("from prefect import flow\n\n@flow\ndef a():\n    pass\n", "f.py")
    doc = parse_file({"deployments": [{"name": "x", "entrypoint": "f.py:a", "sla": [{"name": "s", "duration": 10}]}]},
                     "prefect.yaml")
    with pytest.raises(ConfigError, match=r"deployments.0\(x\).sla: SLAs are not deployed by forkflow yet"):
        planned_deployments(doc, flows, "prefect.yaml", "")
