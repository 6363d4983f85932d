"""deploy and promote against a real Prefect server (started once per session).

Writes are counted by a proxy in front of the server, not by forkflow's own
counter; the server's `updated` timestamps are checked as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.core.errors import ConfigError, ForkflowError
from tasks.pipeline.settings import settings
from tests.flows_repo import commit_all, flows_repo, unique_project, write_config
from tests.helpers import free_port, kill_after_line, prefect_http, run_doit
from tests.prefect_proxy import PrefectProxy

SPECS = {
    "defaults": {
        "tags": ["orbit"],
        "job_variables": {"env": {"TEAM": "data"}},
        "environments": {"prod": {"work_queue": "critical"}},
    },
    "flows": {
        "hello": {
            "description": "Say hello.",
            "parameters": {"name": "orbit"},
            "environments": {"prod": {"parameters": {"name": "production"}}},
        },
        "extract-orders": {
            "parameters": {"limit": 10},
            "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/Berlin"}],
        },
        "daily-report": {
            "schedules": [{"interval": 86400}, {"rrule": "FREQ=WEEKLY;BYDAY=MO"}],
            "concurrency_limit": 1,
        },
    },
}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def proxy(prefect_api: str) -> Iterator[PrefectProxy]:
    with PrefectProxy(prefect_api) as running:
        yield running


class Workspace:
    """A flows repository, its pipeline.toml, and in-process runs of the flows/deploy/promote actions."""

    def __init__(self, root: Path, api_url: str, monkeypatch: pytest.MonkeyPatch, specs: dict[str, Any] | None = None,
                 files: dict[str, str] | None = None, **config: Any):
        self.root = root
        self.project = unique_project()
        self.flows = flows_repo(root, files)
        self.write_specs(SPECS if specs is None else specs)
        commit_all(self.repo, "specs")
        self.config = write_config(root, api_url, project=self.project, **config)
        monkeypatch.setenv("FORKFLOW_CONFIG", str(self.config))
        monkeypatch.delenv("FORKFLOW_DRY_RUN", raising=False)
        monkeypatch.delenv("FORKFLOW_BRANCH", raising=False)
        settings.cache_clear()

    @property
    def repo(self) -> Path:
        return self.flows.parent

    def write_specs(self, specs: dict[str, Any]) -> None:
        (self.flows / "deployments.yaml").write_text(yaml.safe_dump(specs, sort_keys=False))

    def deploy(self, **options: Any) -> dict[str, Any]:
        from tasks.stages.deploy.stage import deploy_action
        from tasks.stages.flows import flows_action

        flows_action()
        deploy_action(**options)
        return self.report("deploy")

    def promote(self, **options: Any) -> dict[str, Any]:
        from tasks.stages.deploy.promote import promote_action
        from tasks.stages.flows import flows_action

        flows_action()
        promote_action(**options)
        return self.report("promote")

    def report(self, stage: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.root / ".forkflow" / "reports" / f"{stage}.json").read_text())
        return loaded

    def name(self, flow: str, env: str, branch: str = "release") -> str:
        return f"{self.project}--{branch}--{flow}--{env}"


@pytest.fixture
def workspace_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def make(api_url: str, **kwargs: Any) -> Workspace:
        return Workspace(tmp_path, api_url, monkeypatch, **kwargs)

    yield make
    settings.cache_clear()


def server_deployments(api: str, prefix: str) -> dict[str, dict[str, Any]]:
    with prefect_http(api) as http:
        found = http.post("deployments/filter", json={"deployments": {"name": {"like_": prefix}}}).json()
    return {item["name"]: item for item in found}


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["status"] for entry in report["deployments"]}


# ---------------------------------------------------------------- validation (no server)


BAD_SPECS = {
    "defaults": {"tags": ["orbit"], "environments": {"staging": {"paused": True}}},
    "flows": {
        "hello": {"paramters": {"name": "x"}, "parameters": {"colour": "red"}},
        "nope": {"description": "not a flow"},
        "extract-orders": {"schedules": [{"cron": "61 * * * *"}, {"interval": 60, "timezone": "Mars/Olympus"}]},
        "daily-report": {"concurrency_limit": 0, "schedules": [{"cron": "* * * * *", "interval": 5}]},
    },
}


def test_validation_names_every_problem_with_file_and_key_path(tmp_path: Path, workspace_factory: Any) -> None:
    ws = workspace_factory("http://127.0.0.1:9/api", specs=BAD_SPECS)
    with pytest.raises(ConfigError) as caught:
        ws.deploy(validate_only=True)
    message = str(caught.value)
    assert str(ws.flows / "deployments.yaml") in message
    for expected in [
        "flows.hello.paramters: unknown key; allowed: entrypoint, description, parameters",
        "flows.extract-orders.schedules.0.cron: bad cron '61 * * * *': minute: '61' is not in 0-59",
        "flows.extract-orders.schedules.1.timezone: unknown timezone 'Mars/Olympus'",
        "flows.daily-report.concurrency_limit",
        "flows.daily-report.schedules.0: a schedule needs exactly one of cron, interval, rrule; got ['cron', 'interval']",
    ]:
        assert expected in message, expected
    ws.write_specs({"defaults": BAD_SPECS["defaults"], "flows": {"hello": {"parameters": {"colour": "red"}},
                                                                 "nope": {}}})
    with pytest.raises(ConfigError) as caught:
        ws.deploy(validate_only=True)
    message = str(caught.value)
    assert "flows.nope: no flow named 'nope' was found; flows: daily-report, extract-orders, hello" in message
    assert "defaults.environments.staging: no such environment; configured in pipeline.toml: dev, prod" in message
    assert ("flows.hello.parameters.colour: flow 'hello' (orbit_flows/hello.py:hello) does not take this parameter; "
            "it takes: name") in message


def test_bad_config_fails_cleanly_before_contacting_the_server(tmp_path: Path, workspace_factory: Any) -> None:
    ws = workspace_factory("http://127.0.0.1:9/api", specs={"flows": {"hello": {"schedules": [{"cron": "0 0 * *"}]}}})
    result = run_doit(ws.config, "deploy")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "flows.hello.schedules.0.cron: bad cron '0 0 * *': expected 5 fields" in output
    assert "Traceback" not in output and "could not" not in output


def test_a_broken_flow_file_stops_deploy_with_its_line(tmp_path: Path, workspace_factory: Any) -> None:
    ws = workspace_factory("http://127.0.0.1:9/api", files={"orbit_flows/broken.py": "def x(:\n"})
    with pytest.raises(ForkflowError, match=r"orbit_flows/broken.py:1: syntax error"):
        ws.deploy()


# ---------------------------------------------------------------- against the server


@pytest.mark.services
def test_first_deploy_creates_second_writes_nothing_then_one_change_one_write(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url, prod_branch="rel*")
    flows = ("hello", "extract-orders", "daily-report")
    with prefect_http(prefect_api) as http:  # the session's server: another test may have made a flow of these names
        there = {flow["name"] for flow in http.post("flows/filter", json={"flows": {"name": {"any_": list(flows)}}}).json()}
    first = ws.deploy()
    expected = {ws.name(flow, env): "created" for flow in flows for env in ("dev", "prod")}
    assert statuses(first) == expected
    # each new flow written once, by the first of its deployments; the branch's deployments not read, since the
    # server counted none under its names; the automations read twice: beside the pools and counts (one round trip),
    # and after the writes for the up-to-date check; a create leaves out the null concurrency limit a new deployment has
    assert sorted(path for _, path in proxy.writes if path == "/flows/") == ["/flows/"] * len(set(flows) - there)
    assert ("POST", "/deployments/paginate") in proxy.reads and ("POST", "/deployments/filter") not in proxy.reads
    assert proxy.reads.count(("POST", "/automations/filter")) == 2, proxy.reads
    created = {body["name"]: body for body in (json.loads(raw) for _, path, raw in proxy.bodies if path == "/deployments/")}
    assert set(created) == set(expected)
    assert "concurrency_limit" not in created[ws.name("hello", "prod")]
    assert created[ws.name("daily-report", "dev")]["concurrency_limit"] == 1
    assert all(entry["id"] for entry in first["deployments"])
    on_server = server_deployments(prefect_api, ws.project)
    assert set(on_server) == set(expected)
    hello = on_server[ws.name("hello", "prod")]
    assert hello["job_variables"]["env"]["DEPLOYMENT_NAME"] == ws.name("hello", "prod")
    assert hello["version"] == "0.1.0" and "PACKAGE_VERSION=0.1.0" in hello["tags"]
    assert any(tag.startswith("COMMIT_HASH=") and len(tag) == len("COMMIT_HASH=") + 40 for tag in hello["tags"])
    assert hello["parameters"] == {"name": "production"} and hello["work_queue_name"] == "critical"
    extract = on_server[ws.name("extract-orders", "prod")]
    assert extract["schedules"][0]["schedule"]["timezone"] == "Europe/Berlin" and extract["schedules"][0]["active"]
    assert not on_server[ws.name("extract-orders", "dev")]["schedules"][0]["active"]
    assert on_server[ws.name("daily-report", "dev")]["global_concurrency_limit"]["limit"] == 1

    proxy.reset()
    second = ws.deploy()
    assert proxy.write_count() == 0, proxy.writes
    assert set(statuses(second).values()) == {"unchanged"} and second["writes"] == 0
    again = server_deployments(prefect_api, ws.project)
    assert {n: d["updated"] for n, d in again.items()} == {n: d["updated"] for n, d in on_server.items()}

    specs = json.loads(json.dumps(SPECS))
    specs["flows"]["hello"]["environments"]["prod"]["parameters"]["name"] = "everyone"
    ws.write_specs(specs)
    proxy.reset()
    third = ws.deploy()
    changed = {name: status for name, status in statuses(third).items() if status != "unchanged"}
    assert changed == {ws.name("hello", "prod"): "updated"}
    assert proxy.writes == [("PATCH", f"/deployments/{hello['id']}")]
    entry = next(e for e in third["deployments"] if e["name"] == ws.name("hello", "prod"))
    assert entry["diff"] == ["parameters"]
    assert server_deployments(prefect_api, ws.name("hello", "prod"))[ws.name("hello", "prod")]["parameters"] == {"name": "everyone"}


@pytest.mark.services
def test_a_container_pool_without_a_built_image_is_refused_before_any_write(
        prefect_api: str, workspace_factory: Any) -> None:
    """forkflow's own deployments run the image stage's image on a container pool: without image.json, none is known."""
    ws = workspace_factory(prefect_api, pools=("ff-docker-dev", "ff-docker-prod"))
    with pytest.raises(ForkflowError, match=r"work pool 'ff-docker-dev' \(docker\) runs containers but no image is known"):
        ws.deploy()
    assert server_deployments(prefect_api, f"{ws.project}--%") == {}


@pytest.mark.services
def test_deleted_or_edited_on_server_is_restored(proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url)
    ws.deploy()
    before = server_deployments(prefect_api, ws.project)
    gone, edited = before[ws.name("hello", "dev")], before[ws.name("extract-orders", "dev")]
    with prefect_http(prefect_api) as http:
        http.delete(f"deployments/{gone['id']}").raise_for_status()
        http.patch(f"deployments/{edited['id']}", json={"description": "edited by hand", "parameters": {"limit": 99},
                                                        "tags": ["hand"]}).raise_for_status()
    report = ws.deploy()
    assert statuses(report)[ws.name("hello", "dev")] == "created"
    entry = next(e for e in report["deployments"] if e["name"] == ws.name("extract-orders", "dev"))
    assert entry["status"] == "updated" and entry["diff"] == ["description", "parameters", "tags"]
    after = server_deployments(prefect_api, ws.project)
    assert after[ws.name("extract-orders", "dev")]["parameters"] == {"limit": 10}
    assert after[ws.name("extract-orders", "dev")]["description"] == "Pull the day's orders from the shop API."
    proxy.reset()
    ws.deploy()
    assert proxy.write_count() == 0


@pytest.mark.services
def test_a_deployment_edited_on_the_server_is_read_alone_and_put_back(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    """Someone edits one deployment (the UI, the API): the next deploy reads the deployments edited since its record,
    newest first, reads and puts back that one, and takes the rest as recorded; one made by someone else under the
    branch's names means a full read (a deletion may hide behind the same count)."""
    ws = workspace_factory(proxy.url)
    ws.deploy()
    name = ws.name("extract-orders", "dev")
    edited = server_deployments(prefect_api, ws.project)[name]
    with prefect_http(prefect_api) as http:
        http.patch(f"deployments/{edited['id']}", json={"description": "edited by hand", "tags": ["hand"]}).raise_for_status()
    proxy.reset()
    report = ws.deploy()
    entry = next(e for e in report["deployments"] if e["name"] == name)
    assert entry["status"] == "updated" and entry["diff"] == ["description", "tags"]
    assert {e["status"] for e in report["deployments"] if e["name"] != name} == {"unchanged"}
    reads = [json.loads(body) for _, path, body in proxy.read_bodies if path == "/deployments/filter"]
    assert reads and all(set(r["deployments"]["name"]) == {"any_"} for r in reads), "no full read by the names' prefix"
    assert {n for r in reads for n in r["deployments"]["name"]["any_"]} == {name}, "only the edited one is read"
    assert server_deployments(prefect_api, name)[name]["description"] == "Pull the day's orders from the shop API."
    gone = server_deployments(prefect_api, ws.project)[ws.name("hello", "dev")]
    with prefect_http(prefect_api) as http:  # one of ours deleted, someone else's made: the same count
        http.delete(f"deployments/{gone['id']}").raise_for_status()
        http.post("deployments/", json={"name": f"{name}-copy", "flow_id": edited["flow_id"]}).raise_for_status()
    proxy.reset()
    assert statuses(ws.deploy())[ws.name("hello", "dev")] == "created", "the deletion behind the same count is seen"
    reads = [json.loads(body) for _, path, body in proxy.read_bodies if path == "/deployments/filter"]
    assert any("like_" in r["deployments"]["name"] for r in reads), "a deployment made since: a full read"
    proxy.reset()
    ws.deploy()
    assert proxy.write_count() == 0


