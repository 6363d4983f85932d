"""Stage `notes`: release notes for what `publish` just uploaded, as `reports/notes.json` and `reports/notes.md`.

For each package with a new version on the index this run: the previous published version (the highest
on the index below the new one) and the commit it names (`g<sha7>`, or its tag for a clean version);
what upstream brought since then (the upstream tag range and upstream's commits touching the package);
what the fork carries on top of upstream (its own commits on the release branch touching the package,
marked *new* when the previous version did not have them and *absorbed* when upstream has an equivalent
patch, as `git log --cherry-mark` sees it). Packages whose files were all on the index already are
listed as unchanged. notes.md is a GitHub release body.

Upstream is the clone's `upstream/<[fork] upstream_main>` (fetched by `sync`), else `origin/<[fork] main>`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

from tasks.adapters.console import say, warn
from tasks.adapters.git import Git
from tasks.core.errors import ForkflowError
from tasks.core.notes import (
    PackageNotes,
    fork_commits,
    has_version,
    parse_commits,
    parse_marked,
    previous_version,
    public_tag,
    released,
    render_markdown,
    short,
    summary,
    summary_lines,
    touching,
    version_ref,
)
from tasks.core.packages import Package, change_paths
from tasks.core.versions import newest_tag, tag_pattern
from tasks.pipeline.actions import (
    dry_run_param,
    guarded,
    is_dry_run,
    missing_section_task,
    not_after_dry_run,
    note_dry_run,
    plan_only,
)
from tasks.pipeline.checks import Check, Stale, report_intact
from tasks.pipeline.settings import Settings, read_report, settings, write_report, write_text_atomically
from tasks.pipeline.workspace import checkout_path, find_packages

UPSTREAM_REMOTE = "upstream"  # the name `checkout` and `sync` give upstream's remote in the clone


def task_notes() -> dict[str, Any]:
    """Release notes for the packages publish uploaded: upstream's changes since the previous version, the fork's own."""
    current = settings()
    doc = ("release notes of what publish uploaded: upstream's commits since each package's previous published "
           "version and the fork's own commits on top (reports/notes.json, notes.md)")
    if current.config.fork is None:
        return missing_section_task("notes", "fork", doc)
    if current.config.index is None:
        return missing_section_task("notes", "index", doc)
    return {
        "doc": doc,
        "actions": [guarded(notes_action)],
        "task_dep": ["publish"],
        "targets": [str(current.reports_dir / "notes.json"), str(current.reports_dir / "notes.md")],
        "uptodate": [Check("publish.json and the checkout's HEAD are those of the last notes", notes_unchanged),
                     Check("the last run was not a dry run", not_after_dry_run("notes")), report_intact("notes")],
        "params": [dry_run_param()],
        "verbosity": 2,
    }


def publish_digest(current: Settings) -> str | None:
    file = current.reports_dir / "publish.json"
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None


def notes_unchanged(task: Any, values: dict[str, Any]) -> bool | Stale:
    current = settings()
    saved = read_report("notes", current)
    if saved is None or not (current.reports_dir / "notes.md").is_file():
        return Stale("no notes yet")
    if saved.get("publish_report") != publish_digest(current):
        return Stale("publish.json changed")
    if not checkout_path(current).is_dir():
        return Stale("no checkout")
    head = Git(checkout_path(current)).rev("HEAD")
    return saved.get("head") == head or Stale("the checkout's HEAD moved")


def notes_action(dry_run: bool = False) -> dict[str, str]:
    current = settings()
    assert current.config.index is not None
    dry = is_dry_run(dry_run) or plan_only("publish")
    note_dry_run("notes", dry)
    versions = read_report("version", current)
    if not versions:
        raise ForkflowError("no version report", fix="run `doit version` (or `doit publish notes`)")
    statuses = dry_run_statuses(current, versions) if dry else published_statuses(current)
    report = notes_report(current, versions, statuses)
    markdown = report.pop("markdown")
    for line in console_lines(report):
        say(line)
    if dry:
        say("notes: dry run: publish uploaded nothing; these are the notes it would give (nothing written)")
        return {"made": "dry run: " + report["summary"]}
    write_report("notes", report, current)
    write_text_atomically(current.reports_dir / "notes.md", markdown)
    return {"made": report["summary"]}


def published_statuses(current: Settings) -> dict[str, str]:
    """Package -> `uploaded` or `unchanged`, from this run's publish.json."""
    report = read_report("publish", current)
    if not report:
        raise ForkflowError("no publish report: nothing was published", fix="run `doit publish notes`")
    if report.get("status") == "failed":
        raise ForkflowError(f"the last publish failed: {str(report.get('error', '')).splitlines()[0]}",
                            fix="fix what publish reported and run `doit publish notes` again")
    return released(report.get("files", []))


