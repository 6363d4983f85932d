"""sync:fetch: read the remotes and the clone, fetch what moved, and plan the run (tasks.core.sync)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.git import Git, Layout
from tasks.adapters.limits import NoAnswer, limits
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.secrets import mask_urls
from tasks.core.sync import (
    BACKUP_PREFIX,
    Apart,
    BranchTips,
    Commit,
    Facts,
    SyncError,
    SyncPlan,
    plan_lines,
    plan_sync,
    start_tip,
)
from tasks.core.sync_stamp import Stamp
from tasks.core.sync_tags import TagPlan, TagRef, check_fetchable, tag_lines
from tasks.core.values import is_local_path
from tasks.pipeline.lock import clone_lock
from tasks.pipeline.parallel import Outcome, together
from tasks.pipeline.workspace import clone_action
from tasks.stages.sync import check as sync_check
from tasks.stages.sync.check import ORIGIN, UPSTREAM
from tasks.stages.sync.report import write_failure, write_sync_report
from tasks.stages.sync.resume import interrupted_run, resumed_push, tidy_clone
from tasks.stages.sync.setup import STAGE, SyncSetup
from tasks.stages.sync.state import RunState, save_state
from tasks.stages.sync.tags import Listing, Remotes, heads_of, plan_tag_work, tags_of
from tasks.stages.sync.unchanged import load_stamp


def fetch_action(setup: SyncSetup) -> dict[str, str]:
    dry = setup.writes_nothing
    interrupted = None if dry else interrupted_run(setup)
    forget_last_run(setup)
    try:
        with clone_lock(setup.fork, setup.settings.state_dir):
            resumed = finish_interrupted(setup, interrupted) if interrupted else None
            state = resumed or fetch_and_plan(setup, dry)
    except ForkflowError as err:
        write_failure(setup, err, dry)
        raise
    save_state(setup, state)
    if resumed:
        return {"made": f"resuming: push {setup.release} {state.release_new or '-'} as the interrupted sync planned"}
    tags = TagPlan.from_dict(state.tags)
    for line in plan_lines(state.plan) + tag_lines(tags, would=dry):
        say(line)
    if state.observed == load_stamp(setup) and tags.empty:
        say("nothing moved since the last sync: up to date")
        state.main_new, state.release_new = state.plan.main.start, state.plan.release.start
        write_sync_report(setup, state, "up-to-date")
        sync_check.remember(setup)
        return {"made": "up to date"}
    return {"made": plan_summary(state.plan, dry) + tag_summary(tags)}


def finish_interrupted(setup: SyncSetup, old: RunState) -> RunState | None:
    """Tidy what an interrupted sync left in the clone; its state when what is left is only its push."""
    if not is_clone(setup.fork):
        return None
    tidy_clone(setup, old)
    return resumed_push(setup, old)


def forget_last_run(setup: SyncSetup) -> None:
    """No later task may follow an old plan, and no old report may pass for this run's."""
    (setup.state_dir / "run.json").unlink(missing_ok=True)
    (setup.settings.reports_dir / f"{STAGE}.json").unlink(missing_ok=True)
    sync_check.forget(setup)


def plan_summary(plan: SyncPlan, dry: bool) -> str:
    main = f"main +{len(plan.upstream_commits)}" if plan.main.action == "fast-forward" else "main up to date"
    release = {"rebase": f"release rebase {len(plan.custom_commits)}", "fast-forward": "release fast-forward",
               "up-to-date": "release up to date"}[plan.release.action]
    return ("dry run: " if dry else "plan: ") + f"{main}, {release}"


def tag_summary(tags: TagPlan) -> str:
    parts = [f"{len(tags.push)} tag(s) to push"] if tags.push else []
    parts += [f"{len(tags.move)} tag(s) to move"] if tags.move else []
    return "".join(f", {part}" for part in parts)


