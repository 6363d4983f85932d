"""What `prefect deploy` accepts in a prefect.yaml, as Prefect's own models say: keys it ignores warn (or, strict,
refuse), files it rejects are refused with its words, and names it refuses are refused before any write.
Each case is what public flow repositories write (the comparison with Prefect's CLI is in test_flow_formats.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tasks.core.deployment import Desired
from tasks.core.discovery import discover_source
from tasks.core.errors import ConfigError
from tasks.core.prefect_yaml import parse_file, planned_deployments
from tasks.pipeline.prefect_rules import prefect_verdict, refuse_names_prefect_refuses
from tests.flows_repo import commit_all, unique_project

FLOW = "from prefect import flow\n\n@flow\ndef job():\n    pass\n"


def deployment(**keys: Any) -> dict[str, Any]:
    return {"name": "nightly", "entrypoint": "job.py:job", "work_pool": {"name": "dev-pool"}, **keys}


IGNORED = [  # (the file, the key path warned about, words of the hint)
    ({"version": 2, "deployments": [deployment()]}, "version", "`version:` on the deployment"),
    ({"deployments": [deployment(work_pool={"name": "dev-pool", "type": "kubernetes"})]},
     "deployments.0(nightly).work_pool.type", "the pool's type is the server's"),
    ({"deployments": [deployment(work_pool={"name": "dev-pool", "flow_variables": {"a": 1}})]},
     "deployments.0(nightly).work_pool.flow_variables", "work_pool: job_variables:"),
    ({"deployments": [deployment(is_schedule_active=False, schedules=[{"cron": "0 6 * * *"}])]},
     "deployments.0(nightly).is_schedule_active", "Prefect 2's key"),
    ({"deployments": [deployment(job_variables={"env": {"A": "b"}})]},
     "deployments.0(nightly).job_variables", "move them under work_pool: job_variables:"),
    ({"deployments": [deployment(work_queue_name="fast")]},
     "deployments.0(nightly).work_queue_name", "move it under work_pool:"),
]


@pytest.mark.parametrize(("data", "key", "hint"), IGNORED, ids=[case[1].rsplit(".", 1)[-1] for case in IGNORED])
def test_each_key_prefect_ignores_warns_by_name_and_is_not_deployed(data: dict[str, Any], key: str, hint: str) -> None:
    cleaned, warnings = prefect_verdict(data, "prefect.yaml")
    assert warnings == [f"prefect.yaml: {key}: prefect deploy ignores this key, so forkflow ignores it too; "
                        f"{warnings[0].split('too; ', 1)[1]}"]
    assert hint in warnings[0]
    flows, _ = discover_source(FLOW, "job.py")
    (planned,) = planned_deployments(parse_file(cleaned, "prefect.yaml"), flows, "prefect.yaml", "")[0]
    layer = planned.layers[0][1]
    assert "job_variables" not in layer and layer.get("work_queue") is None, "deployed as prefect deploy deploys it"
    assert data != cleaned and "definitions" not in warnings[0]


def test_strict_refuses_what_prefect_ignores_naming_each_key() -> None:
    data = {"version": 2, "deployments": [deployment(work_pool={"name": "p", "type": "process"})]}
    with pytest.raises(ConfigError) as caught:
        prefect_verdict(data, "prefect.yaml", strict=True)
    message = str(caught.value)
    assert "keys prefect deploy ignores ([flows] strict = true refuses them)" in message
    assert "  - version: prefect deploy ignores" in message and "deployments.0(nightly).work_pool.type" in message
    assert "set [flows] strict = false" in message


def test_definitions_and_keys_prefect_declares_pass_without_a_word() -> None:
    data = {"name": "p", "prefect-version": "3.8.0", "definitions": {"tags": ["a"]},
            "deployments": [deployment(version_type="vcs:git", flow_name="job", sla=[], tags=["a"])]}
    assert prefect_verdict(data, "prefect.yaml")[1] == []


@pytest.mark.parametrize("extra", [{"max_active_runs": 1}, {"catchup": False}, {"max_active_runs": 1, "catchup": True}])
def test_unknown_keys_in_a_schedule_are_refused_with_what_prefect_says(extra: dict[str, Any]) -> None:
    data = {"deployments": [deployment(schedules=[{"cron": "0 6 * * *", **extra}])]}
    with pytest.raises(ConfigError) as caught:
        prefect_verdict(data, "prefect.yaml")
    message = str(caught.value)
    assert "prefect.yaml: prefect deploy refuses this file; it says:\nInvalid fields in deployments:\n  • nightly: schedules" \
        in message, message
    for key in extra:
        assert f"  - deployments.0(nightly).schedules.0.{key}: unknown key (Prefect refuses it here)" in message
    assert "schedules.0.schedule:" not in message, "only the spelling prefect.yaml files use is explained"


def test_rules_come_from_prefects_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key a later Prefect declares is accepted without a word, with no list here to update."""
    from prefect.cli.deploy import _models

    data = {"deployments": [deployment(pull_interval=30)]}
    assert prefect_verdict(data, "prefect.yaml")[1][0].startswith("prefect.yaml: deployments.0(nightly).pull_interval")
    extended = type("DeploymentConfig", (_models.DeploymentConfig,), {"__annotations__": {"pull_interval": int | None},
                                                                       "pull_interval": None})
    monkeypatch.setattr(_models, "DeploymentConfig", extended)
    assert prefect_verdict(data, "prefect.yaml")[1] == []