def dry_run_statuses(current: Settings, versions: dict[str, Any]) -> dict[str, str]:
    """In a dry run nothing was uploaded: a package whose version the index lacks would be uploaded."""
    from tasks.adapters import index  # the index's client: only a dry run asks it

    assert current.config.index is not None
    wheels = read_report("wheel", current) or {}
    built = {p["name"] for p in wheels.get("packages", [])}
    found = {}
    for entry in versions["packages"]:
        if entry["name"] in built:
            files = index.remote_files(current.config.index.url, entry["name"])
            found[entry["name"]] = "unchanged" if has_version(files, entry["version"]) else "uploaded"
    return found


def upstream_ref(current: Settings, git: Git) -> str:
    """upstream/<upstream_main> when sync fetched it, else origin/<main>."""
    fork = current.config.fork
    assert fork is not None
    for ref in (f"refs/remotes/{UPSTREAM_REMOTE}/{fork.upstream_main}", f"refs/remotes/origin/{fork.main}"):
        if git.rev(ref):
            return ref.removeprefix("refs/remotes/")
    raise ForkflowError(f"neither {UPSTREAM_REMOTE}/{fork.upstream_main} nor origin/{fork.main} is in the clone",
                        where=str(checkout_path(current)), fix="run `doit sync:fetch` to fetch upstream's main")


def notes_report(current: Settings, versions: dict[str, Any], statuses: dict[str, str]) -> dict[str, Any]:
    git = Git(checkout_path(current))
    head = str(versions.get("head") or git.read("rev-parse", "HEAD"))
    upstream = upstream_ref(current, git)
    upstream_sha = git.read("rev-parse", upstream)
    reader = NotesReader(current, git, head, upstream)
    packages = [reader.package_notes(entry, statuses[entry["name"]])
                for entry in versions["packages"] if entry["name"] in statuses]
    return {
        "head": git.rev("HEAD"), "release_head": head, "upstream": {"ref": upstream, "commit": upstream_sha},
        "publish_report": publish_digest(current), "summary": summary(packages),
        "summary_lines": summary_lines(packages),
        "packages": [asdict(p) for p in packages],
        "markdown": render_markdown(packages, upstream, upstream_sha, head),
    }


