"""`doit sync-github` after real syncs of the demo repositories, against a local fake of the GitHub API:
a conflict opens one issue, the next conflict updates it, a clean sync closes it; with `[fork] protected`
the sync pushes `sync/<release>-<date>` (release untouched on origin) and one pull request is opened, then
updated by the next sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline.settings import load_settings
from tests.fake_github import FakeGitHub, fake_github
from tests.helpers import run_doit
from tests.test_sync import IDENTITY, Fork, add_commit, fork, git, identity, write_config

__all__ = ["fork", "identity"]  # the sync tests' fixtures: the demo repositories, and a git identity (autouse)

TOKEN = "ghs_test_token_not_for_printing"
CONFLICTING = {"src/orbit/_fork.py": "DEFAULT_NAME = 'upstream'\n"}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as fake:
        yield fake


def sync_github(fork: Fork, github: FakeGitHub) -> dict[str, Any]:
    """`doit sync-github` as the workflow runs it; its report."""
    env = {**IDENTITY, "GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "acme/orbit",
           "FORKFLOW_DRY_RUN": ""}
    result = run_doit(fork.config, "sync-github", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert TOKEN not in output, "the token is never printed"
    loaded: dict[str, Any] = json.loads((fork.config.parent / ".forkflow" / "reports" / "sync-github.json").read_text())
    return loaded


def resolve_by_hand(fork: Fork) -> None:
    """What the issue tells a maintainer to do: rebase release onto the new main, keep the fork's side, push."""
    clone = fork.path
    report = fork.report()
    onto = report["conflict"]["onto"]
    origin_release = git(fork.origin, "rev-parse", "release")
    git(clone, "checkout", "-q", "release")
    git(clone, "rebase", "-q", "-X", "theirs", onto)
    git(clone, "push", "-q", "--atomic", f"--force-with-lease=refs/heads/release:{origin_release}", "origin",
        "refs/heads/main:refs/heads/main", "refs/heads/release:refs/heads/release")


def test_a_conflict_opens_one_issue_updates_it_and_a_clean_sync_closes_it(fork: Fork, github: FakeGitHub) -> None:
    add_commit(fork.upstream, "main", CONFLICTING, "feat: upstream takes _fork.py")
    fork.failure()
    assert fork.report()["conflict"]["files"] == ["src/orbit/_fork.py"]

    first = sync_github(fork, github)

    assert first["issue"]["action"] == "opened"
    assert first["pull_request"]["action"] == "none"
    (issue,) = github.issues.values()
    assert issue["state"] == "open" and issue["labels"] == [{"name": "forkflow-sync-conflict"}]
    assert "feat(core): fork-wide default greeting name" in issue["body"], "the conflicting commit"
    assert "`src/orbit/_fork.py`" in issue["body"], "the conflicting files"
    assert "git rebase --continue" in issue["body"] and "git checkout release" in issue["body"], "how to resolve"
    assert {r.authorization for r in github.requests} == {f"Bearer {TOKEN}"}

    scheduled = run_doit(fork.config, "sync", env={**IDENTITY, "FORKFLOW_DRY_RUN": ""})  # as the workflow runs it
    assert scheduled.returncode != 0 and "conflicting files" in scheduled.stdout + scheduled.stderr
    second = sync_github(fork, github)

    assert second["issue"] == {"action": "updated", "number": issue["number"], "repository": "acme/orbit"}
    assert len(github.issues) == 1 and github.issues[issue["number"]]["state"] == "open"
    assert ("POST", "/repos/acme/orbit/issues") in github.writes()
    assert github.writes().count(("POST", "/repos/acme/orbit/issues")) == 1, "never a second issue"

    resolve_by_hand(fork)
    fork.sync()
    assert fork.report()["status"] in ("updated", "up-to-date")
    third = sync_github(fork, github)

    assert third["issue"]["action"] == "closed"
    assert github.issues[issue["number"]]["state"] == "closed"
    assert "succeeded" in github.comments[issue["number"]][0]
    assert sync_github(fork, github)["issue"] == {"action": "none", "reason": "no open conflict issue"}


@pytest.fixture
def protected(fork: Fork) -> Fork:
    config = write_config(fork.config.parent, fork.upstream, fork.origin, "protected = true\n")
    return Fork(config, load_settings(config), fork.upstream, fork.origin)


