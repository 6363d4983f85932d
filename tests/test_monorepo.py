"""A monorepo with a prefect.yaml per sub-project, deployed in one run: `[flows] config` as a list or a glob, each
file as `prefect deploy --all` deploys it from its own folder, names and duplicates checked across every file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tasks.core.errors import ConfigError
from tests.flows_repo import commit_all, unique_project
from tests.helpers import prefect_http, run_doit
from tests.test_flow_formats import FIELDS, PREFECT, deployments_on, fixture_repo, pipeline, run_stages, run_with_worker

GLOB = 'config = "repo/**/prefect.yaml"\n'
NAMES = ["monthly-report/monthly-report", "sync/billing-sync", "sync/shipping-sync"]


def test_a_glob_reads_every_prefect_yaml_each_from_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_monorepo")
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=GLOB), monkeypatch)
    assert report["errors"] == [] and report["format"] == "prefect"
    assert report["configs"] == [str(repo / folder / "prefect.yaml") for folder in ("billing", "reports", "shipping")]
    assert sorted(f"{d['flow']}/{d['name']}" for d in report["deployments"]) == NAMES
    assert sorted(d["entrypoint"] for d in report["deployments"]) == [
        "billing/flows.py:sync", "reports/flows/monthly.py:monthly_report", "shipping/flows.py:sync"]


def test_a_list_of_files_deploys_those_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture_repo(tmp_path, "prefect_monorepo")
    listed = 'config = ["repo/billing/prefect.yaml", "repo/ship*/prefect.yaml"]\n'
    report = run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=listed), monkeypatch)
    assert sorted(f"{d['flow']}/{d['name']}" for d in report["deployments"]) == ["sync/billing-sync", "sync/shipping-sync"]


def test_each_project_gets_its_own_tasks_module_in_its_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_flow_code import desired_schemas

    fixture_repo(tmp_path, "prefect_monorepo")
    schemas = desired_schemas(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=GLOB), monkeypatch)
    assert schemas["billing-sync"]["properties"]["invoice"]["$ref"] == "#/definitions/Invoice"  # type: ignore[index]
    assert schemas["shipping-sync"]["properties"]["parcel"]["$ref"] == "#/definitions/Parcel"  # type: ignore[index]
    assert "Invoice" not in schemas["shipping-sync"]["definitions"]  # type: ignore[index]


def test_one_deployment_in_two_files_is_refused_naming_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_monorepo")
    shipping = repo / "shipping" / "prefect.yaml"
    shipping.write_text(shipping.read_text().replace("name: shipping-sync", "name: Billing_Sync"))
    commit_all(repo, "a second billing-sync")
    with pytest.raises(ConfigError) as caught:
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=GLOB), monkeypatch)
    assert "deployments of several prefect.yaml files would be one deployment on the server" in str(caught.value)
    assert f"sync/billing-sync: {repo}/billing/prefect.yaml: deployments.0(billing-sync) and " \
           f"{repo}/shipping/prefect.yaml: deployments.0(Billing_Sync)" in str(caught.value)


def test_problems_in_several_files_are_listed_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_monorepo")
    for folder in ("billing", "reports"):
        file = repo / folder / "prefect.yaml"
        file.write_text(file.read_text().replace("    entrypoint: flows", "    entrypoint: missing"))
    with pytest.raises(ConfigError) as caught:
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=GLOB), monkeypatch)
    text = str(caught.value)
    assert "2 of 3 prefect.yaml files cannot be deployed" in text
    assert "no flow at 'missing.py:sync' (relative to billing)" in text
    assert "no flow at 'missing/monthly.py:monthly_report' (relative to reports)" in text


@pytest.mark.parametrize(("flows", "message"), [
    ('config = "repo/**/deploy.yaml"\n', r"no file under the flows folder .* matches 'repo/\*\*/deploy.yaml'"),
    ('config = ["repo/billing/prefect.yaml", "repo/nowhere.yaml"]\n', r"flows.config\[1\] = 'repo/nowhere.yaml': no such file"),
    ('config = []\n', r"an empty list names no config"),
])
def test_bad_config_lists_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flows: str, message: str) -> None:
    from tasks.core.errors import ForkflowError

    fixture_repo(tmp_path, "prefect_monorepo")
    with pytest.raises(ForkflowError, match=message):
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=flows), monkeypatch)


def test_several_configs_must_all_be_prefect_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_monorepo")
    (repo / "deployments.yaml").write_text("flows: {}\n")
    flows = 'config = ["repo/billing/prefect.yaml", "repo/deployments.yaml"]\n'
    with pytest.raises(ConfigError, match=r"these are no prefect.yaml: .*deployments.yaml"):
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", flows=flows), monkeypatch)


@contextmanager
def removed_afterwards(api: str, keys: list[str]) -> Iterator[None]:
    """The oracle server is the session's: other tests count what is on it, so what this test made there goes."""
    try:
        yield
    finally:
        for key, item in deployments_on(api).items():
            if key in keys:
                with prefect_http(api) as http:
                    http.delete(f"deployments/{item['id']}")


@pytest.mark.services
@pytest.mark.slow
def test_a_monorepo_deploys_in_one_doit_deploy_as_prefect_deploy_does_per_file(
        tmp_path: Path, prefect_api: str, oracle_api: str) -> None:
    with removed_afterwards(oracle_api, NAMES):
        monorepo_as_prefect_deploy_does(tmp_path, prefect_api, oracle_api)


def monorepo_as_prefect_deploy_does(tmp_path: Path, prefect_api: str, oracle_api: str) -> None:
    repo = fixture_repo(tmp_path, "prefect_monorepo")
    for folder in ("billing", "shipping", "reports"):
        done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo / folder, capture_output=True,
                              text=True, env={**os.environ, "PREFECT_API_URL": oracle_api}, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    config = pipeline(tmp_path, prefect_api, pool="ff-e2e", flows=GLOB, project=unique_project())
    first = run_doit(config, "deploy")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "deployments from 3 prefect files" in first.stdout
    theirs = {key: item for key, item in deployments_on(oracle_api).items() if key in NAMES}
    ours = {key: item for key, item in deployments_on(prefect_api).items() if key in NAMES}
    assert sorted(ours) == sorted(theirs) == NAMES
    for key in NAMES:
        for name in FIELDS:
            assert ours[key][name] == theirs[key][name], f"{key}.{name}"
    assert ours["monthly-report/monthly-report"]["version"] == str(repo / "reports"), "the step ran in the file's folder"
    second = run_doit(config, "deploy")
    assert second.returncode == 0 and "-- deploy" in second.stdout, second.stdout[-3000:]
    state = run_with_worker(prefect_api, ours["sync/billing-sync"]["id"], "ff-e2e", tmp_path)
    assert state == "COMPLETED"

    (repo / "shipping" / "prefect.yaml").unlink()
    commit_all(repo, "shipping is deployed elsewhere now")
    pruned = run_doit(config, "deploy", "--prune")
    assert pruned.returncode == 0, pruned.stdout[-3000:] + pruned.stderr[-3000:]
    left = deployments_on(prefect_api)
    assert "sync/shipping-sync" not in left, "pruned: no file defines it any more"
    assert {"sync/billing-sync", "monthly-report/monthly-report"} <= set(left), "the other files' deployments stay"