def test_a_flow_or_deployment_name_prefect_refuses_is_refused_before_any_write() -> None:
    fine = Desired("nightly", "job", "dev", "http://x/api")
    refuse_names_prefect_refuses([fine])
    with pytest.raises(ConfigError) as caught:
        refuse_names_prefect_refuses([fine, Desired("nightly", "reports/daily", "dev", "http://x/api"),
                                      Desired("50%", "job", "dev", "http://x/api")])
    message = str(caught.value)
    assert "dev: flow name 'reports/daily' (deployment 'nightly' of flow 'reports/daily'): Prefect refuses names " \
           "with any of / % & > <" in message
    assert "dev: deployment name '50%'" in message and "'nightly' of flow 'job'" not in message


def test_validate_only_refuses_a_flow_name_with_a_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_flow_formats import fixture_repo, pipeline, run_stages

    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    query = repo / "workflows" / "query.py"
    query.write_text(query.read_text().replace('name="Get Associated Domains"', 'name="domains/query"'))
    commit_all(repo, "a flow name with a slash")
    monkeypatch.setenv("FIXTURE_IMAGE", "registry.example.com/team/flows:1.0")
    with pytest.raises(ConfigError, match=r"flow name 'domains/query' \(deployment 'query' of flow 'domains/query'\)"):
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", pool="ff-e2e"), monkeypatch, "deploy", validate_only=True)


NO_POOL = """deployments:
  - name: no-pool
    entrypoint: flows/metadata.py:generate_metadata
    schedules:
      - cron: "0 6 * * *"
      - interval: 600
        active: false
"""


def desired_without_a_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str = "") -> list[Desired]:
    from tasks.pipeline.settings import settings
    from tasks.stages.deploy.desired import flows_listing, load_desired
    from tests.test_flow_formats import fixture_repo, run_stages

    repo = fixture_repo(tmp_path, "prefect_yaml_in_the_wild")
    (repo / "prefect.yaml").write_text(NO_POOL)
    commit_all(repo, "a deployment without a work pool")
    config = tmp_path / "pipeline.toml"
    config.write_text(f'[project]\nname = "fixture"\n\n[flows]\npath = "repo"\n\n[environments.dev]\n'
                      f'prefect_api_url = "http://127.0.0.1:9/api"\nbranch = "*"\n{environment}')
    run_stages(config, monkeypatch)
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings.cache_clear()
    try:
        return load_desired(settings(), flows_listing(settings()), ["dev"])
    finally:
        settings.cache_clear()


def test_a_deployment_without_a_pool_is_refused_naming_both_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_DEFAULT_WORK_POOL_NAME", raising=False)
    with pytest.raises(ConfigError) as caught:
        desired_without_a_pool(tmp_path, monkeypatch)
    message = str(caught.value)
    assert "deployments.0(no-pool): no work pool for environment dev" in message
    assert 'set work_pool = "<pool>" in [environments.dev] of pipeline.toml' in message
    assert "or give `work_pool: {name: <pool>}` on the deployment in the prefect.yaml" in message


def test_prefect_default_work_pool_name_is_used_when_a_deployment_has_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `prefect deploy --all` uses it; the file's schedules are active as written (the environment is silent)."""
    monkeypatch.setenv("PREFECT_DEFAULT_WORK_POOL_NAME", "default-from-prefect")
    (desired,) = desired_without_a_pool(tmp_path, monkeypatch)
    assert desired.spec["work_pool_name"] == "default-from-prefect"
    assert [s["active"] for s in desired.spec["schedules"]] == [True, False], "as the file says"


def test_an_environment_that_switches_schedules_off_wins_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_DEFAULT_WORK_POOL_NAME", raising=False)
    (desired,) = desired_without_a_pool(tmp_path, monkeypatch, 'work_pool = "env-pool"\nschedules = false\n')
    assert desired.spec["work_pool_name"] == "env-pool"
    assert [s["active"] for s in desired.spec["schedules"]] == [False, False]


