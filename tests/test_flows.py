"""Flow discovery: parsed, never imported; every decorator spelling; git-ignored files skipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tasks.core.deployment import Context
from tasks.core.deploynames import deployment_name, environments_for_branch, fixed_prefix, name_matcher, slug
from tasks.core.discovery import discover_source, duplicate_names, parameter_schema
from tests.flows_repo import flows_repo, write_config
from tests.helpers import run_doit

TRICKY = '''
"""Module docstring."""
import asyncio
import prefect
import prefect as pf
from prefect import flow
from prefect import flow as prefect_flow
from other_library import task, decorator

raise SystemExit("importing this file would fail the test")


@flow
def plain(x: int, y: str = "a") -> None:
    """Plain docstring."""


@flow()
def called():
    pass


@prefect.flow
def attribute_form():
    pass


@pf.flow(name="custom name", description="From the decorator.")
async def aliased_module(**kwargs):
    """Ignored: description= wins."""
    await asyncio.sleep(0)


@prefect_flow(name="renamed", retries=2)
async def aliased_function(day: str = "today", *, limit: int = 100, tags: tuple = ("a", "b")):
    pass


@decorator
def not_a_flow():
    pass


@task
def also_not_a_flow():
    pass


class Holder:
    @flow
    def method_is_not_an_entrypoint(self):
        pass
'''


def test_every_decorator_spelling_sync_and_async_without_importing() -> None:
    flows, errors = discover_source(TRICKY, "pkg/tricky.py")
    assert errors == []
    by_name = {f.name: f for f in flows}
    assert list(by_name) == ["plain", "called", "attribute-form", "custom name", "renamed"]
    assert by_name["plain"].description == "Plain docstring."
    assert by_name["custom name"].description == "From the decorator."
    assert by_name["custom name"].is_async and by_name["renamed"].is_async and not by_name["plain"].is_async
    assert by_name["renamed"].entrypoint == "pkg/tricky.py:aliased_function"
    assert by_name["custom name"].accepts("anything")
    plain = by_name["plain"]
    assert [(p.name, p.required) for p in plain.parameters] == [("x", True), ("y", False)]
    assert plain.accepts("x") and not plain.accepts("z")
    schema = parameter_schema(by_name["renamed"])
    assert schema["properties"]["limit"] == {"title": "limit", "position": 1, "type": "integer", "default": 100}
    assert schema["properties"]["tags"]["default"] == ["a", "b"]
    assert "required" not in schema
    assert parameter_schema(plain)["required"] == ["x"]


def test_a_name_called_flow_from_another_library_is_not_a_prefect_flow() -> None:
    source = "from mylib import flow\n\n@flow\ndef job():\n    pass\n"
    assert discover_source(source, "job.py") == ([], [])


def test_star_import_and_prefect_flows_module() -> None:
    source = ("from prefect import *\nimport prefect.flows\n\n@flow\ndef a():\n    pass\n\n"
              "@prefect.flows.flow\ndef b_c():\n    pass\n")
    flows, _ = discover_source(source, "x.py")
    assert [f.name for f in flows] == ["a", "b-c"]


def test_syntax_error_reports_file_and_line() -> None:
    flows, errors = discover_source("from prefect import flow\n\n@flow\ndef broken(:\n    pass\n", "bad/broken.py")
    assert flows == []
    assert len(errors) == 1 and str(errors[0]).startswith("bad/broken.py:4: syntax error")


def test_flow_spec_attaches_to_the_flow_it_names() -> None:
    source = ("import prefect\nFLOW_SPEC = {'name': 'daily-report', 'tags': ['reports']}\n\n"
              "@prefect.flow(name='daily-report')\ndef daily_report():\n    pass\n")
    flows, errors = discover_source(source, "reports/daily_flow.py")
    assert errors == [] and flows[0].spec == {"tags": ["reports"]}
    ignored, _ = discover_source(source, "reports/daily.py")
    assert ignored[0].spec == {}, "FLOW_SPEC is read only in *_flow.py files"


@pytest.mark.parametrize(("spec", "message"), [
    ("{'name': 'other'}", "FLOW_SPEC names flow 'other'; flows in this file: job"),
    ("make_spec()", "FLOW_SPEC must be a dict of literals or a FlowSpec(...) call: "
                    "make_spec() is not a literal or module-level constant"),
    ("['not', 'a', 'dict']", "FLOW_SPEC must be a dict, got list"),
])
def test_bad_flow_spec_is_reported_with_its_line(spec: str, message: str) -> None:
    source = f"from prefect import flow\n\nFLOW_SPEC = {spec}\n\n@flow\ndef job():\n    pass\n"
    _, errors = discover_source(source, "job_flow.py")
    assert [str(e) for e in errors] == [f"job_flow.py:3: {message}"]


def test_duplicate_flow_names_are_errors() -> None:
    a, _ = discover_source("from prefect import flow\n@flow(name='x')\ndef a():\n    pass\n", "a.py")
    b, _ = discover_source("from prefect import flow\n@flow(name='x')\ndef b():\n    pass\n", "sub/b.py")
    assert [str(e) for e in duplicate_names(a + b)] == ["sub/b.py:3: flow name 'x' is already used by a.py:3"]


def test_a_flow_name_used_twice_is_a_problem_only_where_it_names_deployments(tmp_path: Path) -> None:
    twice = "from prefect import flow\n@flow(name='{name}')\ndef {function}():\n    pass\n"
    flows_repo(tmp_path, {"orbit_flows/again.py": twice.format(name="hello", function="hello_again"),
                          "orbit_flows/one.py": twice.format(name="scratch", function="one"),
                          "orbit_flows/two.py": twice.format(name="scratch", function="two")})
    result = run_doit(write_config(tmp_path, "http://127.0.0.1:9/api", project="orbit"), "flows")
    report = json.loads((tmp_path / ".forkflow" / "reports" / "flows.json").read_text())
    assert [e for e in report["errors"] if "already used" in e] == [
        "orbit_flows/hello.py:9: flow name 'hello' is already used by orbit_flows/again.py:3"], result.stdout + result.stderr


def test_the_flows_task_follows_a_projects_own_flow_decorator(tmp_path: Path) -> None:
    wrapper = ("from prefect import flow as prefect_flow\n\n\ndef flow(*args, **kwargs):\n"
               "    return prefect_flow(*args, timeout_seconds=60, **kwargs)\n")
    flows_repo(tmp_path, {"orbit_flows/common/prefect_utils.py": wrapper,
                          "orbit_flows/capture.py": "from orbit_flows.common.prefect_utils import flow\n\n"
                                                    "@flow(name='capture-gtfs')\ndef capture():\n    pass\n"})
    result = run_doit(write_config(tmp_path, "http://127.0.0.1:9/api", project="orbit"), "flows")
    report = json.loads((tmp_path / ".forkflow" / "reports" / "flows.json").read_text())
    assert {f["name"]: f["file"] for f in report["flows"]}["capture-gtfs"] == "orbit_flows/capture.py", result.stdout


def test_names_follow_the_pattern_and_branch_selects_environments() -> None:
    ctx = Context(project="orbit", branch="feature/Fix_1", commit="abc", version="1.0")
    assert slug("feature/Fix_1") == "feature-fix-1"
    name = deployment_name(ctx, "daily_report", "dev")
    assert name == "orbit--feature-fix-1--daily-report--dev"
    assert name_matcher(ctx, "dev").match(name)
    assert not name_matcher(ctx, "prod").match(name)
    assert not name_matcher(Context("orbit", "main", "abc", "1.0"), "dev").match(name)
    assert name.startswith(fixed_prefix(ctx, "dev"))
    envs: dict[str, str | None] = {"dev": "*", "staging": "staging", "prod": "main"}
    assert environments_for_branch(envs, "main") == ["prod"]
    assert environments_for_branch(envs, "staging") == ["staging"]
    assert environments_for_branch(envs, "feature/x") == ["dev"]
    assert environments_for_branch({"prod": "main"}, "feature/x") == []


def test_flows_task_writes_flows_json_skipping_ignored_files(tmp_path: Path) -> None:
    flows = flows_repo(tmp_path, {
        ".gitignore": "scratch/\n",
        "scratch/ignored.py": "from prefect import flow\n@flow\ndef ignored():\n    pass\n",
        "orbit_flows/deep/nested/more.py": "from prefect import flow\n@flow\nasync def nested_one(n: int = 1):\n    pass\n",
        "orbit_flows/broken.py": "from prefect import flow\n\n@flow\ndef broken(:\n",
    })
    (flows / "untracked.py").write_text("from prefect import flow\n@flow\ndef untracked_but_not_ignored():\n    pass\n")
    config = write_config(tmp_path, "http://127.0.0.1:9/api", project="orbit")
    result = run_doit(config, "flows")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / ".forkflow" / "reports" / "flows.json").read_text())
    names = {flow["name"]: flow for flow in report["flows"]}
    assert set(names) == {"hello", "extract-orders", "daily-report", "nested-one", "untracked-but-not-ignored"}
    assert names["nested-one"]["file"] == "orbit_flows/deep/nested/more.py"
    assert names["nested-one"]["function"] == "nested_one" and names["nested-one"]["is_async"]
    assert names["extract-orders"]["description"] == "Pull the day's orders from the shop API."
    assert names["daily-report"]["spec"] == {"description": "Build the daily report.", "tags": ["reports"]}
    deployments = {entry["flow"]: entry for entry in report["deployments"]}
    assert deployments["hello"]["names"] == {"dev": "orbit--release--hello--dev", "prod": "orbit--release--hello--prod"}
    assert report["errors"] == [f"orbit_flows/broken.py:4: syntax error: invalid syntax (read as Python {sys.version_info.major}."
                                f"{sys.version_info.minor}; a file written for a newer Python needs forkflow run on it)"]
    assert report["branch"] == "release" and report["environments"] == ["dev"] and report["version"] == "0.1.0"
    assert "orbit_flows/broken.py:4: syntax error" in result.stderr
    assert "orbit--release--hello--dev" in result.stdout
    assert "orbit--release--nested-one--dev" not in result.stdout, "not listed in deployments.yaml: not deployed"
    assert "2 flow(s) not listed in deployments.yaml" in result.stdout and "nested-one" in report["notes"][0]


def test_flows_without_a_section_says_so(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n')
    result = run_doit(config, "flows")
    assert result.returncode == 0
    assert "skipped: the config has no [flows] section" in result.stdout


def test_forkflow_environment_overrides_the_branch_map(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.core.errors import ForkflowError
    from tasks.pipeline.settings import load_settings
    from tasks.stages.flows import chosen_environments
    from tests.helpers import REPO

    current = load_settings(REPO / "pipeline.toml")
    monkeypatch.delenv("FORKFLOW_ENVIRONMENT", raising=False)
    assert chosen_environments(current, "release") == ["dev"]
    assert chosen_environments(current, "main") == ["prod"]
    monkeypatch.setenv("FORKFLOW_ENVIRONMENT", "prod")
    assert chosen_environments(current, "release") == ["prod"]
    monkeypatch.setenv("FORKFLOW_ENVIRONMENT", "dev,qa")
    with pytest.raises(ForkflowError) as caught:
        chosen_environments(current, "release")
    assert "qa" in str(caught.value) and "use one of: dev, prod" in str(caught.value)
