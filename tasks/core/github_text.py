"""What forkflow says on GitHub, decided from its reports: the sync conflict issue, the protected sync's pull
request, and a release's title and body. Pure: no I/O, no API calls (those are tasks.adapters.github).
"""

from __future__ import annotations

import re
from typing import Any

from tasks.core.text import markdown_escape as escape

CONFLICT_MARKER = "<!-- forkflow:sync-conflict -->"
PULL_MARKER = "<!-- forkflow:sync-pull-request -->"
RELEASE_MARKER = "<!-- forkflow:release -->"
BODY_LIMIT = 120_000  # GitHub refuses issue, pull request and release bodies over 65,536 / 125,000 characters
ISSUE_LIMIT = 60_000
REMOTE = re.compile(r"^(?:https?://(?:[^@/]+@)?[^/]+/|ssh://(?:[^@/]+@)?[^/]+/|[^@/:]+@[^:/]+:)"
                    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def repository_of(url: str) -> str | None:
    """`owner/name` of a GitHub-style remote URL (https, ssh, scp-like); None for a local path."""
    found = REMOTE.match(url.strip())
    return f"{found['owner']}/{found['name']}" if found else None


def sync_outcome(report: dict[str, Any]) -> str:
    """What the last sync means for the conflict issue: `conflict`, `clean` (close it) or `none`."""
    if report.get("dry_run"):
        return "none"
    if report.get("status") == "failed":
        return "conflict" if report.get("conflict") else "none"
    return "clean" if report.get("status") in ("updated", "up-to-date") else "none"


def pull_wanted(report: dict[str, Any]) -> dict[str, Any] | None:
    """The protected sync's branch when this run pushed it (a pull request to open or update); else None."""
    part = report.get("protected") or {}
    if report.get("dry_run") or report.get("status") == "failed" or not part.get("pushed"):
        return None
    return dict(part)


def short(sha: str | None) -> str:
    return (sha or "?")[:10]


def conflict_issue(report: dict[str, Any], run_url: str | None) -> tuple[str, str]:
    """Title and body of the issue a sync conflict opens (or updates)."""
    conflict = report["conflict"]
    release = conflict.get("release") or (report.get("release") or {}).get("name") or "release"
    commit = conflict.get("commit") or {}
    stopped = f"`{short(commit.get('sha'))}` {escape(commit.get('subject', ''))}".strip() if commit else "(unknown commit)"
    files = "\n".join(f"- `{name}`" for name in conflict.get("files") or []) or "- (git did not name the files)"
    lines = [
        CONFLICT_MARKER,
        f"The sync could not rebase `{release}` onto upstream: the rebase stopped at a conflict, was "
        f"aborted, and nothing was pushed (`{release}` on origin is unchanged).",
        "",
        f"- **Conflicting commit:** {stopped}",
        f"- **Onto:** `{short(conflict.get('onto'))}` (upstream's main)",
        "",
        "**Conflicting files:**",
        "",
        files,
        "",
        "**To resolve it by hand**, in a clone of the fork with upstream as the remote `upstream` "
        "(`git fetch upstream && git fetch origin` first; the folder below is the runner's):",
        "",
        "```",
        str(conflict.get("commands") or "").strip(),
        "```",
        "",
        "This issue is updated by every sync that stops at a conflict and closed by the next one that succeeds.",
    ]
    if run_url:
        lines.append(f"Last seen in {run_url}.")
    title = f"Sync conflict: {release} on upstream {short(conflict.get('onto'))} at {short(commit.get('sha'))}"
    return title, cut("\n".join(lines) + "\n", ISSUE_LIMIT)


def resolved_comment(report: dict[str, Any], run_url: str | None) -> str:
    release = report.get("release") or {}
    where = f" in {run_url}" if run_url else ""
    return (f"A later sync succeeded{where} (`{release.get('name', 'release')}` at `{short(release.get('new'))}`, "
            f"status {report.get('status')}): closing.")


def sync_pull_request(report: dict[str, Any], run_url: str | None) -> tuple[str, str]:
    """Title and body of the pull request from the protected sync's branch into the release branch."""
    part = report["protected"]
    main = report.get("main") or {}
    release = report.get("release") or {}
    upstream = main.get("upstream_commits") or []
    rebased = release.get("rebased") or []
    lines = [
        PULL_MARKER,
        f"`{part['branch']}` holds `{part['base']}` synced with upstream "
        f"(`{short((report.get('upstream') or {}).get('sha'))}`): {release.get('action', 'rebase')}.",
        "",
        f"**New from upstream in this sync:** {len(upstream)} commit(s) on `{main.get('name', 'main')}`",
        *[f"- `{short(c.get('sha'))}` {escape(c.get('subject', ''))}" for c in upstream[:50]],
        *(["- ..."] if len(upstream) > 50 else []),
        "",
        f"**The fork's commits, rebased:** {len(rebased)}",
        *[f"- `{short(r.get('old'))}` -> `{short(r.get('new'))}` {escape(r.get('subject', ''))}" for r in rebased[:50]],
        "",
        f"The fork's own commits were rebased, so `{part['base']}` and this branch have different copies of "
        f"them: land it by fast-forwarding `{part['base']}` (`git push origin {part['branch']}:{part['base']}`, by "
        "someone the protection lets bypass it); a merge commit would keep the old copies too. "
        "The next sync updates this pull request (it moves this branch with a lease) until it is landed.",
    ]
    if run_url:
        lines.append(f"Pushed by {run_url}.")
    title = f"Sync {part['base']} with upstream {short((report.get('upstream') or {}).get('sha'))}"
    return title, cut("\n".join(lines) + "\n", BODY_LIMIT)


def shipped_version(notes: dict[str, Any]) -> str | None:
    """The core's version when this run published it (notes.json: status `uploaded`), else None."""
    for package in notes.get("packages") or []:
        if package.get("kind") == "core" and package.get("status") == "uploaded" and package.get("version"):
            return str(package["version"])
    return None


def why_no_release(notes: dict[str, Any], tag_given: bool) -> str | None:
    """Why this run makes or changes no GitHub release (None: it does). A release's body is never replaced by
    notes of a run that published nothing, nor by an integration-only run's notes under the core's tag."""
    uploaded = [p.get("name") for p in notes.get("packages") or [] if p.get("status") == "uploaded"]
    if not uploaded:
        return "no package was published in this run: releases are left as they are"
    if not tag_given and shipped_version(notes) is None:
        return (f"the core was not published in this run (only {', '.join(map(str, uploaded))}): no release is made; "
                "pass --tag to make one")
    return None


def release_tag(version: str, core_tag: str) -> str:
    return core_tag.replace("{version}", version)


def images_section(images: dict[str, Any]) -> list[str]:
    """The release body's table of images: name, digest, tags."""
    rows = [item for item in images.get("images") or [] if item.get("digest") or item.get("tags")]
    if not rows:
        return []
    lines = ["", "## Images", "", "| image | digest | tags |", "|---|---|---|"]
    for item in rows:
        name = item.get("name") or f"{item.get('python')}-{item.get('flavor')}"
        tags = ", ".join(f"`{tag}`" for tag in item.get("tags") or [])
        lines.append(f"| {name} | `{item.get('digest') or '-'}` | {tags} |")
    return lines


def release_fields(tag: str, notes_md: str, images: dict[str, Any], commit: str | None) -> dict[str, Any]:
    """The release's fields: its tag, name, body (the notes, then the images) and the commit it tags."""
    body = "\n".join([RELEASE_MARKER, notes_md.rstrip("\n"), *images_section(images)]) + "\n"
    fields: dict[str, Any] = {"tag_name": tag, "name": tag, "body": cut(body, BODY_LIMIT)}
    if commit:
        fields["target_commitish"] = commit
    return fields


def release_changes(existing: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """What an update must change on an existing release (name and body; never its tag or commit)."""
    return {key: wanted[key] for key in ("name", "body") if existing.get(key) != wanted[key]}


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 60].rsplit("\n", 1)[0] + "\n\n(cut: the full text is in the run's reports)\n"


def choose_repository(configured: str | None, origin: str | None, running: str | None) -> str | None:
    """The fork's repository on GitHub: `[github] repository`, else origin's URL, else the workflow's repository."""
    return configured or (repository_of(origin) if origin else None) or running or None


def run_url(environ: dict[str, str]) -> str | None:
    """The Actions run this is part of (from GitHub's own variables), for the text it writes."""
    parts = [environ.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None
