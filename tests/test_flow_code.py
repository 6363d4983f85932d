"""The flows project's own code runs in a child process per project, with the project's path first and none of
forkflow's credentials: parameter schemas as Prefect derives them, deploy-time steps against one server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.core.errors import ForkflowError
from tests.test_flow_formats import fixture_repo, pipeline, run_stages

ORACLE = ("import json, sys; sys.path.insert(0, '.'); from prefect.flows import load_flow_from_entrypoint; "
          "from prefect.utilities.callables import parameter_schema; "
          "print(json.dumps(parameter_schema(load_flow_from_entrypoint(sys.argv[1])).model_dump(exclude_unset=True)))")


def prefects_schema(folder: Path, entrypoint: str) -> dict[str, object]:
    """What `prefect deploy` computes: the flow imported from the project's folder, in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", ORACLE, entrypoint], cwd=folder, capture_output=True, text=True,
                          check=True, timeout=120)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def as_tasks_module(repo: Path) -> None:
    """The same project with `tasks.py` beside flows.py instead of a `tasks/` package."""
    package = repo / "tasks"
    text = (package / "__init__.py").read_text() + "\n\n" + (package / "models.py").read_text()
    for file in package.iterdir():
        file.unlink()
    package.rmdir()
    (repo / "tasks.py").write_text(text.replace("from pydantic import", "\nfrom pydantic import"))
    flows = repo / "flows.py"
    flows.write_text(flows.read_text().replace("from tasks.models import Params", "from tasks import Params"))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)