def fetch_and_plan(setup: SyncSetup, dry: bool) -> RunState:
    """Everything before the first change: remotes answer, clone, pre-flight, fetch, plan.

    The remotes are asked and an existing clone is looked at in one go (all reads);
    the checks then run in their usual order.
    """
    git = Git(setup.fork, dry_run=dry)
    clone = is_clone(setup.fork)
    upstream, origin, *reads = together(*remote_asks(setup), *(clone_reads(git, setup) if clone else []))
    remotes = remote_refs(setup, upstream, origin)
    if not clone:
        if dry:
            return plan_in_temporary_clone(setup, remotes)

        clone_action(setup.origin_url, setup.upstream_url, setup.fork, setup.release)
        fresh = Git(setup.fork)
        return plan_clone(setup, fresh, remotes, read_clone(fresh, setup), dry, cloned=True)
    return plan_clone(setup, git, remotes, CloneReads(*reads), dry)


def is_clone(path: Path) -> bool:
    return (path / ".git").exists()


def remote_asks(setup: SyncSetup) -> list[Callable[[], Listing]]:
    """ls-remote of upstream's main and tags, and of origin's main, release, backups and tags (nothing changes)."""
    setup.state_dir.mkdir(parents=True, exist_ok=True)
    probe = Git(setup.state_dir)
    return [partial(ask_remote, probe, UPSTREAM, setup.upstream_url, setup, f"refs/heads/{setup.upstream_main}",
                    "refs/tags/*"),
            partial(ask_remote, probe, ORIGIN, setup.origin_url, setup, f"refs/heads/{setup.main}",
                    f"refs/heads/{setup.release}", f"refs/heads/{BACKUP_PREFIX}*", "refs/tags/*")]


def remote_refs(setup: SyncSetup, upstream: Outcome, origin: Outcome) -> Remotes:
    """Both remotes answer, and upstream has its main branch."""
    upstream_listing: Listing = upstream.get()
    upstream_heads = {name: sha for name, sha in heads_of(upstream_listing).items() if name == setup.upstream_main}
    if setup.upstream_main not in upstream_heads:
        raise SyncError(
            f"upstream {setup.upstream_url} has no branch {setup.upstream_main!r}",
            where=f"[fork] upstream_main in {setup.settings.config_file}",
            fix=f"set [fork] upstream_main to upstream's main branch (see: git ls-remote --heads {setup.upstream_url})",
        )
    origin_listing: Listing = origin.get()
    origin_heads = {name: sha for name, sha in heads_of(origin_listing).items()
                    if name in (setup.main, setup.release) or name.startswith(BACKUP_PREFIX)}
    return Remotes(upstream_heads, origin_heads, tags_of(upstream_listing), tags_of(origin_listing))


def ask_remote(probe: Git, name: str, url: str, setup: SyncSetup, *patterns: str) -> Listing:
    try:
        return probe.remote_listing(url, *patterns)
    except NoAnswer as err:
        raise SyncError(f"the {name} remote did not answer within {limits().git:g} s: {mask_urls(url)}",
                        where=f"[fork] {name} in {setup.settings.config_file}; the bound is [timeouts] git",
                        fix=err.fix) from None
    except CommandError as err:
        reason = "\n".join(err.what.splitlines()[1:]) or err.what
        raise SyncError(
            f"the {name} remote does not answer: {url}\n  git says:\n{reason}",
            where=f"[fork] {name} in {setup.settings.config_file}",
            fix=f"check the address and your access (`git ls-remote {url}` must work), or correct [fork] {name}",
        ) from None


@dataclass(frozen=True)
class CloneReads:
    """The clone as it is before the fetch: layout, uncommitted changes, remotes, origin's tracking refs and the
    tags."""

    layout: Outcome
    changes: Outcome
    remotes: Outcome
    tracking_and_tags: Outcome


def clone_reads(git: Git, setup: SyncSetup) -> list[Callable[[], Any]]:
    """The reads behind CloneReads, in its order."""
    return [git.layout, git.changes, git.remote_urls, partial(git.refs_and_tags, *origin_tracking_refs(setup))]


def read_clone(git: Git, setup: SyncSetup) -> CloneReads:
    return CloneReads(*together(*clone_reads(git, setup)))


def origin_tracking_refs(setup: SyncSetup) -> list[str]:
    return [f"refs/remotes/{ORIGIN}/{setup.main}", f"refs/remotes/{ORIGIN}/{setup.release}"]