IGNORES = ["generate-metadata/typed-pool", "generate-metadata/prefect2-schedule", "Get Associated Domains/git-version"]


def sent_version_infos(proxy: Any) -> dict[str, Any]:
    """The version_info each deployment was created with, by deployment name, as the proxy saw the requests."""
    import json

    found = {}
    for method, path, body in proxy.bodies:
        if method == "POST" and path.rstrip("/") == "/deployments" and body:
            sent = json.loads(body)
            found[sent["name"]] = sent.get("version_info")
    return found


def server_variable(api: str, name: str, value: str) -> None:
    from tests.helpers import prefect_http

    with prefect_http(api) as http:
        found = http.post("variables/filter", json={"variables": {"name": {"any_": [name]}}}).json()
        if found:
            http.patch(f"variables/name/{name}", json={"value": value}).raise_for_status()
        else:
            http.post("variables/", json={"name": name, "value": value}).raise_for_status()


@pytest.mark.services
@pytest.mark.slow
def test_keys_prefect_ignores_deploy_what_prefect_deploy_all_deploys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], prefect_api: str,
        oracle_api: str) -> None:
    """Each key prefect deploy ignores warns and deploys as Prefect deploys it; the pool named by a server variable
    is resolved before pools and images are decided; a schedule's active comes from a build step's output and a
    cron from a server variable; the version_info sent is Prefect's."""
    import os
    import subprocess

    from tests.prefect_proxy import PrefectProxy
    from tests.test_flow_formats import PREFECT, fixture_repo, pipeline, run_stages, same_as_prefects

    repo = fixture_repo(tmp_path, "prefect_yaml_prefect_ignores")
    for api in (oracle_api, prefect_api):
        server_variable(api, "fixture_pool", "ff-docker-dev")
        server_variable(api, "fixture_cron", "30 5 * * *")
    with PrefectProxy(oracle_api) as theirs, PrefectProxy(prefect_api) as ours:
        done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo, capture_output=True,
                              text=True, env={**os.environ, "PREFECT_API_URL": theirs.url}, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        config = pipeline(tmp_path, ours.url, pool="ff-e2e", project=unique_project())  # a prune elsewhere keeps off
        report = run_stages(config, monkeypatch, "deploy")
        warned = capsys.readouterr().err
        assert sorted(f"{e['flow']}/{e['name']}" for e in report["deployments"]) == sorted(IGNORES)
        for key in ("version", "typed-pool).work_pool.type", "typed-pool).work_pool.flow_variables",
                    "typed-pool).job_variables", "prefect2-schedule).is_schedule_active"):
            assert f"{key}: prefect deploy ignores this key" in warned, key
        mine = same_as_prefects(prefect_api, oracle_api, IGNORES)
        assert mine["generate-metadata/prefect2-schedule"]["work_pool_name"] == "ff-docker-dev", "the variable's pool"
        schedules = mine["generate-metadata/prefect2-schedule"]["schedules"]
        assert sorted((s["schedule"].get("cron", ""), s["active"]) for s in schedules) == [
            ("", False), ("0 6 * * *", True), ("30 5 * * *", True)], "active from a step; cron from a variable"
        assert mine["generate-metadata/typed-pool"]["job_variables"] == {}, "job_variables beside work_pool: never applied"
        infos = sent_version_infos(ours)
        assert infos == sent_version_infos(theirs) and infos["git-version"]["type"] == "vcs:git", infos
        again = run_stages(config, monkeypatch, "deploy")
        assert again["writes"] == 0, [(e["name"], e.get("diff")) for e in again["deployments"] if e["status"] != "unchanged"]


def test_a_failed_deploy_time_step_shows_its_own_error(tmp_path: Path) -> None:
    import os

    from tasks.adapters.flow_code import Project, StepRun, step_outputs
    from tasks.adapters.prefect_settings import Connection
    from tasks.core.errors import ForkflowError

    steps = [{"prefect.deployments.steps.run_shell_script": {"id": "push", "script": "ls /no/such/folder",
                                                             "stream_output": False}}]
    with pytest.raises(ForkflowError) as caught:
        step_outputs(Project(tmp_path, dict(os.environ)), [StepRun(steps, tmp_path, "prefect.yaml: deployments.0(x)")],
                     Connection("http://127.0.0.1:9/api"), {})
    message = str(caught.value)
    assert "a deploy-time step failed: Encountered error while running prefect.deployments.steps.run_shell_script: " \
           "RuntimeError: `run_shell_script` failed with error code 2: ls: cannot access '/no/such/folder': No such " \
           "file or directory" in message, "the step's own error, with its stderr"


