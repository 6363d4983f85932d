"""What a sync will do, decided from facts about the fork's branches.

The stage gathers facts with git (tips, how far apart two tips are, the
commits in a range) and this module decides, without I/O: where each branch
starts (catching up with origin first), whether main fast-forwards, whether
the release branch fast-forwards or has its custom commits rebased, which
refs are pushed with which lease, what the backup is called and which old
backups are pruned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from tasks.core.errors import ForkflowError

BACKUP_PREFIX = "backup-before-sync-"
BACKUP_TIME_FORMAT = "%Y%m%d-%H%M%S"

Action = Literal["up-to-date", "fast-forward", "rebase"]


class SyncError(ForkflowError):
    """The fork cannot be synced as it is; nothing was changed."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    def line(self) -> str:
        return f"{self.sha[:10]} {self.subject}"

    def to_dict(self) -> dict[str, str]:
        return {"sha": self.sha, "subject": self.subject}


@dataclass(frozen=True)
class Apart:
    """How two tips relate: commits only on the left side and only on the right."""

    left: int
    right: int


@dataclass(frozen=True)
class BranchTips:
    """A branch in the fork clone and on origin, as seen at fetch time."""

    name: str
    local: str | None
    origin: str | None
    local_vs_origin: Apart | None = None


def start_tip(branch: BranchTips, fork: str) -> str:
    """The tip a sync starts from: the local branch, or origin's when the local one is behind or missing.

    A local branch and origin's that have each gained commits cannot be
    reconciled safely here; that is the user's call.
    """
    if branch.local is None and branch.origin is None:
        raise SyncError(
            f"branch {branch.name!r} exists neither in the fork clone nor on origin",
            where=fork,
            fix=f"create it and push it: git -C {fork} branch {branch.name} <start> && git -C {fork} push origin {branch.name}",
        )
    if branch.local is None:
        return str(branch.origin)
    if branch.origin is None or branch.local_vs_origin is None:
        return branch.local
    apart = branch.local_vs_origin
    if apart.left and apart.right:
        raise SyncError(
            f"local {branch.name!r} and origin/{branch.name} have diverged "
            f"({apart.left} commit(s) only here, {apart.right} only on origin)",
            where=fork,
            fix=f"reconcile them by hand, e.g. git -C {fork} checkout {branch.name} && "
                f"git -C {fork} rebase origin/{branch.name}, then run the sync again",
        )
    return branch.origin if apart.right else branch.local


@dataclass(frozen=True)
class Facts:
    """Everything the plan is decided from, gathered right after the fetch."""

    fork: str
    upstream_ref: str
    upstream_main: str
    main: BranchTips
    release: BranchTips
    main_start: str
    release_start: str
    main_vs_upstream: Apart
    release_vs_upstream: Apart
    upstream_commits: tuple[Commit, ...] = ()
    custom_commits: tuple[Commit, ...] = ()


@dataclass(frozen=True)
class BranchMove:
    name: str
    old: str | None
    start: str
    action: Action
    target: str


