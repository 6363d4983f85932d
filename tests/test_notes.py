"""notes on the demo fork: publish, commit a fork fix, publish again; the notes name the previous version,
the new fork commit and what upstream brought. Unchanged packages are listed as `unchanged` (in notes.json
and on one line of notes.md), not left out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import demo_config_text
from tests.helpers import run_doit


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def checkout(config: Path) -> Path:
    return state(config) / "demo" / "fork"


def report(config: Path, stage: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((state(config) / "reports" / f"{stage}.json").read_text())
    return loaded


@pytest.fixture
def index(built_demo: Path) -> Iterator[Path]:
    """The demo's local pypiserver, started empty."""
    packages = state(built_demo) / "services" / "index" / "packages"
    run_doit(built_demo, "services-stop:index")
    shutil.rmtree(packages, ignore_errors=True)
    started = run_doit(built_demo, "services:index")
    assert started.returncode == 0, started.stdout + started.stderr
    yield built_demo
    run_doit(built_demo, "services-stop:index")


def by_name(config: Path) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report(config, "notes")["packages"]}


def test_notes_name_the_previous_version_and_the_new_fork_commit(index: Path) -> None:
    notes_md = state(index) / "reports" / "notes.md"
    for name in ("notes.json", "notes.md", "publish.json"):
        (state(index) / "reports" / name).unlink(missing_ok=True)
    dry = run_doit(index, "publish", "notes", "--dry-run")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "notes: dry run" in dry.stdout and "orbit 1.0.1+orbit.4.gdcb966f (first release)" in dry.stdout
    assert not notes_md.exists(), "a dry run writes no notes"

    first = run_doit(index, "publish", "notes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    notes = by_name(index)
    assert {p["status"] for p in notes.values()} == {"uploaded"}, "the first publish releases every package"
    assert notes["orbit"]["previous"] is None
    assert [c["subject"] for c in notes["orbit"]["upstream"]] == ["feat(core): add a farewell helper"]
    assert [c["subject"] for c in notes["orbit-aws"]["fork"]] == ["fix(aws): use the internal S3 endpoint"]
    again = run_doit(index, "notes")
    assert again.returncode == 0 and "-- notes" in again.stdout, "publish.json and HEAD unchanged: up to date"

    fork = checkout(index)
    head = git(fork, "rev-parse", "HEAD")
    source = fork / "src" / "orbit" / "greeting.py"
    try:
        source.write_text(source.read_text() + "\n\ndef fork_fix() -> str:\n    return \"fixed\"\n")
        git(fork, "commit", "-q", "-am", "fix(core): the fork's greeting fix")
        fix = git(fork, "rev-parse", "HEAD")
        second = run_doit(index, "publish", "notes")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        check_second_notes(index, fix, notes_md.read_text())
        assert "notes" in second.stdout and "2 released, 4 unchanged, 1 new fork commits" in second.stdout
        summary = (state(index) / "reports" / "summary.md").read_text()
        assert f"orbit 1.0.1+orbit.7.g{fix[:7]} (since 1.0.1+orbit.4.gdcb966f)" in summary
    finally:
        git(fork, "reset", "-q", "--hard", head)


def check_second_notes(config: Path, fix: str, markdown: str) -> None:
    notes = by_name(config)
    orbit = notes["orbit"]
    assert orbit["status"] == "uploaded" and orbit["version"] == f"1.0.1+orbit.7.g{fix[:7]}"
    assert orbit["previous"] == "1.0.1+orbit.4.gdcb966f"
    assert orbit["previous_commit"].startswith("dcb966f") and orbit["missing"] is None
    assert [(c["sha"], c["new"], c["absorbed"]) for c in orbit["fork"]][0] == (fix, True, False)
    assert [c["new"] for c in orbit["fork"][1:]] == [False], "the fork's older commit was in the previous version"
    assert orbit["upstream"] == [] and orbit["upstream_from"] == orbit["upstream_to"] == "1.0.1"
    assert notes["orbit-client"]["status"] == "uploaded", "the client carries the core's version"
    assert {name for name, p in notes.items() if p["status"] == "unchanged"} == {
        "orbit-aws", "orbit-gcp", "orbit-slack", "orbit-flows"}
    assert notes["orbit-slack"]["fork"] == [] and notes["orbit-slack"]["previous"] is None
    assert f"### orbit 1.0.1+orbit.7.g{fix[:7]}" in markdown
    assert "Previous published version: 1.0.1+orbit.4.gdcb966f (commit `dcb966f`)." in markdown
    assert f"- `{fix[:7]}` fix(core): the fork's greeting fix (**new**)" in markdown
    assert re.search(r"Unchanged \(already on the index\): .*orbit-slack 0\.1\.0", markdown)
    assert "### orbit-slack" not in markdown


def test_notes_without_an_index_section_say_so(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(re.sub(r"\[index\]\nurl = .*\n", "", demo_config_text()), encoding="utf-8")
    result = run_doit(config, "notes")
    assert result.returncode == 0, result.stderr
    assert "notes: skipped: the config has no [index] section" in result.stdout
    assert not (state(config) / "reports" / "notes.json").exists()


@pytest.fixture
def cloned_demo(demo_cache: Path, tmp_path: Path) -> Path:
    """The demo's config with its fork cloned (no doit run): origin's release, upstream as a remote."""
    config = tmp_path / "pipeline.toml"
    config.write_text(demo_config_text(), encoding="utf-8")
    shutil.copytree(demo_cache, state(config) / "demo", symlinks=True)
    demo = state(config) / "demo"
    git(demo, "clone", "-q", "--origin", "origin", "--branch", "release", str(demo / "origin.git"), "fork")
    git(demo / "fork", "remote", "add", "upstream", str(demo / "upstream.git"))
    return config


def test_a_rewritten_previous_commit_and_an_absorbed_fork_commit(cloned_demo: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous version's commit is gone (a rebase, no backup): said in the notes, upstream listed since
    its tag. A fork commit upstream has since taken (cherry-picked) is marked absorbed."""
    from tasks.adapters import index as index_adapter
    from tasks.pipeline.settings import load_settings
    from tasks.stages.notes import notes_report

    fork = checkout(cloned_demo)
    fork_default = git(fork, "log", "-1", "--format=%H", "--", "src/orbit/_fork.py")
    git(fork, "checkout", "-q", "--detach", "origin/main")
    git(fork, "cherry-pick", fork_default)
    git(fork, "update-ref", "refs/remotes/upstream/main", "HEAD")
    git(fork, "checkout", "-q", "release")
    on_index = {"orbit": ["orbit-1.0.1+orbit.3.gdeadbee-py3-none-any.whl"], "orbit-aws": []}
    monkeypatch.setattr(index_adapter, "remote_files", lambda url, name: on_index.get(name, []))
    versions = {"head": git(fork, "rev-parse", "HEAD"), "packages": [
        {"name": "orbit", "kind": "core", "version": "1.0.1+orbit.4.gdcb966f", "tag": "1.0.1"},
        {"name": "orbit-aws", "kind": "integration", "version": "0.2.0+orbit.4.gf08382c", "tag": "orbit-aws-0.2.0"},
        {"name": "orbit-slack", "kind": "integration", "version": "0.1.0", "tag": "orbit-slack-0.1.0"}]}
    statuses = {"orbit": "uploaded", "orbit-aws": "uploaded", "orbit-slack": "unchanged"}

    found = notes_report(load_settings(cloned_demo), versions, statuses)
    notes = {p["name"]: p for p in found["packages"]}
    assert found["upstream"]["ref"] == "upstream/main"
    orbit = notes["orbit"]
    assert orbit["previous"] == "1.0.1+orbit.3.gdeadbee" and orbit["previous_commit"] is None
    assert "deadbee is not in the clone" in orbit["missing"] and "since its tag 1.0.1" in orbit["missing"]
    assert orbit["upstream_from"] == "1.0.1"
    assert [(c["sha"], c["absorbed"], c["new"]) for c in orbit["fork"]] == [(fork_default, True, None)]
    assert notes["orbit-aws"]["previous"] is None and [c["new"] for c in notes["orbit-aws"]["fork"]] == [True]
    assert notes["orbit-slack"]["status"] == "unchanged" and notes["orbit-slack"]["fork"] == []
    assert "Note: the commit of 1.0.1+orbit.3.gdeadbee is unknown" in found["markdown"]
    assert "(absorbed upstream)" in found["markdown"]