class NotesReader:
    """The git and index questions behind one run's notes (each asked once)."""

    def __init__(self, current: Settings, git: Git, head: str, upstream: str):
        self.current = current
        self.git = git
        self.head = head
        self.upstream = upstream
        self.packages = {p.name: p for p in find_packages(current)}
        self.base = git.read("merge-base", head, upstream)
        self.marked = parse_marked(git.read("log", "--cherry-mark", "--right-only", "--no-merges",
                                            "--format=%m %H %s", f"{upstream}...{head}"))
        self.tags: dict[str, list[str]] = {}

    def package_notes(self, entry: dict[str, Any], status: str) -> PackageNotes:
        notes = PackageNotes(entry["name"], entry["kind"], entry["version"], status)
        if status != "uploaded":
            return notes
        package = self.packages.get(entry["name"])
        if package is None:
            notes.missing = f"{entry['name']} is no longer a package in the checkout"
            return notes
        pattern, tag_name = self.tag_rule(package)
        assert self.current.config.index is not None
        from tasks.adapters import index

        notes.previous = previous_version(index.remote_files(self.current.config.index.url, package.name),
                                          entry["version"])
        start = self.previous_start(notes, pattern, tag_name) if notes.previous else entry.get("tag")
        groups = change_paths(package, list(self.packages.values()))
        self.fill_upstream(notes, start, pattern, tag_name, groups)
        own = self.touching(f"{self.upstream}..{self.head}", groups)
        notes.fork = fork_commits(self.marked, own, self.not_in(notes.previous_commit, own, notes))
        return notes

    def tag_rule(self, package: Package) -> tuple[str, str]:
        rules = self.current.config.versions
        return tag_pattern(package.kind, package.name, rules.core_tag, rules.package_tag)

    def previous_start(self, notes: PackageNotes, pattern: str, tag_name: str) -> str | None:
        """The previous version's commit (its upstream base starts the upstream range); when it is not in the
        clone, the tag of its public version, and the notes say so."""
        assert notes.previous is not None
        ref = version_ref(notes.previous, pattern, tag_name)
        commit = self.git.rev(ref.ref) if ref.ref else None
        if commit:
            notes.previous_commit = commit
            return commit
        fallback = public_tag(notes.previous, pattern, tag_name)
        what = ref.why or f"its {ref.kind} {ref.ref} is not in the clone (rewritten by a rebase and not kept?)"
        usable = self.git.rev(fallback)
        notes.missing = (f"the commit of {notes.previous} is unknown: {what}; upstream is listed since "
                         + (f"its tag {fallback}, and which fork commits are new is unknown" if usable
                            else "nothing (no tag either), and which fork commits are new is unknown"))
        return fallback if usable else None

    def fill_upstream(self, notes: PackageNotes, start: str | None, pattern: str, tag_name: str,
                      groups: list[list[str]]) -> None:
        """Upstream's commits from the start's upstream base to the release's, touching the package."""
        notes.upstream_to = self.newest_tag(self.base, pattern, tag_name) or short(self.base)
        if start is None:
            return
        since = self.git.read("merge-base", start, self.upstream, check=False) or start
        notes.upstream_from = self.newest_tag(since, pattern, tag_name) or short(since)
        span = f"{since}..{self.base}"
        ordered = parse_commits(self.git.read("log", "--no-merges", "--format=%H %s", span))
        notes.upstream = touching(ordered, self.touching(span, groups))

    def newest_tag(self, commit: str, pattern: str, tag_name: str) -> str | None:
        if commit not in self.tags:
            self.tags[commit] = self.git.read("tag", "--merged", commit).split()
        found = newest_tag(self.tags[commit], pattern, tag_name, self.current.config.versions.allow_prerelease)
        return found.tag if found else None

    def touching(self, span: str, groups: list[list[str]]) -> set[str]:
        """The commits of a range that touch any group of the package's paths."""
        found: set[str] = set()
        for paths in groups:
            found |= set(self.git.read("log", "--no-merges", "--full-history", "--format=%H", span,
                                       "--", *paths).split())
        return found

    def not_in(self, previous: str | None, own: set[str], notes: PackageNotes) -> set[str] | None:
        """The fork's commits the previous version did not have (by patch, so a rebased copy is not new);
        all of them on a first release; None when the previous version's commit is unknown."""
        if notes.previous is None:
            return own
        if previous is None:
            return None
        marked = parse_marked(self.git.read("log", "--cherry-mark", "--right-only", "--no-merges",
                                            "--format=%m %H %s", f"{previous}...{self.head}"))
        return {sha for sha, (_, equivalent) in marked.items() if not equivalent}


def console_lines(report: dict[str, Any]) -> list[str]:
    for package in report["packages"]:
        if package.get("missing"):
            warn(f"{package['name']}: {package['missing']}")
    upstream = report["upstream"]
    return ([f"notes: compared with {upstream['ref']} at {short(upstream['commit'])}"]
            + [f"  {line}" for line in report["summary_lines"]])