@pytest.mark.services
def test_a_file_prefect_deploy_rejects_is_refused_before_any_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    """prefect deploy skips such a file as a whole and fails; forkflow refuses it with Prefect's words, writes nothing."""
    import os
    import subprocess

    from tests.test_flow_formats import PREFECT, deployments_on, fixture_repo, pipeline, run_stages

    repo = fixture_repo(tmp_path, "prefect_yaml_prefect_ignores")
    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text.replace('        timezone: Europe/Berlin\n',
                                                    '        timezone: Europe/Berlin\n        max_active_runs: 1\n'
                                                    '        catchup: false\n'))
    commit_all(repo, "schedule keys Prefect rejects")
    before = deployments_on(prefect_api)
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo, capture_output=True,
                          text=True, env={**os.environ, "PREFECT_API_URL": prefect_api}, timeout=300)
    assert done.returncode != 0 and "prefect2-schedule: schedules" in done.stdout, done.stdout
    with pytest.raises(ConfigError) as caught:
        run_stages(pipeline(tmp_path, prefect_api, pool="ff-e2e", project=unique_project()), monkeypatch, "deploy")
    assert "Invalid fields in deployments:\n  • prefect2-schedule: schedules" in str(caught.value)
    assert "deployments.1(prefect2-schedule).schedules.0.max_active_runs: unknown key" in str(caught.value)
    assert deployments_on(prefect_api).keys() == before.keys(), "nothing was written, by either"


def test_prefects_rules_are_remembered_per_prefect_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second read of the same file asks Prefect nothing (importing Prefect costs seconds); another version does."""
    import json

    from tasks.pipeline import prefect_rules
    from tasks.pipeline.prefect_rules import PrefectRules

    file = tmp_path / "prefect-rules.json"
    data = {"version": 2, "deployments": [deployment(work_pool={"name": "p", "type": "process"})]}
    first = prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))
    refuse_names_prefect_refuses([Desired("nightly", "job", "dev", "http://x/api")], PrefectRules(file))

    def no_prefect() -> Any:
        raise AssertionError("Prefect was asked again")

    monkeypatch.setattr(prefect_rules, "prefect_models", no_prefect)
    assert prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file)) == first
    with pytest.raises(ConfigError, match="flow name 'a/b'"):
        refuse_names_prefect_refuses([Desired("nightly", "a/b", "dev", "http://x/api")], PrefectRules(file))
    file.write_text(json.dumps({**json.loads(file.read_text()), "prefect": "0.0.1"}))
    with pytest.raises(AssertionError, match="asked again"):
        prefect_verdict(data, "prefect.yaml", rules=PrefectRules(file))


@pytest.mark.services
@pytest.mark.slow
def test_what_a_file_leaves_out_is_stored_as_prefect_deploy_stores_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str, oracle_api: str) -> None:
    """A cron schedule without a timezone (null, where interval and rrule get UTC) and a flow with neither a docstring
    nor a `description:`, as found on public flow repositories."""
    from tests.test_flow_formats import FIELDS, PREFECT, deployments_on, fixture_repo, pipeline, run_stages, schedules_of

    repo = fixture_repo(tmp_path, "prefect_yaml_defaults")
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PREFECT_API_URL": oracle_api}, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    config = pipeline(tmp_path, prefect_api, project=unique_project())
    first = run_stages(config, monkeypatch, "deploy")
    theirs = {k: v for k, v in deployments_on(oracle_api).items() if k.startswith("defaults-")}
    ours = {k: v for k, v in deployments_on(prefect_api).items() if k in theirs}
    assert sorted(ours) == sorted(theirs) and len(theirs) == 3, (sorted(ours), sorted(theirs))
    for key, their in theirs.items():
        assert schedules_of(ours[key]) == schedules_of(their), key
        differ = {name: (ours[key][name], their[name]) for name in FIELDS if ours[key][name] != their[name]}
        assert differ == {}, key
    assert theirs["defaults-undescribed/cron-no-tz"]["schedules"][0]["schedule"]["timezone"] is None
    assert {e["status"] for e in first["deployments"]} == {"created"}
    again = run_stages(config, monkeypatch, "deploy")
    assert again["writes"] == 0, [(e["name"], e.get("diff")) for e in again["deployments"]]


def test_every_deployments_problem_is_named_in_one_refusal() -> None:
    from tasks.core.prefect_templates import fill_environment
    from tasks.stages.deploy.desired import every_desired

    def make(item: Any) -> Any:
        return fill_environment({"env": {"A": "{{ $" + item + " }}"}}, {}, f"prefect.yaml: deployments({item})")

    with pytest.raises(ConfigError) as caught:
        every_desired(("FF_UNSET_A", "FF_UNSET_B"), make)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "2 deployments cannot be deployed" in message and "FF_UNSET_A" in message and "FF_UNSET_B" in message