@pytest.mark.services
def test_paused_by_a_person_stays_paused_unless_the_config_says(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url, prod_branch="release")
    ws.deploy()
    name = ws.name("extract-orders", "prod")
    item = server_deployments(prefect_api, name)[name]
    assert item["schedules"][0]["active"] and not item["paused"]
    with prefect_http(prefect_api) as http:
        http.post(f"deployments/{item['id']}/pause_deployment").raise_for_status()
        http.patch(f"deployments/{item['id']}/schedules/{item['schedules'][0]['id']}", json={"active": False}).raise_for_status()
    proxy.reset()
    report = ws.deploy()
    assert proxy.write_count() == 0 and statuses(report)[name] == "unchanged"
    item = server_deployments(prefect_api, name)[name]
    assert item["paused"] and not item["schedules"][0]["active"]

    specs = json.loads(json.dumps(SPECS))
    specs["flows"]["extract-orders"]["paused"] = False
    ws.write_specs(specs)
    report = ws.deploy()
    assert statuses(report)[name] == "updated"
    item = server_deployments(prefect_api, name)[name]
    assert not item["paused"] and item["schedules"][0]["active"]

    specs["flows"]["extract-orders"]["paused"] = True
    ws.write_specs(specs)
    ws.deploy()
    item = server_deployments(prefect_api, name)[name]
    assert item["paused"] and not item["schedules"][0]["active"]


