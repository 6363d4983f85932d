"""`python -m tasks.plan` (the pull-request check): what merging would do, against a real Prefect server, writing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.core.plan import MARKER, Plan, Step, markdown
from tasks.pipeline.settings import settings
from tests.helpers import REPO
from tests.test_deploy import SPECS, Workspace, server_deployments


def run_plan(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FORKFLOW_", "GITHUB_"))}
    return subprocess.run([sys.executable, "-m", "tasks.plan", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False, env={**env, "FORKFLOW_CONFIG": str(config)})


@pytest.fixture
def deployed(tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A flows repository deployed from main (main deploys to prod, every other branch to dev)."""
    ws = Workspace(tmp_path, prefect_api, monkeypatch)
    monkeypatch.setenv("FORKFLOW_BRANCH", "main")
    ws.deploy()
    monkeypatch.delenv("FORKFLOW_BRANCH")
    settings.cache_clear()
    return ws


def changed_specs(name: str) -> dict[str, Any]:
    specs: dict[str, Any] = json.loads(json.dumps(SPECS))
    specs["flows"]["hello"]["environments"]["prod"]["parameters"]["name"] = name
    return specs


@pytest.mark.services
@pytest.mark.slow
def test_the_plan_shows_what_the_merge_would_change_and_writes_nothing(deployed: Workspace, prefect_api: str) -> None:
    before = server_deployments(prefect_api, deployed.project)
    deployed.write_specs(changed_specs("a-secret-value"))
    done = run_plan(deployed.config, "--base", "main", "--head", "feature/x")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = (deployed.root / ".forkflow" / "reports" / "plan.md").read_text()
    assert plan == done.stdout and plan.startswith(MARKER)
    assert "## forkflow plan: feature/x into main" in plan and "all checks passed" in plan
    assert f"- `{deployed.name('hello', 'prod', 'main')}`: parameters" in plan
    assert "### Deploy to prod: 1 to update, 2 unchanged" in plan and "Deploy to dev" not in plan
    assert "a-secret-value" not in plan  # names of changed fields, never their values
    report = json.loads((deployed.root / ".forkflow" / "reports" / "plan.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["config", "flows", "deploy check", "deploy plan: prod"]
    assert {s["status"] for s in report["steps"]} == {"passed"} and report["failed"] == []
    after = server_deployments(prefect_api, deployed.project)
    assert {n: d["updated"] for n, d in after.items()} == {n: d["updated"] for n, d in before.items()}


@pytest.mark.services
@pytest.mark.slow
def test_a_change_that_would_fail_the_deploy_fails_the_plan_before_any_write(deployed: Workspace, prefect_api: str) -> None:
    before = server_deployments(prefect_api, deployed.project)
    specs = changed_specs("x")
    specs["flows"]["extract-orders"]["schedules"] = [{"cron": "61 * * * *"}]
    deployed.write_specs(specs)
    done = run_plan(deployed.config, "--base", "main")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "check(s) failed**: merging this would fail the pipeline" in done.stdout
    assert "| deploy check | `doit deploy --validate-only` | failed: " in done.stdout
    assert "61 * * * *" in done.stdout and "<details><summary>deploy check: output</summary>" in done.stdout
    after = server_deployments(prefect_api, deployed.project)
    assert {n: d["updated"] for n, d in after.items()} == {n: d["updated"] for n, d in before.items()}


def test_a_plan_without_a_target_branch_says_how_to_give_one(tmp_path: Path) -> None:
    done = run_plan(tmp_path / "pipeline.toml")
    assert done.returncode == 2 and "no target branch" in done.stderr and "--base" in done.stderr


def test_long_plans_are_cut_and_table_cells_stay_cells() -> None:
    report = {"deployments": [{"name": f"d{i}", "status": "skipped", "would": "create"} for i in range(25)]
              + [{"name": "u", "status": "skipped", "would": "update", "diff": ["tags", "parameters"]}]}
    text = markdown(Plan("feature", "main", [Step("deploy check", "doit deploy --validate-only", "failed", "a | b\nc")],
                         {"dev": report}))
    assert "### Deploy to dev: 25 to create, 1 to update" in text
    assert "- `d19`" in text and "- `d20`" not in text and "- and 5 more" in text
    assert "- `u`: tags, parameters" in text
    assert "| failed: a \\| b c |" in text and "**1 check(s) failed**" in text
