"""Stages `release-github` and `release-inputs`: the GitHub release of what a release run shipped, and the
fingerprint that lets a scheduled release build run only when its inputs changed.

`doit release-github` creates the GitHub release of the version the run shipped (the core's version from
notes.json, tagged with `[versions] core_tag`, or `--tag` / `$FORKFLOW_RELEASE_TAG`), or updates its
title and body when it exists: the body is notes.md (what upstream brought, what the fork carries, per
package) and a table of the image digests and tags from image.json. The fork's repository is `[github]
repository`, else origin's URL, else `$GITHUB_REPOSITORY`; the token `FORK_GITHUB_TOKEN`, else
`GITHUB_TOKEN`. Writes `.forkflow/reports/release-github.json`.

`doit release-inputs` writes `.forkflow/reports/release-inputs.json`: a fingerprint of what a release
build is made from (origin's release branch tip, the config file, forkflow's own code and templates).
The release workflow's first job compares it with the one the last successful scheduled build saved.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.git import Git
from tasks.adapters.github import GitHub, GitHubError, token_from
from tasks.core.errors import CommandError, ConfigError
from tasks.core.github_text import release_changes, release_fields, release_tag, shipped_version, why_no_release
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run
from tasks.pipeline.github import fork_repository
from tasks.pipeline.settings import REPO_ROOT, Settings, read_report, settings, write_report

STAGE = "release-github"
INPUTS = "release-inputs"
TAG_ENV = "FORKFLOW_RELEASE_TAG"
REPOSITORY_ENV = "FORKFLOW_RELEASE_REPOSITORY"  # the repository of a published release the workflow runs for
DOC = ("create or update the GitHub release of the version a release run shipped, from notes.md and "
       "image.json (--tag, --dry-run)")
INPUTS_DOC = "fingerprint what a release build is made from (origin's release tip, config, forkflow) for a scheduled build"
OWN_SOURCES = ("tasks", "templates", "pyproject.toml", "noxfile.py", "dodo.py")

TAG_PARAM = {
    "name": "tag",
    "long": "tag",
    "type": str,
    "default": "",
    "help": f"the release's tag (default: ${TAG_ENV}, else the core version's tag)",
}


def task_release_github() -> dict[str, Any]:
    """Create or update the GitHub release of the shipped version."""
    return {"basename": STAGE, "doc": DOC, "actions": [guarded(release_github_action)],
            "params": [dry_run_param(), TAG_PARAM], "uptodate": [False], "verbosity": 2}


def task_release_inputs() -> dict[str, Any]:
    """Fingerprint a release build's inputs."""
    return {"basename": INPUTS, "doc": INPUTS_DOC, "actions": [guarded(release_inputs_action)],
            "uptodate": [False], "verbosity": 2}


def needed_report(current: Settings, name: str) -> dict[str, Any]:
    found = read_report(name, current)
    if found is None:
        raise GitHubError(f"no {name}.json to make the release from", where=str(current.reports_dir / f"{name}.json"),
                          fix="run `doit publish notes` first (in the release workflow: hand its reports to this job)")
    return found


def release_github_action(dry_run: bool = False, tag: str = "") -> dict[str, str]:
    current = settings()
    dry = is_dry_run(dry_run)
    notes = needed_report(current, "notes")
    notes_md = current.reports_dir / "notes.md"
    if not notes_md.is_file():
        raise GitHubError("no notes.md for the release body", where=str(notes_md), fix="run `doit publish notes` first")
    given = tag or os.environ.get(TAG_ENV, "").strip()
    skipped = why_no_release(notes, bool(given))
    if skipped:
        say(f"release-github: {skipped}")
        write_report(STAGE, {"dry_run": dry, "tag": given or None, "action": "skipped", "reason": skipped}, current)
        return {"made": "skipped: " + skipped}
    name = given or chosen_tag(current, notes)
    fields = release_fields(name, notes_md.read_text(encoding="utf-8"), read_report("image", current) or {},
                            notes.get("release_head"))
    repository = os.environ.get(REPOSITORY_ENV, "").strip() or fork_repository(current)
    if dry:
        say(f"would create or update release {name} in {repository} ({len(fields['body'])} characters of notes)")
        result: dict[str, Any] = {"action": "would create-or-update"}
    else:
        with GitHub(repository, token_from("FORK_GITHUB_TOKEN", "GITHUB_TOKEN")) as api:
            result = create_or_update(api, fields)
    write_report(STAGE, {"dry_run": dry, "tag": name, "repository": repository, **result}, current)
    return {"made": f"release {name}: {result['action']}"}


def chosen_tag(current: Settings, notes: dict[str, Any]) -> str:
    version = shipped_version(notes)
    if version is None:
        raise ConfigError("no published core version in notes.json to name the release",
                          where=str(current.reports_dir / "notes.json"), fix=f"pass --tag <tag> (or set {TAG_ENV})")
    return release_tag(version, current.config.versions.core_tag)


def create_or_update(api: GitHub, fields: dict[str, Any]) -> dict[str, Any]:
    """The release with this tag: created, or its name and body brought up to date (never a second one)."""
    existing = api.release_by_tag(fields["tag_name"])
    if existing is None:
        created = api.create_release(fields)
        say(f"created release {fields['tag_name']} in {api.repository}: {created.get('html_url', '')}")
        return {"action": "created", "id": created.get("id"), "url": created.get("html_url")}
    changes = release_changes(existing, fields)
    if not changes:
        say(f"release {fields['tag_name']} in {api.repository} is up to date")
        return {"action": "unchanged", "id": existing.get("id"), "url": existing.get("html_url")}
    api.update_release(int(existing["id"]), changes)
    say(f"updated release {fields['tag_name']} in {api.repository} ({', '.join(sorted(changes))})")
    return {"action": "updated", "id": existing.get("id"), "url": existing.get("html_url")}


def release_inputs_action() -> dict[str, str]:
    current = settings()
    fork = current.config.fork
    if fork is None:
        raise ConfigError("release-inputs needs the [fork] section (the release branch is what a build is made from)",
                          where=str(current.config_file), fix="add [fork] (see docs/sync.md)")
    origin = current.remote(fork.origin)
    try:
        listing = Git(current.root).remote_listing(origin, f"refs/heads/{fork.release}")
    except CommandError as err:
        raise CommandError(f"could not read origin's {fork.release!r} branch: {err.what}", where=fork.origin,
                           fix="check that origin answers (git ls-remote) and the token can read it") from None
    commit = listing.get(f"refs/heads/{fork.release}", ("", ""))[1] or None
    if commit is None:
        raise CommandError(f"origin has no branch {fork.release!r}", where=fork.origin,
                           fix="push the release branch, or set [fork] release")
    parts = {"release": {"branch": fork.release, "commit": commit},
             "config": hashlib.sha256(current.config_file.read_bytes()).hexdigest(), "forkflow": own_sources_hash()}
    fingerprint = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:32]
    write_report(INPUTS, {"fingerprint": fingerprint, **parts}, current)
    say(f"fingerprint={fingerprint}")
    return {"made": f"inputs {fingerprint[:12]} (release at {commit[:10]})"}


def own_sources_hash() -> str:
    """sha256 over forkflow's own code and templates (names and contents), so a new forkflow builds again."""
    digest = hashlib.sha256()
    for name in OWN_SOURCES:
        top = REPO_ROOT / name
        files = sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if top.is_dir() else [top]
        for file in files:
            if file.is_file():
                digest.update(file.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