def plan_in_temporary_clone(setup: SyncSetup, remotes: Remotes) -> RunState:
    """Dry run with no clone yet: plan in a throwaway clone, so [fork] path is not created."""
    say(f"would clone {setup.origin_url} into {setup.fork}")
    with tempfile.TemporaryDirectory(prefix="forkflow-sync-") as temp:
        scratch = Path(temp) / "fork"
        Git(Path(temp)).write("clone", "--quiet", setup.origin_url, str(scratch))
        git = Git(scratch, dry_run=True)
        tracking = git.refs(*origin_tracking_refs(setup))
        tips = fetch_for_dry_run(git, setup, remotes.upstream_heads, remotes.origin_heads, tracking)
        nothing_local: dict[str, str | None] = {setup.main: None, setup.release: None}
        plan = plan_sync(gather_facts(git, setup, tips, nothing_local))
        tags = plan_tag_work(git, setup, plan, remotes, scratch)
        return RunState(dry_run=True, plan=plan, observed=observed(setup, tips, nothing_local),
                        original_branch=setup.release, original_sha=None, cloned=True, tags=tags.to_dict())


def plan_clone(setup: SyncSetup, git: Git, remotes: Remotes, reads: CloneReads, dry: bool,
               cloned: bool = False) -> RunState:
    layout = preflight(git, setup, reads)
    urls: dict[str, str] = reads.remotes.get()
    check_remotes(urls, setup)
    ensure_remotes(git, setup, urls)
    tracking, tags_before = reads.tracking_and_tags.get()
    origin_heads = remotes.origin_heads
    local_tags = {name: TagRef(name, sha, commit) for name, (sha, commit) in tags_before.items()}
    check_fetchable(local_tags, remotes.upstream_tags, remotes.origin_tags, str(setup.fork))
    if dry:
        tips = fetch_for_dry_run(git, setup, remotes.upstream_heads, origin_heads, tracking)
    else:
        fetch(git, setup, origin_heads, tracking)
    found, tags_now = git.refs_and_tags(*tracked_refs(setup), f"refs/heads/{BACKUP_PREFIX}*")
    if not dry:
        tips = tips_after_fetch(setup, found, origin_heads)
    locals_ = {name: found.get(f"refs/heads/{name}") for name in (setup.main, setup.release)}
    plan = plan_sync(gather_facts(git, setup, tips, locals_))
    tags = plan_tag_work(git, setup, plan, remotes, setup.fork, tags_now)
    return RunState(dry_run=dry, plan=plan, observed=observed(setup, tips, locals_), tags=tags.to_dict(),
                    original_branch=layout.branch, original_sha=layout.head, cloned=cloned,
                    backups=sorted(name.removeprefix("refs/heads/") for name in found if BACKUP_PREFIX in name),
                    backup_tips={ref.removeprefix("refs/heads/"): sha for ref, sha in found.items() if BACKUP_PREFIX in ref},
                    origin_backups={name: sha for name, sha in origin_heads.items() if name.startswith(BACKUP_PREFIX)})


def tracked_refs(setup: SyncSetup) -> list[str]:
    """The local branches and remote-tracking refs a sync reads."""
    return [f"refs/heads/{setup.main}", f"refs/heads/{setup.release}",
            f"refs/remotes/{UPSTREAM}/{setup.upstream_main}",
            f"refs/remotes/{ORIGIN}/{setup.main}", f"refs/remotes/{ORIGIN}/{setup.release}"]


