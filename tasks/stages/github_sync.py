"""Stage `sync-github`: tell GitHub what the last sync found, from `.forkflow/reports/sync.json`.

    conflict   one open issue (label `[github] conflict_label`, a marker in its body) naming the
               conflicting commit, files and the commands to finish by hand: opened, or the open one updated
    clean      a later sync succeeded: the open conflict issue gets a comment and is closed
    protected  `[fork] protected = true` and the sync pushed `sync/<release>-<date>`: one pull request from
               it into the release branch, opened or updated

Issues go to `$GITHUB_REPOSITORY` (the repository whose workflow runs the sync) with `GITHUB_TOKEN`; the
pull request to the fork's repository (`[github] repository`, else origin's URL) with `FORK_GITHUB_TOKEN`,
else `GITHUB_TOKEN`. `--dry-run` prints what it would do and calls nothing. Writes
`.forkflow/reports/sync-github.json`.
"""

from __future__ import annotations

import os
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.github import GitHub, GitHubError, token_from
from tasks.core.github_text import (
    CONFLICT_MARKER,
    conflict_issue,
    pull_wanted,
    resolved_comment,
    run_url,
    sync_outcome,
    sync_pull_request,
)
from tasks.core.workflows import github_section
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run
from tasks.pipeline.github import fork_repository
from tasks.pipeline.settings import Settings, read_report, settings, write_report

STAGE = "sync-github"
DOC = ("report the last sync on GitHub: open, update or close the conflict issue; with [fork] protected, "
       "open or update the sync pull request (--dry-run)")


def task_sync_github() -> dict[str, Any]:
    """Report the last sync on GitHub (run after `doit sync`, in the sync-upstream workflow)."""
    return {
        "basename": STAGE,
        "doc": DOC,
        "actions": [guarded(sync_github_action)],
        "params": [dry_run_param()],
        "uptodate": [False],
        "verbosity": 2,
    }


def sync_github_action(dry_run: bool = False) -> dict[str, str]:
    current = settings()
    dry = is_dry_run(dry_run)
    report = read_report("sync", current)
    if report is None:
        raise GitHubError("no sync report to act on", where=str(current.reports_dir / "sync.json"),
                          fix="run `doit sync` first (in a workflow: hand its sync.json to this job)")
    done = {"issue": issue_step(current, report, dry), "pull_request": pull_step(current, report, dry)}
    write_report(STAGE, {"dry_run": dry, "sync_status": report.get("status"), **done}, current)
    made = ", ".join(f"{key}: {value['action']}" for key, value in done.items())
    return {"made": ("dry run: " if dry else "") + made}


def issue_repository() -> str:
    repository = os.environ.get("GITHUB_REPOSITORY", "").strip()
    if not repository:
        raise GitHubError("no repository for the conflict issue: GITHUB_REPOSITORY is not set", where="the environment",
                          fix="run it in GitHub Actions (which sets it), or set GITHUB_REPOSITORY=owner/name")
    return repository


def issue_step(current: Settings, report: dict[str, Any], dry: bool) -> dict[str, Any]:
    outcome = sync_outcome(report)
    if outcome == "none":
        return {"action": "none", "reason": f"sync status {report.get('status')}" + (" (dry run)" if report.get("dry_run") else "")}
    label = github_section(current.config).conflict_label
    repository = issue_repository()
    if dry:
        say(f"would look for the open issue labelled {label} in {repository} and "
            + ("open or update it" if outcome == "conflict" else "close it"))
        return {"action": "would " + ("open-or-update" if outcome == "conflict" else "close"), "repository": repository}
    with GitHub(repository, token_from("GITHUB_TOKEN")) as api:
        found = marked_issues(api, label)
        if outcome == "conflict":
            return conflict_opened(api, report, found, label)
        return conflicts_closed(api, report, found)


def marked_issues(api: GitHub, label: str) -> list[dict[str, Any]]:
    """The open conflict issues: by label, else by the marker alone (GitHub drops the labels of an issue
    opened by a token that may not set them)."""
    labelled = [item for item in api.open_issues(label) if CONFLICT_MARKER in (item.get("body") or "")]
    return labelled or [item for item in api.open_issues() if CONFLICT_MARKER in (item.get("body") or "")]


def conflict_opened(api: GitHub, report: dict[str, Any], found: list[dict[str, Any]], label: str) -> dict[str, Any]:
    title, body = conflict_issue(report, run_url(dict(os.environ)))
    if found:
        number = int(found[0]["number"])
        api.update_issue(number, title=title, body=body)
        say(f"updated conflict issue #{number} in {api.repository}")
        return {"action": "updated", "number": number, "repository": api.repository}
    created = api.create_issue(title, body, [label])
    say(f"opened conflict issue #{created['number']} in {api.repository}")
    return {"action": "opened", "number": created["number"], "repository": api.repository}


def conflicts_closed(api: GitHub, report: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
    if not found:
        return {"action": "none", "reason": "no open conflict issue"}
    comment = resolved_comment(report, run_url(dict(os.environ)))
    for item in found:
        api.comment(int(item["number"]), comment)
        api.update_issue(int(item["number"]), state="closed", state_reason="completed")
        say(f"closed conflict issue #{item['number']} in {api.repository}")
    return {"action": "closed", "numbers": [item["number"] for item in found], "repository": api.repository}


def pull_step(current: Settings, report: dict[str, Any], dry: bool) -> dict[str, Any]:
    part = pull_wanted(report)
    if part is None:
        return {"action": "none", "reason": "no sync branch was pushed"}
    repository = fork_repository(current)
    if dry:
        say(f"would open or update the pull request {part['branch']} -> {part['base']} in {repository}")
        return {"action": "would open-or-update", "repository": repository, "branch": part["branch"]}
    title, body = sync_pull_request(report, run_url(dict(os.environ)))
    with GitHub(repository, token_from("FORK_GITHUB_TOKEN", "GITHUB_TOKEN")) as api:
        found = api.open_pulls(part["branch"], part["base"])
        if found:
            number = int(found[0]["number"])
            api.update_pull(number, title, body)
            say(f"updated pull request #{number} ({part['branch']} -> {part['base']}) in {repository}")
            return {"action": "updated", "number": number, "repository": repository, "branch": part["branch"]}
        created = api.create_pull(title, body, part["branch"], part["base"])
    say(f"opened pull request #{created['number']} ({part['branch']} -> {part['base']}) in {repository}")
    return {"action": "opened", "number": created["number"], "repository": repository, "branch": part["branch"]}
