"""`doit release-github` against a local fake of the GitHub API: the release of the shipped version is
created from notes.md and image.json, then updated (never duplicated) when the notes change; and
`doit release-inputs`, the fingerprint that gates a scheduled release build."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_github import FakeGitHub, fake_github
from tests.helpers import run_doit
from tests.test_notes import index, report, state
from tests.test_sync import Fork, add_commit, fork, identity

__all__ = ["fork", "identity", "index"]  # fixtures: the demo repositories, a git identity, the demo's index

TOKEN = "ghs_release_token_not_for_printing"
VERSION = "1.0.1+orbit.10.gcf0338b"
HEAD = "cf0338b5c264dd15d1ed27fac56fb025e043e217"
NOTES_MD = f"""## Release notes

Release branch at `cf0338b`, compared with upstream `upstream/main` at `b2b0e83`.

### orbit {VERSION}

Previous published version: 1.0.1+orbit.7.g618f044 (commit `618f044`).

**Carried by the fork**: 2 commits on top of upstream (1 new, 0 absorbed upstream)

- `cf0338b` fix(core): week 2 fork fix (**new**)
- `618f044` feat(core): fork-wide default greeting name
"""
IMAGES = {"images": [
    {"name": "3.11-base", "python": "3.11", "flavor": "base", "status": "built",
     "digest": "sha256:e65ce0457bc229ab607c090ae3cc764695af8e6f51ad7c6ece8e2ba690a82e9d",
     "tags": [f"127.0.0.1:5001/orbit:{VERSION.replace('+', '-')}-python3.11", "127.0.0.1:5001/orbit:1-python3.11"]},
]}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as fake:
        yield fake


def write_reports(config: Path, notes_md: str = NOTES_MD) -> Path:
    """The reports a release run leaves (notes after publish, the images), shaped as the demo's."""
    reports = config.parent / ".forkflow" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    notes = {"head": HEAD, "release_head": HEAD, "packages": [
        {"name": "orbit", "kind": "core", "version": VERSION, "status": "uploaded"},
        {"name": "orbit-aws", "kind": "integration", "version": "0.2.0+orbit.7.gf6e646f", "status": "unchanged"}]}
    (reports / "notes.json").write_text(json.dumps(notes))
    (reports / "notes.md").write_text(notes_md)
    (reports / "image.json").write_text(json.dumps(IMAGES))
    return reports


def release_github(config: Path, github: FakeGitHub, *args: str) -> dict[str, Any]:
    env = {"GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "acme/orbit", "FORKFLOW_DRY_RUN": ""}
    result = run_doit(config, "release-github", *args, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert TOKEN not in output
    loaded: dict[str, Any] = json.loads((config.parent / ".forkflow" / "reports" / "release-github.json").read_text())
    return loaded


def test_the_release_is_created_from_the_notes_then_updated_not_duplicated(fork: Fork, github: FakeGitHub) -> None:
    write_reports(fork.config)

    first = release_github(fork.config, github)

    assert (first["action"], first["tag"], first["repository"]) == ("created", VERSION, "acme/orbit")
    (release,) = github.releases.values()
    assert release["tag_name"] == release["name"] == VERSION and release["target_commitish"] == HEAD
    assert "- `cf0338b` fix(core): week 2 fork fix (**new**)" in release["body"], "the notes"
    assert "| 3.11-base | `sha256:e65ce0457bc2" in release["body"], "the image digests"
    assert {r.authorization for r in github.requests} == {f"Bearer {TOKEN}"}

    assert release_github(fork.config, github)["action"] == "unchanged"
    write_reports(fork.config, NOTES_MD + "\n- `aaaaaaa` fix(core): one more (**new**)\n")
    third = release_github(fork.config, github)

    assert third["action"] == "updated" and len(github.releases) == 1
    assert "one more" in github.releases[release["id"]]["body"]
    assert github.writes().count(("POST", "/repos/acme/orbit/releases")) == 1
    assert ("PATCH", f"/repos/acme/orbit/releases/{release['id']}") in github.writes()


def test_the_tag_of_a_published_release_wins_and_missing_notes_are_explained(fork: Fork, github: FakeGitHub) -> None:
    result = run_doit(fork.config, "release-github", env={"GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN})
    assert result.returncode != 0 and "no notes.json" in result.stdout + result.stderr
    assert "doit publish notes" in result.stdout + result.stderr
    assert github.requests == [], "nothing is called before the input is there"

    write_reports(fork.config)
    assert release_github(fork.config, github, "--tag", "v1.0.1-fork")["tag"] == "v1.0.1-fork"
    assert [r["tag_name"] for r in github.releases.values()] == ["v1.0.1-fork"]


def test_a_run_that_published_nothing_leaves_the_release_alone(fork: Fork, github: FakeGitHub) -> None:
    reports = write_reports(fork.config)
    notes = json.loads((reports / "notes.json").read_text())
    for package in notes["packages"]:
        package["status"] = "unchanged"
    (reports / "notes.json").write_text(json.dumps(notes))

    result = release_github(fork.config, github, "--tag", VERSION)

    assert result["action"] == "skipped" and "no package was published" in result["reason"]
    assert github.requests == [], "not even a look: the release's notes stay as the run that shipped wrote them"


def test_a_published_release_of_the_workflows_repository_is_the_one_updated(fork: Fork, github: FakeGitHub) -> None:
    write_reports(fork.config)
    env = {"GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "acme/ci",
           "FORKFLOW_RELEASE_TAG": "v1.0.1", "FORKFLOW_RELEASE_REPOSITORY": "acme/ci"}
    config = fork.config
    config.write_text(config.read_text() + '\n[github]\nrepository = "acme/prefect"\n')
    result = run_doit(config, "release-github", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert [(r["repo"], r["tag_name"]) for r in github.releases.values()] == [("acme/ci", "v1.0.1")]


def test_release_inputs_change_only_when_the_release_branch_does(fork: Fork) -> None:
    def fingerprint() -> str:
        result = run_doit(fork.config, "release-inputs")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        found: str = json.loads((fork.config.parent / ".forkflow" / "reports" / "release-inputs.json").read_text())["fingerprint"]
        assert f"fingerprint={found}" in result.stdout
        return found

    first = fingerprint()
    assert fingerprint() == first, "nothing changed: the same fingerprint"
    add_commit(fork.origin, "release", {"FIX.md": "a fork fix\n"}, "fix: a fork fix")
    assert fingerprint() != first


@pytest.mark.services
def test_a_release_from_the_demos_notes(index: Path, github: FakeGitHub) -> None:
    """The demo published for real (`doit publish notes`), then its release created and updated."""
    for name in ("notes.json", "notes.md", "publish.json"):
        (state(index) / "reports" / name).unlink(missing_ok=True)
    published = run_doit(index, "publish", "notes")
    assert published.returncode == 0, published.stdout[-3000:] + published.stderr[-3000:]
    notes = report(index, "notes")
    core = next(p for p in notes["packages"] if p["kind"] == "core")

    first = release_github(index, github)

    assert first["action"] == "created" and first["tag"] == core["version"]
    (release,) = github.releases.values()
    assert release["target_commitish"] == notes["release_head"]
    assert f"### {core['name']} {core['version']}" in release["body"]
    notes_md = state(index) / "reports" / "notes.md"
    kept = notes_md.read_text()
    try:
        notes_md.write_text(kept + "\nA line added by hand.\n")
        assert release_github(index, github)["action"] == "updated"
    finally:
        notes_md.write_text(kept)
    assert len(github.releases) == 1
