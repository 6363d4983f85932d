"""The rendered workflows' unattended parts: sync-upstream on a schedule reporting to GitHub (conflict issue,
sync pull request when the release branch is protected), and release on a schedule that builds only when
its inputs changed and ends with the GitHub release. Rendered for the demo and acme configs; the linters
run on them in test_workflows.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.core.errors import ConfigError
from tasks.pipeline.settings import load_settings
from tests.test_workflows import acme_repo, demo_repo, rendered

__all__ = ["acme_repo", "demo_repo"]


def workflows(config: Path, in_target: str = "pipeline.toml", state: str = ".forkflow") -> dict[str, Any]:
    return {name: yaml.safe_load(text) for name, text in rendered(config, in_target, state).items()}


def acme(config: Path, extra_fork: str = "", extra_github: str = "") -> dict[str, Any]:
    text = config.read_text(encoding="utf-8")
    text = text.replace('origin = "git@github.com:acme/prefect.git"\n', f'origin = "git@github.com:acme/prefect.git"\n{extra_fork}')
    config.write_text(text + extra_github, encoding="utf-8")
    return workflows(config, "ci/pipeline.toml", "ci/.forkflow")


def step_running(job: dict[str, Any], command: str) -> dict[str, Any]:
    return next(step for step in job["steps"] if command in step.get("run", ""))


def writers(workflow: dict[str, Any], scope: str) -> list[str]:
    return [name for name, job in workflow["jobs"].items() if job.get("permissions", {}).get(scope) == "write"]


def test_sync_runs_on_a_schedule_and_reports_to_github(demo_repo: Path) -> None:
    sync = workflows(demo_repo)["sync-upstream"]

    assert sync[True]["schedule"] == [{"cron": "17 4 * * *"}] and "workflow_dispatch" in sync[True]
    assert sync["jobs"]["sync"]["if"] == "${{ !inputs.dry_run }}", "a scheduled run (no inputs) syncs for real"
    report = sync["jobs"]["report"]
    assert report["needs"] == "sync" and "needs.sync.result == 'failure'" in report["if"], "a conflict fails the sync"
    assert report["permissions"] == {"contents": "read", "issues": "write"}
    assert writers(sync, "issues") == ["report"] and writers(sync, "pull-requests") == []
    step = step_running(report, "doit sync-github")
    assert step["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    uploads = [s for s in sync["jobs"]["sync"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads[0]["with"]["name"] == "sync-report" and uploads[0]["if"] == "${{ always() }}"
    download = next(s for s in report["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"name": "sync-report", "path": ".forkflow/reports"}


def test_protected_fork_gets_pull_request_permission_in_the_report_job_only(acme_repo: Path) -> None:
    sync = acme(acme_repo, "protected = true\n", '\nsync_schedule = "5 */6 * * 1-5"\n')["sync-upstream"]

    assert sync[True]["schedule"] == [{"cron": "5 */6 * * 1-5"}]
    report = sync["jobs"]["report"]
    assert report["permissions"] == {"contents": "read", "issues": "write", "pull-requests": "write"}
    assert writers(sync, "pull-requests") == ["report"]
    assert step_running(report, "doit sync-github")["env"]["FORK_GITHUB_TOKEN"] == "${{ secrets.FORK_SYNC_TOKEN || github.token }}"


def test_an_empty_schedule_leaves_only_the_manual_triggers(acme_repo: Path) -> None:
    rendered_workflows = acme(acme_repo, extra_github='sync_schedule = ""\nrelease_schedule = ""\n')
    assert "schedule" not in rendered_workflows["sync-upstream"][True]
    assert "schedule" not in rendered_workflows["release"][True]


def test_a_bad_cron_is_refused_naming_the_key(acme_repo: Path) -> None:
    acme_repo.write_text(acme_repo.read_text() + 'sync_schedule = "every day"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(acme_repo)
    assert "github.sync_schedule" in str(caught.value)


def test_release_is_gated_on_changed_inputs_and_ends_with_the_github_release(demo_repo: Path) -> None:
    release = workflows(demo_repo)["release"]
    jobs = release["jobs"]

    assert release[True]["schedule"] == [{"cron": "47 5 * * *"}] and release[True]["release"] == {"types": ["published"]}
    assert jobs["changes"]["permissions"] == {"contents": "read", "actions": "read"}
    assert "nox -s release_inputs" in step_running(jobs["changes"], "release_inputs")["run"]
    assert jobs["build"]["needs"] == "changes" and jobs["build"]["if"] == "${{ needs.changes.outputs.build == 'true' }}"
    assert jobs["matrix"]["needs"] == "changes" and "needs.changes.outputs.build == 'true'" in jobs["matrix"]["if"]
    assert "github.event_name == 'schedule'" in jobs["publish"]["if"]
    assert step_running(jobs["publish"], "nox -s publish")["run"] == "nox -s publish -- notes"
    kept = next(s for s in jobs["publish"]["steps"] if s.get("with", {}).get("name") == "publish-report")
    assert ".forkflow/reports/notes.md" in kept["with"]["path"]

    github = jobs["github-release"]
    assert github["needs"] == ["publish", "images", "summary"]
    assert github["permissions"] == {"contents": "write"} and writers(release, "contents") == ["github-release"]
    step = step_running(github, "nox -s release_github")
    assert step["env"]["FORKFLOW_RELEASE_TAG"] == "${{ github.event.release.tag_name }}"
    assert "github.repository" in step["env"]["FORKFLOW_RELEASE_REPOSITORY"], "a published release is updated where it is"
    downloads = {s["with"]["name"]: s["with"]["path"] for s in github["steps"] if "download-artifact" in s.get("uses", "")}
    assert downloads == {"publish-report": ".forkflow/reports", "images": ".forkflow/reports"}

    remember = jobs["remember"]
    assert remember["permissions"] == {} and "needs.build.result == 'success'" in remember["if"]
    assert [s["with"]["name"] for s in remember["steps"] if "upload-artifact" in s.get("uses", "")] == ["release-inputs"]
    assert jobs["summary"]["if"] == "${{ always() && needs.build.result != 'skipped' }}", \
        "a skipped run uploads no images artifact for deploy to take"


def test_acme_release_without_images_or_index_has_no_release_job(tmp_path: Path, acme_repo: Path) -> None:
    text = acme_repo.read_text().replace('[index]\nurl = "https://pypi.acme.internal"\n', "")
    acme_repo.write_text(text, encoding="utf-8")
    jobs = workflows(acme_repo, "ci/pipeline.toml", "ci/.forkflow")["release"]["jobs"]
    assert "github-release" not in jobs and "publish" not in jobs
    assert jobs["remember"]["needs"] == ["changes", "build", "images"]


def decide(demo_repo: Path, tmp_path: Path, event: str, fingerprint: str, last: str) -> tuple[str, str, bool]:
    """Run the changes job's decision step as the runner would; (its output, its summary, fingerprint file kept)."""
    step = next(s for s in workflows(demo_repo)["release"]["jobs"]["changes"]["steps"] if s.get("id") == "decide")
    work = tmp_path / f"run-{event}-{last or 'none'}"
    work.mkdir()
    output, summary = work / "output", work / "summary"
    env = {**os.environ, "EVENT": event, "FINGERPRINT": fingerprint, "LAST": last,
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, env=env, check=True)
    return output.read_text(), summary.read_text() if summary.exists() else "", (work / "release-inputs.txt").exists()


def test_a_scheduled_run_builds_only_when_the_fingerprint_changed(demo_repo: Path, tmp_path: Path) -> None:
    same = decide(demo_repo, tmp_path, "schedule", "abc", "abc")
    assert same[0] == "build=false\n" and "nothing to build, push or release" in same[1] and same[2]
    assert decide(demo_repo, tmp_path, "schedule", "abc", "old")[0] == "build=true\n"
    assert decide(demo_repo, tmp_path, "schedule", "abc", "")[0] == "build=true\n", "no earlier run: build"
    assert decide(demo_repo, tmp_path, "release", "abc", "abc")[0] == "build=true\n", "a published release always builds"
