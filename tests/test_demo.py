"""The demo workspace: layout, tags, branches, idempotence, recreation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import run_doit


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_upstream_is_laid_out_like_prefect(demo_workspace: Path) -> None:
    files = set(git(demo_workspace / "upstream.git", "ls-tree", "-r", "--name-only", "main").splitlines())
    for expected in [
        "pyproject.toml",
        "src/orbit/__init__.py",
        "src/orbit/cli/__init__.py",
        "src/orbit/server/api/__init__.py",
        "src/orbit/testing/__init__.py",
        "client/pyproject.toml",
        "src/integrations/orbit-aws/pyproject.toml",
        "src/integrations/orbit-gcp/pyproject.toml",
        "src/integrations/orbit-slack/pyproject.toml",
        "flows/deployments.yaml",
        "flows/orbit_flows/hello.py",
        "flows/orbit_flows/etl/extract.py",
        "flows/orbit_flows/reports/daily_flow.py",
    ]:
        assert expected in files, expected
    core = git(demo_workspace / "upstream.git", "show", "main:pyproject.toml")
    assert 'source = "versioningit"' in core and "hatchling" in core
    aws = git(demo_workspace / "upstream.git", "show", "main:src/integrations/orbit-aws/pyproject.toml")
    assert "setuptools_scm" in aws and "--match 'orbit-aws-*[0-9]*'" in aws


def test_upstream_tags_include_release_dev_rc_and_package_tags(demo_workspace: Path) -> None:
    tags = set(git(demo_workspace / "upstream.git", "tag").split())
    assert {"1.0.0", "1.0.1", "1.1.0.dev1", "orbit-aws-0.2.0", "orbit-gcp-0.2.0rc1", "orbit-slack-0.1.1"} <= tags
    described = git(demo_workspace / "upstream.git", "describe", "--tags", "--match", "[0-9]*", "main")
    assert described.startswith("1.1.0.dev1-"), "there are commits after the last core tag"


def test_flows_use_every_decorator_style(demo_workspace: Path) -> None:
    upstream = demo_workspace / "upstream.git"
    assert "async def extract" in git(upstream, "show", "main:flows/orbit_flows/etl/extract.py")
    assert "@prefect.flow(" in git(upstream, "show", "main:flows/orbit_flows/reports/daily_flow.py")
    assert "FLOW_SPEC" in git(upstream, "show", "main:flows/orbit_flows/reports/daily_flow.py")
    assert "@flow\n" in git(upstream, "show", "main:flows/orbit_flows/hello.py")


def test_fork_main_is_behind_upstream_and_release_has_custom_commits(demo_workspace: Path) -> None:
    origin, upstream = demo_workspace / "origin.git", demo_workspace / "upstream.git"
    git(origin, "fetch", "-q", str(upstream), "main:refs/remotes/upstream/main")
    behind = git(origin, "rev-list", "--count", "main..upstream/main")
    custom = git(origin, "log", "--format=%s", "main..release").splitlines()
    assert behind == "3"
    assert len(custom) == 3 and any(s.startswith("feat(flows)") for s in custom)
    assert git(origin, "merge-base", "--is-ancestor", "main", "upstream/main") == ""
    assert git(origin, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_generation_is_reproducible(demo_workspace: Path, demo_cache: Path) -> None:
    stamp = json.loads((demo_workspace / "demo.json").read_text())
    again = json.loads((demo_cache / "demo.json").read_text())
    assert stamp["upstream_main"] == again["upstream_main"] == git(demo_workspace / "upstream.git", "rev-parse", "main")


def test_demo_task_is_idempotent_and_recreates_a_deleted_workspace(demo_config: Path) -> None:
    first = run_doit(demo_config, "demo")
    assert first.returncode == 0, first.stderr
    workspace = demo_config.parent / ".forkflow" / "demo"
    assert (workspace / "upstream.git").is_dir() and (workspace / "origin.git").is_dir()

    second = run_doit(demo_config, "demo")
    assert second.returncode == 0
    assert "-- demo" in second.stdout and "up-to-date" in second.stdout

    subprocess.run(["rm", "-rf", str(workspace)], check=True)
    third = run_doit(demo_config, "demo")
    assert third.returncode == 0 and ".  demo" in third.stdout
    assert (workspace / "origin.git").is_dir()
    leftovers = [p.name for p in workspace.parent.iterdir() if p.name.startswith(".demo")]
    assert leftovers == []


def refused_regeneration(demo_config: Path) -> str:
    run_doit(demo_config, "forget", "demo")
    result = run_doit(demo_config, "demo")
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "holds work the demo did not make; regenerating it would delete it" in output
    assert "python3 -m doit clean demo && python3 -m doit demo" in output
    return output


def test_regenerating_keeps_uncommitted_work_in_the_clone(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    fork = demo_config.parent / ".forkflow" / "demo" / "fork"
    (fork / "notes.txt").write_text("mine\n")
    (fork / "README.md").write_text("edited\n")
    output = refused_regeneration(demo_config)
    assert "fork: 2 uncommitted change(s): README.md, notes.txt" in output
    assert (fork / "notes.txt").read_text() == "mine\n" and (fork / "README.md").read_text() == "edited\n"


def test_regenerating_keeps_a_commit_pushed_to_origin(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    workspace = demo_config.parent / ".forkflow" / "demo"
    fork = workspace / "fork"
    git(fork, "-c", "user.name=Dana", "-c", "user.email=dana@example.com", "commit", "-q", "--allow-empty", "-m", "my work")
    mine = git(fork, "rev-parse", "HEAD")
    git(fork, "push", "-q", "origin", "release")
    subprocess.run(["rm", "-rf", str(fork)], check=True)
    output = refused_regeneration(demo_config)
    assert f"origin.git: commit {mine[:7]} my work (Dana)" in output
    assert git(workspace / "origin.git", "rev-parse", "release") == mine


def test_regenerating_after_a_sync_and_resetting_on_purpose(demo_config: Path) -> None:
    workspace = demo_config.parent / ".forkflow" / "demo"
    assert run_doit(demo_config, "sync").returncode == 0
    rebased = git(workspace / "origin.git", "rev-parse", "release")
    run_doit(demo_config, "forget", "demo")
    again = run_doit(demo_config, "demo")
    assert again.returncode == 0, "the pipeline's own rebase of the demo's commits is not user work"
    assert git(workspace / "origin.git", "rev-parse", "release") != rebased

    assert run_doit(demo_config, "checkout").returncode == 0
    (workspace / "fork" / "notes.txt").write_text("mine\n")
    assert run_doit(demo_config, "clean", "demo").returncode == 0
    assert not workspace.exists()
    assert run_doit(demo_config, "demo").returncode == 0
