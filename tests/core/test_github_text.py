"""What forkflow writes on GitHub, from its reports: repositories from remotes, what a sync report asks for,
the conflict issue, the sync pull request and the release body."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.core.github_text import (
    CONFLICT_MARKER,
    choose_repository,
    conflict_issue,
    cut,
    pull_wanted,
    release_changes,
    release_fields,
    repository_of,
    shipped_version,
    sync_outcome,
    why_no_release,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://github.com/acme/prefect.git", "acme/prefect"),
    ("https://x-access-token@github.com/acme/prefect", "acme/prefect"),
    ("git@github.com:acme/prefect.git", "acme/prefect"),
    ("ssh://git@github.example.com/acme/prefect.git", "acme/prefect"),
    ("/srv/git/prefect.git", None),
    ("../origin.git", None),
])
def test_repository_of_a_remote(url: str, expected: str | None) -> None:
    assert repository_of(url) == expected


def test_the_configured_repository_wins_then_origin_then_the_workflows() -> None:
    assert choose_repository("acme/fork", "git@github.com:acme/prefect.git", "acme/ci") == "acme/fork"
    assert choose_repository(None, "git@github.com:acme/prefect.git", "acme/ci") == "acme/prefect"
    assert choose_repository(None, "/srv/origin.git", "acme/ci") == "acme/ci"
    assert choose_repository(None, "/srv/origin.git", "") is None


CONFLICT: dict[str, Any] = {"status": "failed", "dry_run": False, "release": {"name": "release"}, "conflict": {
    "commit": {"sha": "1234567890abcdef", "subject": "feat(core): fork default"}, "files": ["src/orbit/_fork.py"],
    "release": "release", "onto": "fedcba0987654321", "backup": "backup-before-sync-20260101-000000",
    "commands": "resolve it by hand:\n    git checkout release\n    git rebase fedcba0987654321"}}


@pytest.mark.parametrize(("report", "outcome"), [
    (CONFLICT, "conflict"),
    ({**CONFLICT, "dry_run": True}, "none"),
    ({"status": "failed", "error": "origin refused the push"}, "none"),
    ({"status": "updated"}, "clean"),
    ({"status": "up-to-date"}, "clean"),
    ({"status": "skipped", "dry_run": True}, "none"),
])
def test_what_a_sync_report_means_for_the_issue(report: dict[str, Any], outcome: str) -> None:
    assert sync_outcome(report) == outcome


def test_the_conflict_issue_names_commit_files_and_commands() -> None:
    title, body = conflict_issue(CONFLICT, "https://github.com/acme/ci/actions/runs/7")
    assert title == "Sync conflict: release on upstream fedcba0987 at 1234567890"
    assert body.startswith(CONFLICT_MARKER)
    assert "`1234567890` feat(core): fork default" in body and "- `src/orbit/_fork.py`" in body
    assert "git rebase fedcba0987654321" in body and "actions/runs/7" in body


def test_a_pull_request_only_for_a_pushed_sync_branch() -> None:
    part = {"branch": "sync/release-20260101", "base": "release", "pushed": True}
    assert pull_wanted({"status": "updated", "protected": part}) == part
    assert pull_wanted({"status": "up-to-date", "protected": {**part, "pushed": False}}) is None
    assert pull_wanted({"status": "updated", "protected": None}) is None
    assert pull_wanted({"status": "skipped", "dry_run": True, "protected": part}) is None


def test_the_release_body_is_the_notes_and_the_image_digests() -> None:
    images = {"images": [{"name": "3.12-base", "digest": "sha256:abc", "tags": ["r/o:1-python3.12"]},
                         {"name": "3.12-conda", "status": "failed", "digest": None, "tags": []}]}
    fields = release_fields("1.0.1", "## Release notes\n\n### orbit 1.0.1\n", images, "c0ffee")
    assert fields["tag_name"] == fields["name"] == "1.0.1" and fields["target_commitish"] == "c0ffee"
    assert "### orbit 1.0.1" in fields["body"] and "| 3.12-base | `sha256:abc` | `r/o:1-python3.12` |" in fields["body"]
    assert "3.12-conda" not in fields["body"], "an image without digest or tags is not listed"
    assert release_changes({"name": "1.0.1", "body": fields["body"]}, fields) == {}
    assert release_changes({"name": "1.0.1", "body": "old"}, fields) == {"body": fields["body"]}


def test_the_shipped_version_is_the_cores_when_this_run_published_it() -> None:
    core = {"name": "orbit", "kind": "core", "version": "1.0.1+orbit.4.g1", "status": "uploaded"}
    aws = {"name": "orbit-aws", "kind": "integration", "version": "0.2.0", "status": "uploaded"}
    assert shipped_version({"packages": [aws, core]}) == "1.0.1+orbit.4.g1"
    assert why_no_release({"packages": [aws, core]}, tag_given=False) is None

    only_aws = {"packages": [aws, {**core, "status": "unchanged"}]}
    assert shipped_version(only_aws) is None
    assert "only orbit-aws" in str(why_no_release(only_aws, tag_given=False)), "never the core's release with other notes"
    assert why_no_release(only_aws, tag_given=True) is None

    nothing = {"packages": [{**aws, "status": "unchanged"}, {**core, "status": "unchanged"}]}
    assert "no package was published" in str(why_no_release(nothing, tag_given=True)), "a re-run keeps the body"


def test_a_long_body_is_cut_at_a_line() -> None:
    text = "".join(f"line {n}\n" for n in range(50_000))
    short = cut(text, 1000)
    assert len(short) <= 1000 and short.endswith("(cut: the full text is in the run's reports)\n")


def test_commit_subjects_cannot_inject_markup() -> None:
    report = {**CONFLICT, "conflict": {**CONFLICT["conflict"], "commit": {"sha": "1234567890", "subject": "<img src=x> *b*"}}}
    _, body = conflict_issue(report, None)
    assert "&lt;img src=x&gt; \\*b\\*" in body and "<img" not in body