def preflight(git: Git, setup: SyncSetup, reads: CloneReads) -> Layout:
    """Checks that must all pass before anything changes; each failure names the fixing command."""
    fork = setup.fork
    layout: Layout | None = reads.layout.get()
    if layout is None or layout.toplevel != fork.resolve():
        inside = f" (it is inside the work tree of {layout.toplevel})" if layout else ""
        raise SyncError(
            f"{fork} is not a git clone{inside}",
            where=f"[fork] path in {setup.settings.config_file}",
            fix=f"move {fork} away so the sync clones the fork there, or point [fork] path at a clone",
        )
    if layout.shallow:
        raise SyncError(f"{fork} is a shallow clone: rebasing needs the full history", where=str(fork),
                        fix=f"git -C {fork} fetch --unshallow origin")
    operation = git.operation_in_progress(layout.git_dir)
    if operation:
        finish = "git bisect reset" if operation == "bisect" else f"git {operation} --continue` or `git {operation} --abort"
        raise SyncError(f"a {operation} is in progress in {fork}", where=str(fork),
                        fix=f"finish or abandon it first: cd {fork} && `{finish}`")
    changes: list[str] = reads.changes.get()
    if changes:
        listed = "\n".join(f"    {line}" for line in changes[:10]) + ("\n    ..." if len(changes) > 10 else "")
        raise SyncError(
            f"the working tree of {fork} is not clean ({len(changes)} changed or untracked path(s)):\n{listed}",
            where=str(fork),
            fix=f"commit or stash them first: git -C {fork} stash push --include-untracked "
                "(or add files that belong nowhere to .gitignore)",
        )
    return layout


def check_remotes(actual: dict[str, str], setup: SyncSetup) -> None:
    """An existing remote must point where the config says; the sync never repoints one."""
    fork = setup.fork
    for name, url in ((UPSTREAM, setup.upstream_url), (ORIGIN, setup.origin_url)):
        if name in actual and not same_remote(actual[name], url, fork):
            raise SyncError(
                f"remote {name!r} in {fork} points at {actual[name]}, but [fork] {name} is {url}",
                where=f"{fork} (remote {name}) and [fork] {name} in {setup.settings.config_file}",
                fix=f"the sync never repoints a remote: if the config is right, run "
                    f"git -C {fork} remote set-url {name} {url}; otherwise correct [fork] {name}",
            )


def same_remote(actual: str, configured: str, fork: Path) -> bool:
    """Equal remotes, ignoring a trailing slash or `.git`, and relative local paths."""
    return normalized_remote(actual, fork) == normalized_remote(configured, fork)


def normalized_remote(value: str, base: Path) -> str:
    if is_local_path(value):
        value = value.removeprefix("file://")
        return str((base / value).resolve()).removesuffix(".git").rstrip("/")
    return value.rstrip("/").removesuffix(".git")


def ensure_remotes(git: Git, setup: SyncSetup, existing: dict[str, str]) -> None:
    """Add the remotes the clone lacks (existing ones were checked by check_remotes)."""
    for name, url in ((UPSTREAM, setup.upstream_url), (ORIGIN, setup.origin_url)):
        if name not in existing:
            git.add_remote(name, url)
            if not git.dry_run:
                say(f"added remote {name} -> {url}")


@dataclass(frozen=True)
class Tips:
    upstream_main: str
    origin: dict[str, str | None]


def fetch(git: Git, setup: SyncSetup, origin_heads: dict[str, str], tracking: dict[str, str]) -> None:
    """Fetch upstream's main with every tag, and origin's main and release branches (those not already here)."""
    upstream_ref = f"refs/remotes/{UPSTREAM}/{setup.upstream_main}"
    git.fetch_refs(UPSTREAM, [f"+refs/heads/{setup.upstream_main}:{upstream_ref}"], tags=True,
                   fix=f"a tag here that differs from upstream's stops the fetch; compare with git -C {setup.fork} "
                       f"ls-remote --tags {UPSTREAM}")
    moved = origin_to_fetch(setup, origin_heads, tracking)
    if moved:
        git.fetch_refs(ORIGIN, [f"+refs/heads/{name}:refs/remotes/{ORIGIN}/{name}" for name in moved])
    say(f"fetched {UPSTREAM} ({setup.upstream_main}, tags) and {ORIGIN} ({origin_fetched(setup, origin_heads, moved)})")


def origin_to_fetch(setup: SyncSetup, origin_heads: dict[str, str], tracking: dict[str, str]) -> list[str]:
    """origin's branches whose remote-tracking ref is not already at the tip ls-remote reported."""
    return [name for name in (setup.main, setup.release)
            if name in origin_heads and tracking.get(f"refs/remotes/{ORIGIN}/{name}") != origin_heads[name]]