@dataclass(frozen=True)
class SyncPlan:
    upstream_ref: str
    upstream_main: str
    main: BranchMove
    release: BranchMove
    origin_main: str | None
    origin_release: str | None
    upstream_commits: tuple[Commit, ...] = ()
    custom_commits: tuple[Commit, ...] = ()

    @property
    def needs_backup(self) -> bool:
        """A rebase rewrites the release branch, so its old tip is kept first."""
        return self.release.action == "rebase"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (built by hand: `asdict` deep-copies every commit, slow for long histories)."""
        return {
            "upstream_ref": self.upstream_ref,
            "upstream_main": self.upstream_main,
            "main": asdict(self.main),
            "release": asdict(self.release),
            "origin_main": self.origin_main,
            "origin_release": self.origin_release,
            "upstream_commits": [c.to_dict() for c in self.upstream_commits],
            "custom_commits": [c.to_dict() for c in self.custom_commits],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncPlan:
        return cls(
            upstream_ref=data["upstream_ref"],
            upstream_main=data["upstream_main"],
            main=BranchMove(**data["main"]),
            release=BranchMove(**data["release"]),
            origin_main=data["origin_main"],
            origin_release=data["origin_release"],
            upstream_commits=tuple(Commit(**c) for c in data["upstream_commits"]),
            custom_commits=tuple(Commit(**c) for c in data["custom_commits"]),
        )


def plan_sync(facts: Facts) -> SyncPlan:
    """Decide the sync, or raise SyncError when main cannot fast-forward."""
    return SyncPlan(
        upstream_ref=facts.upstream_ref,
        upstream_main=facts.upstream_main,
        main=plan_main(facts),
        release=plan_release(facts),
        origin_main=facts.main.origin,
        origin_release=facts.release.origin,
        upstream_commits=facts.upstream_commits,
        custom_commits=facts.custom_commits,
    )


def plan_main(facts: Facts) -> BranchMove:
    """Main only ever fast-forwards to upstream; its own commits stop the sync."""
    apart = facts.main_vs_upstream
    name = facts.main.name
    if apart.left:
        raise SyncError(
            f"{name!r} cannot fast-forward to {facts.upstream_ref}: it has {apart.left} commit(s) upstream does not"
            + (f" and is {apart.right} commit(s) behind" if apart.right else ""),
            where=facts.fork,
            fix=f"move those commits to {facts.release.name!r} or drop them; discarding them "
                f"(git -C {facts.fork} checkout {name} && git -C {facts.fork} reset --hard {facts.upstream_ref}) "
                "is your decision, the sync never does it",
        )
    action: Action = "fast-forward" if apart.right else "up-to-date"
    return BranchMove(name, facts.main.local, facts.main_start, action, facts.upstream_main)


def plan_release(facts: Facts) -> BranchMove:
    """No custom commits: fast-forward. Custom commits not on top of upstream: rebase them."""
    behind, custom = facts.release_vs_upstream.left, facts.release_vs_upstream.right
    name = facts.release.name
    if behind == 0:
        return BranchMove(name, facts.release.local, facts.release_start, "up-to-date", facts.release_start)
    if custom == 0:
        return BranchMove(name, facts.release.local, facts.release_start, "fast-forward", facts.upstream_main)
    return BranchMove(name, facts.release.local, facts.release_start, "rebase", facts.upstream_main)


@dataclass(frozen=True)
class Push:
    """One ref to push to origin; `lease` is the tip origin must still have (\"\" = must not exist).

    `branch` is the ref's short name: a branch, or a tag when `kind` is "tags".
    """

    branch: str
    old: str | None
    new: str
    lease: str | None = None
    kind: Literal["heads", "tags"] = "heads"

    @property
    def ref(self) -> str:
        return f"refs/{self.kind}/{self.branch}"

    @property
    def refspec(self) -> str:
        source = self.ref if self.new else ""
        return f"{source}:{self.ref}"

    @property
    def lease_option(self) -> str | None:
        if self.lease is None:
            return None
        return f"--force-with-lease={self.ref}:{self.lease}"


def plan_pushes(plan: SyncPlan, main_new: str, release_new: str) -> list[Push]:
    """Main pushed normally (a fast-forward); release with a lease on the tip seen at fetch."""
    pushes = []
    if main_new != plan.origin_main:
        pushes.append(Push(plan.main.name, plan.origin_main, main_new))
    if release_new != plan.origin_release:
        pushes.append(Push(plan.release.name, plan.origin_release, release_new, lease=plan.origin_release or ""))
    return pushes


def backup_pushes(backup: str | None, tip: str | None, on_origin: dict[str, str], keep: int) -> tuple[list[Push], list[Push]]:
    """The backup to push with the release (unless origin has it already) and origin's old backups to delete after."""
    add = [Push(backup, None, tip, lease="")] if backup and tip and on_origin.get(backup) != tip else []
    names = sorted({*on_origin, *([backup] if backup else [])})
    doomed = backups_to_prune(names, keep, protect=backup)
    return add, [Push(name, on_origin[name], "", lease=on_origin[name]) for name in doomed if name in on_origin]


def reusable_backup(tip: str, local: dict[str, str], on_origin: dict[str, str]) -> str | None:
    """A backup already at `tip` (a retry of the same sync), in the clone first, else on origin."""
    for found in (local, on_origin):
        same = sorted((name for name, sha in found.items() if sha == tip and is_backup(name)), key=backup_order)
        if same:
            return same[-1]
    return None


def push_arguments(remote: str, pushes: list[Push]) -> list[str]:
    """Arguments after `git push`: one atomic push, explicit leases, never a bare --force."""
    leases = [p.lease_option for p in pushes if p.lease_option]
    return ["--atomic", "--porcelain", *leases, remote, *[p.refspec for p in pushes]]


def backup_name(now: datetime, existing: list[str]) -> str:
    """`backup-before-sync-YYYYMMDD-HHMMSS`, with a counter if that name is taken."""
    base = BACKUP_PREFIX + now.strftime(BACKUP_TIME_FORMAT)
    name, counter = base, 2
    while name in existing:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def is_backup(branch: str) -> bool:
    return branch.startswith(BACKUP_PREFIX)


def backup_order(name: str) -> tuple[str, int]:
    """Sort key: timestamp, then counter (`-2`, `-3`...) for backups made in the same second."""
    parts = name[len(BACKUP_PREFIX):].split("-")
    counter = parts[2] if len(parts) > 2 else ""
    return "-".join(parts[:2]), int(counter) if counter.isdigit() else 1


def backups_to_prune(branches: list[str], keep: int, protect: str | None = None) -> list[str]:
    """The oldest backups beyond the newest `keep`; the one this sync made is never pruned."""
    backups = sorted((b for b in branches if is_backup(b)), key=backup_order, reverse=True)
    kept = set(backups[:max(keep, 0)])
    return sorted((b for b in backups if b not in kept and b != protect), key=backup_order)


@dataclass(frozen=True)
class Rebased:
    subject: str
    old: str
    new: str | None


def pair_rebased(before: list[Commit], after: list[Commit]) -> list[Rebased]:
    """Match custom commits before and after a rebase by subject, in order.

    Commits git dropped because upstream already has the same change get
    `new = None`.
    """
    pairs = []
    index = 0
    for commit in before:
        match = next((i for i in range(index, len(after)) if after[i].subject == commit.subject), None)
        if match is None:
            pairs.append(Rebased(commit.subject, commit.sha, None))
            continue
        pairs.append(Rebased(commit.subject, commit.sha, after[match].sha))
        index = match + 1
    return pairs


def plan_lines(plan: SyncPlan, limit: int = 20) -> list[str]:
    """The plan in words, for the console and for dry runs."""
    lines = [describe_main(plan)]
    lines += ["    + " + c.line() for c in plan.upstream_commits[-limit:]] if plan.main.action != "up-to-date" else []
    if plan.main.action != "up-to-date" and len(plan.upstream_commits) > limit:
        lines.insert(1, f"    ... {len(plan.upstream_commits) - limit} older commit(s) not shown")
    lines.append(describe_release(plan))
    if plan.release.action == "rebase":
        lines += ["    * " + c.line() for c in plan.custom_commits]
    return lines


def describe_main(plan: SyncPlan) -> str:
    move = plan.main
    if move.action == "up-to-date":
        return f"{move.name}: up to date with {plan.upstream_ref} at {move.target[:10]}"
    return (f"{move.name}: fast-forward {move.start[:10]} -> {move.target[:10]} "
            f"({len(plan.upstream_commits)} upstream commit(s))")


def describe_release(plan: SyncPlan) -> str:
    move = plan.release
    if move.action == "up-to-date":
        return f"{move.name}: up to date (on top of {plan.upstream_ref}, {len(plan.custom_commits)} custom commit(s))"
    if move.action == "fast-forward":
        return f"{move.name}: fast-forward {move.start[:10]} -> {move.target[:10]} (no custom commits)"
    return f"{move.name}: rebase {len(plan.custom_commits)} custom commit(s) onto {plan.upstream_ref} ({move.target[:10]})"


@dataclass(frozen=True)
class Conflict:
    """Where a rebase stopped."""

    commit: Commit | None
    files: tuple[str, ...] = field(default_factory=tuple)


def conflict_error(conflict: Conflict, fork: str, release: str, onto: str, backup: str | None,
                   push_hint: str, work_branch: str | None = None) -> SyncError:
    """The message for a rebase conflict: files, commit and the commands to finish by hand (on `work_branch`,
    made from the release, when the release branch itself must not move)."""
    stopped = conflict.commit.line() if conflict.commit else "(unknown commit)"
    files = "\n".join(f"    {name}" for name in conflict.files) or "    (git did not name the files)"
    backup_line = f"the old release tip is kept in branch {backup}; " if backup else ""
    what = (
        f"rebasing {release!r} onto {onto[:10]} stopped at a conflict; the rebase was aborted and "
        f"{release!r} is unchanged ({backup_line}origin was not touched)\n"
        f"  conflicting commit: {stopped}\n"
        f"  conflicting files:\n{files}"
    )
    fix = (
        "resolve it by hand:\n"
        f"    cd {fork}\n"
        + (f"    git checkout -B {work_branch} {release}\n" if work_branch else f"    git checkout {release}\n")
        + f"    git rebase {onto}\n"
        "    # edit the conflicting files, then for each stop:\n"
        "    git add <files> && git rebase --continue\n"
        f"    {push_hint}"
    )
    return SyncError(what, where=fork, fix=fix)


def summary_markdown(report: dict[str, Any]) -> str:
    """The sync report as Markdown for a CI job summary."""
    main = report.get("main") or {}
    release = report.get("release") or {}
    title = "Sync (dry run)" if report.get("dry_run") else "Sync"
    lines = [f"## {title}: {report.get('status', 'unknown')}", ""]
    if report.get("error"):
        lines += ["```", str(report["error"]), "```", ""]
    lines += [
        "| branch | old | new | commits |",
        "|---|---|---|---|",
        f"| {main.get('name', 'main')} | {short(main.get('old'))} | {short(main.get('new'))} | "
        f"{main.get('count', 0)} from upstream |",
        f"| {release.get('name', 'release')} | {short(release.get('old'))} | {short(release.get('new'))} | "
        f"{len(release.get('rebased') or [])} rebased |",
        "",
    ]
    rebased = release.get("rebased") or []
    if rebased:
        lines += ["### Rebased custom commits", ""]
        lines += [f"- `{short(r.get('old'))}` -> `{short(r.get('new'))}` {r.get('subject', '')}" for r in rebased]
        lines.append("")
    if report.get("backup"):
        lines.append(f"Backup branch: `{report['backup']}`")
    if report.get("backups"):
        lines.append("Backups kept: " + ", ".join(f"`{name}`" for name in report["backups"]))
    if report.get("pushed"):
        lines.append("Pushed: " + ", ".join(f"`{ref}`" for ref in report["pushed"]))
    tags = report.get("tags") or {}
    if tags.get("pushed"):
        lines.append("Tags pushed: " + ", ".join(f"`{name}`" for name in tags["pushed"]))
    if tags.get("moved"):
        lines.append("Tags moved: " + ", ".join(f"`{t.get('name')}` {short(t.get('old'))} -> {short(t.get('new'))}"
                                                for t in tags["moved"]))
    return "\n".join(lines).rstrip() + "\n"


def short(sha: Any) -> str:
    return str(sha)[:10] if sha else "-"