def desired_schemas(config: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The parameter schemas forkflow would deploy (validated, nothing contacted), by deployment name."""
    from tasks.pipeline.settings import read_report, settings
    from tasks.stages.deploy.desired import load_desired

    run_stages(config, monkeypatch)
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings.cache_clear()
    current = settings()
    listing = read_report("flows", current)
    assert listing is not None
    desired = load_desired(current, listing, ["dev"], dry_run=True)
    settings.cache_clear()
    return {item.name: item.spec["parameter_openapi_schema"] for item in desired}


@pytest.mark.parametrize("layout", ["package", "module"])
def test_a_project_with_its_own_tasks_package_gets_prefects_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    repo = fixture_repo(tmp_path, "prefect_own_tasks")
    if layout == "module":
        as_tasks_module(repo)
    schemas = desired_schemas(pipeline(tmp_path, "http://127.0.0.1:9/api"), monkeypatch)
    expected = prefects_schema(repo, "flows.py:load_orders")
    assert schemas == {"load-orders": expected}
    assert expected["properties"]["params"]["$ref"] == "#/definitions/Params"  # type: ignore[index]
    assert "Params" in expected["definitions"]  # type: ignore[operator]
    assert sys.modules["tasks"].__file__ == str(Path(__file__).parents[1] / "tasks" / "__init__.py")
    assert "tasks.models" not in sys.modules and "flows" not in sys.modules, "the project's code never ran here"


def test_a_change_in_a_module_the_flow_imports_changes_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_own_tasks")
    config = pipeline(tmp_path, "http://127.0.0.1:9/api")
    desired_schemas(config, monkeypatch)
    models = repo / "tasks" / "models.py"
    models.write_text(models.read_text().replace("    table: str\n", "    table: str\n    region: str = 'eu'\n"))
    schema = desired_schemas(config, monkeypatch)["load-orders"]
    assert "region" in schema["definitions"]["Params"]["properties"]  # type: ignore[index]
    assert schema == prefects_schema(repo, "flows.py:load_orders")


def test_a_flow_module_prefect_cannot_read_is_named(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, parameter_schemas

    (tmp_path / "flows.py").write_text("from prefect import flow\n\n@flow\ndef job(x: int) -> None:\n    pass\n")
    with pytest.raises(ForkflowError, match=r"Prefect cannot derive the parameter schema of missing: ValueError: "
                                            r"Function missing not found"):
        parameter_schemas(Project(tmp_path, {"PATH": "/usr/bin:/bin"}), [("flows.py", "missing")])


ENV_DUMP = "import json, os; json.dump(sorted(k for k, v in os.environ.items() if v), open(os.environ['DUMP_TO'], 'w'))\n"
CREDENTIALS = {"TWINE_PASSWORD": "index-secret", "FORKFLOW_REGISTRY_PASSWORD": "registry-secret",
               "PREFECT_API_KEY": "shell-key", "PREFECT_API_AUTH_STRING": "admin:shell", "PROD_PREFECT_KEY": "prod-key",
               "GITHUB_TOKEN": "gh-secret"}


def test_the_schema_child_sees_no_credential(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, parameter_schemas

    dump = tmp_path / "seen.json"
    (tmp_path / "helpers.py").write_text(ENV_DUMP + "class Row(dict):\n    pass\n")
    (tmp_path / "flows.py").write_text("from prefect import flow\nfrom helpers import Row\n\n"
                                       "@flow\ndef job(row: Row) -> None:\n    pass\n")
    environ = {"PATH": "/usr/bin:/bin", "DUMP_TO": str(dump), "TEAM": "data", **CREDENTIALS}
    parameter_schemas(Project(tmp_path, environ, hidden=("PROD_PREFECT_KEY",)), [("flows.py", "job")])
    seen = json.loads(dump.read_text())
    assert "TEAM" in seen and not set(CREDENTIALS) & set(seen), seen


def test_steps_see_only_their_environments_server_and_credential(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, StepRun, step_outputs
    from tasks.adapters.prefect_settings import Connection

    check = ("import os, prefect.settings as s; print(sorted(k for k, v in os.environ.items() if v and k in "
             f"{sorted(CREDENTIALS)!r}), s.PREFECT_API_URL.value(), s.PREFECT_API_KEY.value(), "
             "s.PREFECT_API_AUTH_STRING.value() or None)")
    (tmp_path / "check.py").write_text(check + "\n")
    step = {"prefect.deployments.steps.run_shell_script": {
        "id": "seen", "script": f"{sys.executable} check.py", "stream_output": False}}
    where = {"prefect.deployments.steps.run_shell_script": {
        "id": "where", "script": "echo {{ $PWD }} {{ $TEAM }}", "stream_output": False}}
    prod = Connection("http://127.0.0.1:9/api", headers={"Authorization": "Bearer prod-key"})
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "shell"\n[profiles.shell]\nPREFECT_API_AUTH_STRING = "admin:profile"\n')
    environ = {"PATH": "/usr/bin:/bin", "PREFECT_API_URL": "http://127.0.0.1:8/api", "PREFECT_PROFILES_PATH": str(profiles),
               **CREDENTIALS}
    project = Project(tmp_path, environ, hidden=("PROD_PREFECT_KEY",))
    (outputs,) = step_outputs(project, [StepRun([step, where], tmp_path, "prefect.yaml")], prod, {"TEAM": "data"})
    assert outputs["seen"]["stdout"] == "['PREFECT_API_KEY'] http://127.0.0.1:9/api prod-key None", \
        "the environment's key as PREFECT_API_KEY, no other credential, the environment's server"
    assert outputs["where"]["stdout"] == f"{tmp_path} data"


def test_a_failed_step_is_named_with_its_own_error(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, StepRun, step_outputs
    from tasks.adapters.prefect_settings import Connection

    step = {"prefect.deployments.steps.run_shell_script": {"id": "boom", "script": "false", "stream_output": False}}
    server = Connection("http://127.0.0.1:9/api")
    with pytest.raises(ForkflowError, match=r"prefect.yaml: deployments.0\(x\): a deploy-time step failed: .*run_shell_script"):
        step_outputs(Project(tmp_path, {"PATH": "/usr/bin:/bin"}), [StepRun([step], tmp_path, "prefect.yaml: deployments.0(x)")],
                     server, {})


def test_steps_after_a_docker_build_see_its_outputs(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, StepRun, step_outputs
    from tasks.adapters.prefect_settings import Connection

    step = {"prefect.deployments.steps.run_shell_script": {
        "id": "say", "script": "echo {{ build-image.image }}", "stream_output": False}}
    built = {"build-image": {"image": "127.0.0.1:5001/team/app@sha256:abc", "tag": "dev"}}
    (outputs,) = step_outputs(Project(tmp_path, {"PATH": "/usr/bin:/bin"}),
                              [StepRun([step], tmp_path, "prefect.yaml", built)], Connection("http://127.0.0.1:9/api"), {})
    assert outputs["say"]["stdout"] == "127.0.0.1:5001/team/app@sha256:abc"


def test_a_failed_steps_error_never_shows_the_credential(tmp_path: Path) -> None:
    from tasks.adapters.flow_code import Project, StepRun, step_outputs
    from tasks.adapters.prefect_settings import Connection

    step = {"prefect.deployments.steps.run_shell_script": {
        "id": "leak", "script": "sh -c 'echo token=$PREFECT_API_KEY >&2; exit 3'", "stream_output": False}}
    prod = Connection("http://127.0.0.1:9/api", headers={"Authorization": "Bearer prod-key-123"})
    with pytest.raises(ForkflowError) as caught:
        step_outputs(Project(tmp_path, {"PATH": "/usr/bin:/bin"}), [StepRun([step], tmp_path, "prefect.yaml")], prod, {})
    assert "prod-key-123" not in str(caught.value)
    assert "token=********" in str(caught.value), str(caught.value)


@pytest.mark.services
@pytest.mark.slow
def test_a_project_with_its_own_tasks_package_deploys_what_prefect_deploy_deploys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str, oracle_api: str) -> None:

    from tests.test_monorepo import removed_afterwards

    key = "load-orders/load-orders"
    with removed_afterwards(oracle_api, [key]):
        own_tasks_as_prefect_deploy_does(tmp_path, monkeypatch, prefect_api, oracle_api, key)


def own_tasks_as_prefect_deploy_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str, oracle_api: str,
                                     key: str) -> None:
    import os

    from tests.flows_repo import unique_project
    from tests.test_flow_formats import FIELDS, PREFECT, deployments_on

    repo = fixture_repo(tmp_path, "prefect_own_tasks")
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], check=False, cwd=repo, capture_output=True,
                          text=True, env={**os.environ, "PREFECT_API_URL": oracle_api}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = run_stages(pipeline(tmp_path, prefect_api, project=unique_project()), monkeypatch, "deploy")
    assert [e["status"] for e in report["deployments"]] == ["created"]
    theirs, ours = deployments_on(oracle_api)[key], deployments_on(prefect_api)[key]
    for name in FIELDS:
        assert ours[name] == theirs[name], name
    assert ours["parameter_openapi_schema"]["properties"]["params"]["$ref"] == "#/definitions/Params"