def origin_fetched(setup: SyncSetup, origin_heads: dict[str, str], moved: list[str]) -> str:
    unchanged = [name for name in (setup.main, setup.release) if name in origin_heads and name not in moved]
    parts = [", ".join(moved)] if moved else []
    if unchanged:
        parts.append(f"{', '.join(unchanged)} already up to date")
    return "; ".join(parts) or "no branches"


def tips_after_fetch(setup: SyncSetup, found: dict[str, str], origin_heads: dict[str, str]) -> Tips:
    """The remote-tracking refs the fetch just wrote (origin's branches only if origin has them)."""
    return Tips(found[f"refs/remotes/{UPSTREAM}/{setup.upstream_main}"],
                {name: found.get(f"refs/remotes/{ORIGIN}/{name}") if name in origin_heads else None
                 for name in (setup.main, setup.release)})


def fetch_for_dry_run(git: Git, setup: SyncSetup, upstream_heads: dict[str, str], origin_heads: dict[str, str],
                      tracking: dict[str, str]) -> Tips:
    """The tips ls-remote reported, with their commits fetched (unless already here) but no ref moved."""
    git.fetch_objects(setup.upstream_url, [f"refs/heads/{setup.upstream_main}"])
    moved = origin_to_fetch(setup, origin_heads, tracking)
    if moved:
        git.fetch_objects(setup.origin_url, [f"refs/heads/{name}" for name in moved])
    say(f"would fetch {UPSTREAM} (with tags) and {ORIGIN}; looked at their tips without moving a ref")
    return Tips(upstream_heads[setup.upstream_main], {name: origin_heads.get(name) for name in (setup.main, setup.release)})


def gather_facts(git: Git, setup: SyncSetup, tips: Tips, locals_: dict[str, str | None]) -> Facts:
    fork = str(setup.fork)
    main, release = (outcome.get() for outcome in together(
        partial(branch_tips, git, setup.main, locals_[setup.main], tips.origin[setup.main]),
        partial(branch_tips, git, setup.release, locals_[setup.release], tips.origin[setup.release])))
    main_start, release_start = start_tip(main, fork), start_tip(release, fork)
    main_side, release_side = together(partial(sides, git, main_start, tips.upstream_main),
                                       partial(sides, git, tips.upstream_main, release_start))
    main_only, upstream_commits = main_side.get()
    behind, custom_commits = release_side.get()
    return Facts(
        fork=fork,
        upstream_ref=f"{UPSTREAM}/{setup.upstream_main}",
        upstream_main=tips.upstream_main,
        main=main,
        release=release,
        main_start=main_start,
        release_start=release_start,
        main_vs_upstream=Apart(len(main_only), len(upstream_commits)),
        release_vs_upstream=Apart(len(behind), len(custom_commits)),
        upstream_commits=tuple(upstream_commits),
        custom_commits=tuple(custom_commits),
    )


def sides(git: Git, left: str, right: str) -> tuple[list[Commit], list[Commit]]:
    """Commits only on each side (one `git log`; none when both are the same commit)."""
    if left == right:
        return [], []
    only_left, only_right = git.sides(left, right)
    return [Commit(*c) for c in only_left], [Commit(*c) for c in only_right]


def branch_tips(git: Git, name: str, local: str | None, origin: str | None) -> BranchTips:
    if local and origin:
        apart = Apart(0, 0) if local == origin else Apart(*git.apart(local, origin))
        return BranchTips(name, local, origin, apart)
    return BranchTips(name, local, origin)


def commits(git: Git, revisions: str) -> list[Commit]:
    return [Commit(sha, subject) for sha, subject in git.commits(revisions)]


def observed(setup: SyncSetup, tips: Tips, locals_: dict[str, str | None]) -> Stamp:
    return Stamp(config=setup.fingerprint, upstream_main=tips.upstream_main,
                 origin_main=tips.origin[setup.main], origin_release=tips.origin[setup.release],
                 main=locals_.get(setup.main), release=locals_.get(setup.release))