@pytest.mark.services
def test_prune_lists_on_dry_run_and_deletes_only_this_branch_orphans(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace_factory(proxy.url, specs={**SPECS, "every_flow": True},
                           files={"orbit_flows/old.py": "from prefect import flow\n\n@flow\ndef old_job():\n    pass\n"})
    monkeypatch.setenv("FORKFLOW_BRANCH", "feature/x")
    ws.deploy()
    monkeypatch.delenv("FORKFLOW_BRANCH")
    ws.deploy()
    orphan, other_branch = ws.name("old-job", "dev"), ws.name("old-job", "dev", branch="feature-x")
    assert {orphan, other_branch} <= set(server_deployments(prefect_api, ws.project))

    (ws.flows / "orbit_flows" / "old.py").unlink()
    commit_all(ws.repo, "drop old job")
    kept = ws.deploy()
    assert orphan not in statuses(kept), "without --prune nothing is deleted or reported as pruned"
    assert orphan in server_deployments(prefect_api, ws.project)

    proxy.reset()
    dry = ws.deploy(prune=True, dry_run=True)
    entry = next(e for e in dry["deployments"] if e["name"] == orphan)
    assert entry["status"] == "skipped" and entry["would"] == "prune"
    assert proxy.write_count() == 0 and orphan in server_deployments(prefect_api, ws.project)

    pruned = ws.deploy(prune=True)
    assert {n: s for n, s in statuses(pruned).items() if s != "unchanged"} == {orphan: "pruned"}
    remaining = server_deployments(prefect_api, ws.project)
    assert orphan not in remaining and other_branch in remaining


@pytest.mark.services
def test_rate_limited_writes_wait_for_retry_after(prefect_api: str, workspace_factory: Any) -> None:
    with PrefectProxy(prefect_api, throttle_writes=3, retry_after="1") as throttling:
        ws = workspace_factory(throttling.url)
        report = ws.deploy()
    assert len(throttling.throttled) == 3
    assert report["retries"] >= 3, "each 429 was waited out and retried"
    assert set(statuses(report).values()) == {"created"}
    assert len(server_deployments(prefect_api, ws.project)) == 3


@pytest.mark.services
def test_triggers_become_automations_and_are_replaced_only_when_changed(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    specs = json.loads(json.dumps(SPECS))
    trigger = {"type": "event", "expect": ["orbit.data.arrived"], "match": {"prefect.resource.id": "orbit.*"}}
    specs["flows"]["hello"]["triggers"] = [trigger]
    ws = workspace_factory(proxy.url, specs=specs)
    ws.deploy()
    deployment = server_deployments(prefect_api, ws.name("hello", "dev"))[ws.name("hello", "dev")]

    def owned() -> list[dict[str, Any]]:
        with prefect_http(prefect_api) as http:
            found = http.post("automations/filter", json={}).json()
        return [a for a in found if any(action.get("deployment_id") == deployment["id"] for action in a["actions"])]

    first = owned()
    assert len(first) == 1 and first[0]["trigger"]["expect"] == ["orbit.data.arrived"]
    assert first[0]["actions"][0]["deployment_id"] == deployment["id"]
    proxy.reset()
    ws.deploy()
    assert proxy.write_count() == 0
    specs["flows"]["hello"]["triggers"][0]["expect"] = ["orbit.data.late"]
    ws.write_specs(specs)
    ws.deploy()
    second = owned()
    assert [a["trigger"]["expect"] for a in second] == [["orbit.data.late"]]


@pytest.mark.services
def test_promote_carries_image_and_code_version(proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url, pools=("ff-docker-dev", "ff-docker-prod"))
    reports = ws.root / ".forkflow" / "reports"
    write_image_report(reports, "sha256:" + "a" * 64)
    dev = ws.deploy()
    assert set(statuses(dev).values()) == {"created"}
    hello_dev = server_deployments(prefect_api, ws.name("hello", "dev"))[ws.name("hello", "dev")]
    assert hello_dev["job_variables"]["image"] == "127.0.0.1:5001/orbit-flows@sha256:" + "a" * 64
    dev_commit = next(t for t in hello_dev["tags"] if t.startswith("COMMIT_HASH="))

    pyproject = ws.flows / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    commit_all(ws.repo, "bump flows to 0.2.0")
    write_image_report(reports, "sha256:" + "b" * 64)

    report = ws.promote(source="dev", target="prod", flows="hello,extract-orders")
    assert report["version"] == "0.1.0"
    assert statuses(report) == {ws.name("hello", "prod"): "created", ws.name("extract-orders", "prod"): "created"}
    prod = server_deployments(prefect_api, ws.name("hello", "prod"))[ws.name("hello", "prod")]
    assert prod["job_variables"]["image"] == hello_dev["job_variables"]["image"], "the tested image, not the newest build"
    assert prod["version"] == "0.1.0" and "PACKAGE_VERSION=0.1.0" in prod["tags"] and dev_commit in prod["tags"]
    assert prod["work_pool_name"] == "ff-docker-prod" and prod["parameters"] == {"name": "production"}
    assert prod["job_variables"]["env"]["DEPLOYMENT_NAME"] == ws.name("hello", "prod")
    extract = server_deployments(prefect_api, ws.name("extract-orders", "prod"))[ws.name("extract-orders", "prod")]
    assert extract["schedules"][0]["active"], "the target environment's schedules"
    proxy.reset()
    again = ws.promote(source="dev", target="prod", flows="hello,extract-orders")
    assert proxy.write_count() == 0 and set(statuses(again).values()) == {"unchanged"}


def write_image_report(reports: Path, digest: str) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "image.json").write_text(json.dumps({"images": [
        {"python": "3.12", "flavor": "base", "tags": ["0.1.0-python3.12"], "repository": "127.0.0.1:5001/orbit-flows",
         "references": ["127.0.0.1:5001/orbit-flows:0.1.0-python3.12"], "status": "built", "digest": digest}]}))


@pytest.mark.services
def test_promote_refuses_missing_source_and_mixed_versions(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    from tasks.stages.deploy.stage import deploy_action
    from tasks.stages.flows import flows_action

    ws = workspace_factory(proxy.url)
    with pytest.raises(ForkflowError, match=r"source deployments missing in dev: hello \(" + ws.name("hello", "dev")):
        ws.promote(source="dev", target="prod", flows="hello")
    ws.deploy()
    pyproject = ws.flows / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.3.0"'))
    commit_all(ws.repo, "bump")
    flows_action()
    deploy_action(only=("extract-orders", "dev"))
    proxy.reset()
    with pytest.raises(ForkflowError, match=r"do not share one code version \(extract-orders=0.3.0, hello=0.1.0\)"):
        ws.promote(source="dev", target="prod", flows="hello,extract-orders")
    assert proxy.write_count() == 0
    with pytest.raises(ConfigError, match="--to 'qa' is not a configured environment"):
        ws.promote(source="dev", target="qa")
    assert ws.promote(source="dev", target="prod", flows="hello")["version"] == "0.1.0"


@pytest.mark.services
@pytest.mark.slow
def test_process_worker_runs_the_deployed_flow_with_its_deployment_name(prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(prefect_api, pools=("ff-e2e", "ff-prod"))
    ws.deploy()
    name = ws.name("hello", "dev")
    deployment = server_deployments(prefect_api, name)[name]
    with prefect_http(prefect_api) as http:
        run = http.post(f"deployments/{deployment['id']}/create_flow_run", json={}).json()
    worker = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", "ff-e2e", "--run-once"], check=False,
        env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True, text=True, timeout=300, cwd=ws.root)
    output = worker.stdout + worker.stderr
    with prefect_http(prefect_api) as http:
        state = http.get(f"flow_runs/{run['id']}").json()["state"]
    assert state["type"] == "COMPLETED", output
    assert f"Hello, orbit from {name}" in output


# ---------------------------------------------------------------- through doit


@pytest.mark.services
def test_doit_deploy_subtask_and_dry_run(proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url)
    dry = run_doit(ws.config, "deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would create deployment {ws.name('hello', 'dev')!r}" in dry.stdout
    assert proxy.write_count() == 0 and not server_deployments(prefect_api, ws.project)

    listed = run_doit(ws.config, "list", "--all")
    assert "deploy:hello--dev" in listed.stdout and "deploy:daily-report--dev" in listed.stdout
    one = run_doit(ws.config, "deploy:hello--dev")
    assert one.returncode == 0, one.stdout + one.stderr
    assert set(server_deployments(prefect_api, ws.project)) == {ws.name("hello", "dev")}

    full = run_doit(ws.config, "deploy")
    assert full.returncode == 0, full.stdout + full.stderr
    report = ws.report("deploy")
    assert statuses(report) == {ws.name("hello", "dev"): "unchanged", ws.name("extract-orders", "dev"): "created",
                                ws.name("daily-report", "dev"): "created"}
    assert "deploy: 2 created, 1 unchanged" in full.stdout


@pytest.mark.services
def test_a_deploy_with_nothing_to_do_is_up_to_date_until_the_server_or_the_config_changes(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url)
    first = run_doit(ws.config, "deploy")
    assert first.returncode == 0 and "deploy: 3 created" in first.stdout, first.stdout + first.stderr
    proxy.reset()
    again = run_doit(ws.config, "deploy")
    assert again.returncode == 0 and "-- deploy" in again.stdout, again.stdout + again.stderr
    assert proxy.write_count() == 0
    hello = server_deployments(prefect_api, ws.project)[ws.name("hello", "dev")]
    with prefect_http(prefect_api) as http:
        http.patch(f"deployments/{hello['id']}", json={"description": "edited by hand"}).raise_for_status()
    restored = run_doit(ws.config, "deploy")
    assert "deploy: 2 unchanged, 1 updated" in restored.stdout, restored.stdout + restored.stderr
    assert f"(server drift at {proxy.url}: a deployment named {ws.project}--release--" in restored.stdout
    specs = json.loads(json.dumps(SPECS))
    specs["flows"]["hello"]["parameters"] = {"name": "changed"}
    ws.write_specs(specs)
    commit_all(ws.repo, "change hello")
    changed = run_doit(ws.config, "deploy")
    assert f"updated   {ws.name('hello', 'dev')} (parameters, tags)" in changed.stdout, changed.stdout + changed.stderr
    lines = changed.stdout.split("\nsummary:\n")[-1].splitlines()
    assert any(line.startswith("deploy ") and "(changed: reports/flows.json, flows/deployments.yaml)" in line
               for line in lines), "the summary names the files that changed"
    assert any(line.startswith("flows ") and "(changed: flows/deployments.yaml)" in line for line in lines), lines
    dry = run_doit(ws.config, "deploy", "--dry-run")
    assert "-- deploy" not in dry.stdout and "deploy: 3 unchanged" in dry.stdout, dry.stdout


@pytest.mark.services
def test_full_read_catches_schedule_edits_the_record_cannot_see(
        proxy: PrefectProxy, prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(proxy.url, extra="verify_after = 0\n")
    ws.deploy()
    name = ws.name("extract-orders", "dev")
    item = server_deployments(prefect_api, name)[name]
    with prefect_http(prefect_api) as http:
        http.patch(f"deployments/{item['id']}/schedules/{item['schedules'][0]['id']}",
                   json={"schedule": {"cron": "30 7 * * *", "timezone": "UTC"}}).raise_for_status()
    assert server_deployments(prefect_api, name)[name]["updated"] == item["updated"], "schedule edits leave `updated` alone"
    report = ws.deploy()
    entry = next(e for e in report["deployments"] if e["name"] == name)
    assert entry["status"] == "updated" and entry["diff"] == ["schedules"]
    assert server_deployments(prefect_api, name)[name]["schedules"][0]["schedule"]["cron"] == "0 6 * * *"
    (ws.root / ".forkflow" / "deploy-record.json").unlink()
    proxy.reset()
    ws.deploy()
    assert proxy.write_count() == 0, "without a record every deployment is read and compared, and still nothing is written"


GENERATED_FLOW = '''from prefect import flow


@flow(name="many-{index}")
def many_{index}(x: int = 1) -> int:
    return x
'''


def test_deploy_killed_midway_finishes_on_the_next_run(prefect_api: str, workspace_factory: Any) -> None:
    count = 40
    files = {f"many/flow_{i}.py": GENERATED_FLOW.format(index=i) for i in range(count)}
    specs = {"defaults": {"tags": ["many"]}, "flows": {f"many-{i}": {"parameters": {"x": i}} for i in range(count)}}
    ws = workspace_factory(prefect_api, specs=specs, files=files)
    kill_after_line(ws.config, f"created   {ws.project}--", "deploy")
    before = settled_deployments(prefect_api, ws.project)
    assert before, "the run was killed after its first deployment"

    rerun = run_doit(ws.config, "deploy")
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, rerun.stdout + rerun.stderr
    after = server_deployments(prefect_api, ws.project)
    expected = set(statuses(ws.report("deploy")))
    assert set(after) == expected and len(expected) >= count
    created = {name for name, status in statuses(ws.report("deploy")).items() if status == "created"}
    assert created == expected - set(before), "what the killed run made is kept, the rest is created once"
    for name in before:
        assert after[name]["id"] == before[name]["id"]


@pytest.mark.services
def test_promote_killed_midway_finishes_on_the_next_run(prefect_api: str, workspace_factory: Any) -> None:
    count = 30
    files = {f"many/flow_{i}.py": GENERATED_FLOW.format(index=i) for i in range(count)}
    specs = {"defaults": {"tags": ["many"]}, "flows": {f"many-{i}": {"parameters": {"x": i}} for i in range(count)}}
    ws = workspace_factory(prefect_api, specs=specs, files=files)
    assert set(statuses(ws.deploy()).values()) == {"created"}
    promote = ("promote", "--from", "dev", "--to", "prod")
    kill_after_line(ws.config, f"created   {ws.project}--", *promote)  # fails while anything it started still runs
    prod = f"{ws.project}--release--many-%--prod"
    before = settled_deployments(prefect_api, prod)
    assert before, "the run was killed after its first promoted deployment"

    rerun = run_doit(ws.config, *promote)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, rerun.stdout + rerun.stderr
    after = server_deployments(prefect_api, prod)
    assert len(after) == count, "every flow reached prod once"
    for name in before:
        assert after[name]["id"] == before[name]["id"], "what the killed run promoted is kept"


def settled_deployments(api: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The server's deployments once requests still in flight from a killed run have landed."""
    import time

    found = server_deployments(api, prefix)
    for _ in range(20):
        time.sleep(0.5)
        again = server_deployments(api, prefix)
        if set(again) == set(found):
            return again
        found = again
    return found


@pytest.mark.services
def test_a_failed_deploy_replaces_the_last_green_report(prefect_api: str, workspace_factory: Any) -> None:
    ws = workspace_factory(prefect_api)
    assert set(statuses(ws.deploy()).values()) == {"created"}
    dead = f"http://127.0.0.1:{free_port()}/api"
    write_config(ws.root, dead, project=ws.project)
    failed = run_doit(ws.config, "deploy")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    report = ws.report("deploy")
    assert report["status"] == "failed" and report["deployments"] == [], "nothing of the last run is kept as this one's"
    assert "127.0.0.1" in report["error"] and report["commit"]
    summary = (ws.root / ".forkflow" / "reports" / "summary.md").read_text()
    assert "`deploy.json`: **FAILED**" in summary

    write_config(ws.root, prefect_api, project=ws.project)
    again = run_doit(ws.config, "deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert ws.report("deploy")["status"] == "ok" and set(statuses(ws.report("deploy")).values()) == {"unchanged"}


CHANGED_DEPLOY = """
import json, sys
from tasks.stages.deploy.stage import deploy_action
from tasks.stages.flows import flows_action
flows_action()
deploy_action()
print(json.dumps(sorted(name for name in sys.modules if name == "prefect" or name.startswith("prefect."))))
"""


@pytest.mark.services
def test_a_changed_deployment_is_checked_without_importing_prefect_and_bad_values_are_refused(
        proxy: PrefectProxy, workspace_factory: Any) -> None:
    """Prefect's validator prepares each pool template and flow schema once (remembered in the state folder); a
    later deploy that changes values checks them without importing Prefect, and still refuses what Prefect would."""
    ws = workspace_factory(proxy.url)
    ws.deploy()
    specs = json.loads(json.dumps(SPECS))
    specs["flows"]["hello"]["parameters"]["name"] = "everyone"
    ws.write_specs(specs)
    done = subprocess.run([sys.executable, "-c", CHANGED_DEPLOY], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert statuses(ws.report("deploy"))[ws.name("hello", "dev")] == "updated"
    specs["flows"]["hello"].update(enforce_parameter_schema=True, parameters={"name": 3})
    ws.write_specs(specs)
    proxy.reset()
    with pytest.raises(ConfigError, match=r"Prefect would refuse 1 value\(s\) on .*\n"
                                          rf"  - {ws.name('hello', 'dev')}: parameters.name: 3 is not "):
        ws.deploy()
    assert proxy.write_count() == 0, proxy.writes
