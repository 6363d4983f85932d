"""Release notes: what upstream brought since a package's previous published version, and what the fork carries.

Pure rules, no git and no index: which version on the index is the previous one, which commit (or tag)
a published version names, how `git log` lines read, and the Markdown a GitHub release body shows.
The stage `notes` asks git and the index and hands the answers here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.core.text import markdown_escape as escape
from tasks.core.versions import tag_for

if TYPE_CHECKING:
    from packaging.version import Version

COMMIT_MARK = re.compile(r"(?:^|\.)g([0-9a-f]{7,40})$")


@dataclass(frozen=True)
class Commit:
    """One commit as the notes show it; `absorbed`: upstream has an equivalent patch (fork commits only);
    `new`: not in the previous published version (None when that version's commit is unknown)."""

    sha: str
    subject: str
    absorbed: bool = False
    new: bool | None = None


@dataclass(frozen=True)
class VersionRef:
    """What a published version names: a commit (`g<sha7>`) or a tag (a clean version); None when neither."""

    kind: str  # "commit", "tag" or "none"
    ref: str | None
    why: str = ""


@dataclass
class PackageNotes:
    """The notes of one package. status: `uploaded` (a new version this run) or `unchanged`."""

    name: str
    kind: str
    version: str
    status: str
    previous: str | None = None
    previous_commit: str | None = None
    missing: str | None = None  # why the previous version's commit could not be used
    upstream_from: str | None = None  # the upstream tag (or commit) the range starts at
    upstream_to: str | None = None
    upstream: list[Commit] = field(default_factory=list)
    fork: list[Commit] = field(default_factory=list)


def version_of(text: str) -> Version:
    """A PEP 440 version (packaging is imported by what compares versions, not by loading the notes task)."""
    from packaging.version import Version

    return Version(text)


def file_version(file_name: str) -> Version | None:
    """The version in a wheel or sdist file name; None for anything else."""
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
    from packaging.version import InvalidVersion

    try:
        if file_name.endswith(".whl"):
            return parse_wheel_filename(file_name)[1]
        return parse_sdist_filename(file_name)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def previous_version(files: Iterable[str], current: str) -> str | None:
    """The highest version among the index's files that is lower than `current`; None on a first release."""
    now = version_of(current)
    lower = {found for name in files if (found := file_version(name)) is not None and found < now}
    return str(max(lower)) if lower else None


def has_version(files: Iterable[str], version: str) -> bool:
    """True when one of the index's files carries exactly this version."""
    wanted = version_of(version)
    return any(file_version(name) == wanted for name in files)


def version_ref(version: str, tag_pattern: str, name: str) -> VersionRef:
    """The commit or tag a published version names: `1.0.1+acme.4.geac97b5` -> commit `eac97b5`,
    `1.0.1` -> the tag `1.0.1` (or `{name}-1.0.1`), `1.0.1+acme.4` (no commit in it) -> none."""
    parsed = version_of(version)
    if parsed.local is None:
        return VersionRef("tag", tag_for(tag_pattern, name, version))
    match = COMMIT_MARK.search(parsed.local)
    if match:
        return VersionRef("commit", match.group(1))
    return VersionRef("none", None, f"{version} names no commit (its local part {parsed.local!r} has no g<sha>)")


def public_tag(version: str, tag_pattern: str, name: str) -> str:
    """The tag of a version's public part: `1.0.1+acme.4.geac97b5` -> `1.0.1`."""
    return tag_for(tag_pattern, name, version_of(version).public)


def parse_commits(text: str) -> list[Commit]:
    """`git log --format=%H %s` lines -> commits, in the order given."""
    found = []
    for line in text.splitlines():
        sha, _, subject = line.strip().partition(" ")
        if sha:
            found.append(Commit(sha, subject))
    return found


def parse_marked(text: str) -> dict[str, tuple[str, bool]]:
    """`git log --cherry-mark --right-only --format=%m %H %s` -> sha -> (subject, equivalent to a commit on
    the other side). `=` marks a patch the other side already has, `+` (or `>`) one it does not."""
    found: dict[str, tuple[str, bool]] = {}
    for line in text.splitlines():
        mark, _, rest = line.strip().partition(" ")
        sha, _, subject = rest.partition(" ")
        if sha:
            found[sha] = (subject, mark == "=")
    return found


def fork_commits(marked: Mapping[str, tuple[str, bool]], touching: set[str],
                 not_in_previous: set[str] | None) -> list[Commit]:
    """The fork's commits that touch a package, newest first (the order of `marked`), each marked absorbed
    (upstream has the patch) and new (not in the previous version; None when that is unknown)."""
    return [Commit(sha, subject, absorbed, None if not_in_previous is None else sha in not_in_previous)
            for sha, (subject, absorbed) in marked.items() if sha in touching]


def touching(ordered: Sequence[Commit], shas: set[str]) -> list[Commit]:
    """The commits of `ordered` whose sha is in `shas`, in order."""
    return [commit for commit in ordered if commit.sha in shas]


def released(files: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """publish.json's files -> package -> `uploaded` when any of its files was uploaded this run, else
    `unchanged` (all were already on the index)."""
    found: dict[str, str] = {}
    for file in files:
        package = str(file.get("package") or "")
        if package:
            uploaded = file.get("status") == "uploaded" or found.get(package) == "uploaded"
            found[package] = "uploaded" if uploaded else "unchanged"
    return found


def short(sha: str | None) -> str:
    return (sha or "")[:7]


def commit_line(commit: Commit, fork: bool) -> str:
    marks = []
    if fork and commit.new:
        marks.append("**new**")
    if fork and commit.absorbed:
        marks.append("absorbed upstream")
    suffix = f" ({', '.join(marks)})" if marks else ""
    return f"- `{short(commit.sha)}` {escape(commit.subject)}{suffix}"


def package_markdown(notes: PackageNotes) -> list[str]:
    lines = [f"### {notes.name} {notes.version}", ""]
    if notes.previous:
        at = f" (commit `{short(notes.previous_commit)}`)" if notes.previous_commit else ""
        lines.append(f"Previous published version: {notes.previous}{at}.")
    else:
        lines.append("First release on this index: everything since the package's tag.")
    if notes.missing:
        lines.append(f"Note: {notes.missing}.")
    if notes.upstream_from:
        span = f"{notes.upstream_from} → {notes.upstream_to}"
        lines += ["", f"**From upstream** ({span}): {count(notes.upstream, 'commit')} touching it"]
    else:
        lines += ["", f"**From upstream** (up to {notes.upstream_to}): not listed, no tag or commit to start from"]
    lines += listing([commit_line(c, fork=False) for c in notes.upstream])
    new = sum(1 for c in notes.fork if c.new)
    absorbed = sum(1 for c in notes.fork if c.absorbed)
    lines += ["", f"**Carried by the fork**: {count(notes.fork, 'commit')} on top of upstream"
              f" ({new} new, {absorbed} absorbed upstream)"]
    lines += listing([commit_line(c, fork=True) for c in notes.fork])
    return [*lines, ""]


def listing(items: list[str]) -> list[str]:
    return ["", *items] if items else []


def count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def render_markdown(packages: Sequence[PackageNotes], upstream_ref: str, upstream_sha: str, head: str) -> str:
    """A GitHub release body: one section per package released this run, then the unchanged ones in a line."""
    lines = ["## Release notes", "",
             f"Release branch at `{short(head)}`, compared with upstream `{upstream_ref}` at `{short(upstream_sha)}`.",
             "Fork commits marked *absorbed upstream* have an equivalent patch upstream (they go away at the "
             "next rebase); *new* ones were not in the previous published version.", ""]
    shipped = [p for p in packages if p.status == "uploaded"]
    for notes in shipped:
        lines += package_markdown(notes)
    if not shipped:
        lines += ["No package has a new version in this run.", ""]
    unchanged = [p for p in packages if p.status != "uploaded"]
    if unchanged:
        lines += ["Unchanged (already on the index): " + ", ".join(f"{p.name} {p.version}" for p in unchanged), ""]
    return "\n".join(lines)


def summary(packages: Sequence[PackageNotes]) -> str:
    """What the notes hold, in one line for the run's summary table."""
    shipped = [p for p in packages if p.status == "uploaded"]
    new = len({c.sha for p in shipped for c in p.fork if c.new})
    return f"{len(shipped)} released, {len(packages) - len(shipped)} unchanged, {new} new fork commits: notes.md"


def summary_lines(packages: Sequence[PackageNotes]) -> list[str]:
    """A line per released package for the run's Markdown summary."""
    lines = []
    for p in packages:
        if p.status != "uploaded":
            continue
        since = f"since {p.previous}" if p.previous else "first release"
        new = sum(1 for c in p.fork if c.new)
        lines.append(f"{p.name} {p.version} ({since}): {count(p.upstream, 'upstream commit')}, "
                     f"{count(p.fork, 'fork commit')} ({new} new)" + (f"; {p.missing}" if p.missing else ""))
    return lines