def sync_branches(origin: Path) -> dict[str, str]:
    lines = git(origin, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/sync/").splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_protected_sync_pushes_a_branch_and_keeps_one_pull_request(protected: Fork, github: FakeGitHub) -> None:
    fork = protected
    release_before = git(fork.origin, "rev-parse", "release")
    custom = fork.subjects(fork.origin, "main..release")
    origin_refs = git(fork.origin, "for-each-ref")
    fork.sync(dry_run=True)
    assert git(fork.origin, "for-each-ref") == origin_refs, "a dry run pushes nothing"
    planned = fork.report()["protected"]
    assert planned["branch"].startswith("sync/release-") and planned["pushed"] is False

    fork.sync()

    assert git(fork.origin, "rev-parse", "release") == release_before, "the protected release is not pushed"
    assert git(fork.path, "rev-parse", "release") == release_before, "nor moved in the clone"
    ((branch, tip),) = sync_branches(fork.origin).items()
    assert branch.startswith("sync/release-") and len(branch) == len("sync/release-20260101")
    upstream_main = git(fork.upstream, "rev-parse", "main")
    assert git(fork.origin, "rev-parse", "main") == upstream_main
    assert fork.subjects(fork.origin, f"{upstream_main}..{branch}") == custom, "the rebased release"
    report = fork.report()
    assert report["protected"]["branch"] == branch and report["protected"]["pushed"] is True
    assert "refs/heads/release" not in report["pushed"]

    first = sync_github(fork, github)

    assert first["pull_request"]["action"] == "opened" and first["issue"]["action"] == "none"
    (pull,) = github.pulls.values()
    assert (pull["head"], pull["base"], pull["repo"]) == (branch, "release", "acme/orbit")
    assert "3 commit(s)" in pull["body"]

    add_commit(fork.upstream, "main", {"UPSTREAM_NEWS.md": "more\n"}, "docs: upstream news")
    fork.sync()

    assert list(sync_branches(fork.origin)) == [branch], "the same branch, moved with a lease"
    assert sync_branches(fork.origin)[branch] != tip
    assert git(fork.origin, "rev-parse", "release") == release_before
    second = sync_github(fork, github)

    assert second["pull_request"] == {"action": "updated", "number": pull["number"], "repository": "acme/orbit",
                                      "branch": branch}
    assert len(github.pulls) == 1 and "docs: upstream news" in github.pulls[pull["number"]]["body"]

    moved = sync_branches(fork.origin)[branch]
    with pytest.MonkeyPatch.context() as later:
        later.setenv("GIT_COMMITTER_DATE", "2031-01-01T00:00:00+00:00")
        fork.sync()  # no saved stamp consulted: the rebase is made again, same commits and files, other dates
    assert sync_branches(fork.origin)[branch] == moved and fork.report()["protected"]["pushed"] is False
    assert git(fork.path, "rev-parse", branch) == moved
    again = run_doit(fork.config, "sync", env={**IDENTITY, "FORKFLOW_DRY_RUN": ""})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "-- sync:push" in again.stdout, "up to date: upstream, origin and the clone are as the last sync left them"
    assert sync_branches(fork.origin)[branch] == moved, "nothing new upstream: nothing pushed"
    assert sync_github(fork, github)["pull_request"]["action"] == "none"
    assert len(github.pulls) == 1


def test_without_a_repository_or_with_dry_run_nothing_is_called(tmp_path: Path, github: FakeGitHub) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n\n[fork]\npath = "fork"\nupstream = "https://git.example.org/up/orbit.git"\n'
                      'origin = "https://git.example.org/acme/orbit.git"\n', encoding="utf-8")
    reports = tmp_path / ".forkflow" / "reports"
    reports.mkdir(parents=True)
    report = {"status": "failed", "dry_run": False, "release": {"name": "release"},
              "conflict": {"commit": None, "files": ["a.py"], "release": "release", "onto": "abc", "commands": "fix"}}
    (reports / "sync.json").write_text(json.dumps(report), encoding="utf-8")
    env = {"GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": ""}

    missing = run_doit(config, "sync-github", env=env)
    assert missing.returncode != 0 and "GITHUB_REPOSITORY is not set" in missing.stdout + missing.stderr
    dry = run_doit(config, "sync-github", "--dry-run", env={**env, "GITHUB_REPOSITORY": "acme/orbit"})
    assert dry.returncode == 0 and "would look for the open issue labelled forkflow-sync-conflict" in dry.stdout
    assert github.requests == []
