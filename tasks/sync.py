"""Stage `sync`: keep the fork's main and release branches on top of upstream.

`doit sync` runs four tasks, each after the one before:

    sync:fetch    clone the fork when missing, pre-flight checks, add missing
                  remotes, fetch upstream (with tags) and origin's branches that
                  moved, decide the plan
    sync:main     fast-forward main to upstream's main (never a reset)
    sync:release  back up the release tip, then fast-forward it or rebase its
                  custom commits onto the new main (a conflict aborts the rebase)
    sync:push     one atomic push: main normally, release with
                  --force-with-lease on the tip seen at fetch; prune old backups

`doit sync --dry-run` (or FORKFLOW_DRY_RUN=1) prints the plan and moves no
ref, locally or on the remotes. When upstream, origin and the local branches
are where the last successful sync left them (a stamp in `<state>/sync/`),
the last three tasks are up to date. Every task writes
`.forkflow/reports/sync.json`. Planning is pure (tasks.core.sync); git runs
through tasks.adapters.git.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from doit import task_params

from tasks import sync_check
from tasks.actions import dry_run_param, guarded, is_dry_run, missing_section_task, plan_only
from tasks.adapters.git import Git, Layout
from tasks.checks import Check
from tasks.context import Settings, read_report, settings, write_report
from tasks.core.config import is_local_path
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.sync import (
    BACKUP_PREFIX,
    Apart,
    BranchMove,
    BranchTips,
    Commit,
    Conflict,
    Facts,
    Push,
    Stamp,
    SyncError,
    SyncPlan,
    backup_name,
    backup_pushes,
    backups_to_prune,
    conflict_error,
    pair_rebased,
    plan_lines,
    plan_pushes,
    plan_sync,
    push_arguments,
    reusable_backup,
    short,
    start_tip,
    summary_markdown,
)
from tasks.demo import demo_task_deps
from tasks.output import say, warn
from tasks.parallel import Outcome, together

UPSTREAM = sync_check.UPSTREAM
ORIGIN = sync_check.ORIGIN
STAGE = "sync"
DOC = ("sync the fork with upstream: fetch, fast-forward main, rebase release (backup first), "
       "push with lease (--dry-run, --keep-backups N)")


def keep_backups_param() -> dict[str, Any]:
    return {
        "name": "keep_backups",
        "long": "keep-backups",
        "type": int,
        "default": -1,
        "help": "backup branches to keep after a successful sync (default: [fork] keep_backups)",
    }


@task_params([dry_run_param(), keep_backups_param()])
def task_sync(dry_run: bool = False, keep_backups: int = -1) -> Iterator[dict[str, Any]]:
    """Keep the fork's main and release branches on top of upstream."""
    current = settings()
    if current.config.fork is None:
        yield missing_section_task(STAGE, "fork", DOC)
        return
    setup = sync_setup(current, dry_run, keep_backups)
    unchanged = Check("upstream, origin and the clone are where the last successful sync left them", nothing_moved, setup)
    yield {"basename": STAGE, "name": None, "doc": DOC, "uptodate": [True]}
    yield subtask("fetch", "clone the fork if missing, check it, fetch upstream (with tags) and origin, and plan",
                  fetch_action, setup, demo_task_deps(current),
                  [Check("the remotes and the clone show nothing new since a fetch found nothing to do",
                         sync_check.nothing_to_fetch, setup)])
    yield subtask("main", "fast-forward main to upstream's main (stops if it cannot)",
                  main_action, setup, ["sync:fetch"], [unchanged])
    yield subtask("release", "back up release, then fast-forward it or rebase its custom commits onto main",
                  release_action, setup, ["sync:main"], [unchanged])
    yield subtask("push", "push main, and release with --force-with-lease, atomically; prune old backups",
                  push_action, setup, ["sync:release"], [unchanged])


def subtask(name: str, doc: str, action: Any, setup: SyncSetup, deps: list[str], uptodate: list[Any]) -> dict[str, Any]:
    return {
        "basename": STAGE,
        "name": name,
        "doc": doc,
        "actions": [guarded(partial(action, setup))],
        "task_dep": deps,
        "uptodate": uptodate,
        "verbosity": 2,
    }


@dataclass(frozen=True)
class SyncSetup:
    """What the sync works on, from the config (no I/O to build it)."""

    settings: Settings
    fork: Path
    upstream_url: str
    origin_url: str
    main: str
    release: str
    upstream_main: str
    keep_backups: int
    push_backups: bool = True
    dry_run: bool = False

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir / STAGE

    @property
    def fingerprint(self) -> str:
        """Changes whenever the [fork] section does, so a changed config is never up to date."""
        fork = self.settings.config.fork
        return json.dumps(fork.model_dump() if fork else {}, sort_keys=True)

    def dry(self) -> bool:
        return is_dry_run(self.dry_run) or plan_only("sync")


def sync_setup(current: Settings, dry_run: bool = False, keep_backups: int = -1) -> SyncSetup:
    fork = current.config.fork
    assert fork is not None and current.fork_path is not None
    return SyncSetup(
        settings=current,
        fork=current.fork_path,
        upstream_url=current.remote(fork.upstream),
        origin_url=current.remote(fork.origin),
        main=fork.main,
        release=fork.release,
        upstream_main=fork.upstream_main,
        keep_backups=keep_backups if keep_backups >= 0 else fork.keep_backups,
        push_backups=fork.push_backups,
        dry_run=dry_run,
    )


# -- state shared by the four tasks ------------------------------------------------------------


@dataclass
class RunState:
    """What sync:fetch saw and planned, and what the later tasks did; saved between tasks."""

    dry_run: bool
    plan: SyncPlan
    observed: Stamp
    original_branch: str | None
    original_sha: str | None
    cloned: bool = False
    main_new: str | None = None
    release_new: str | None = None
    rebased: list[dict[str, Any]] = field(default_factory=list)
    backup: str | None = None
    backups: list[str] = field(default_factory=list)
    backup_tips: dict[str, str] = field(default_factory=dict)
    origin_backups: dict[str, str] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    pruned_on_origin: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["plan"] = self.plan.to_dict()
        data["observed"] = asdict(self.observed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        values = dict(data)
        values["plan"] = SyncPlan.from_dict(data["plan"])
        values["observed"] = Stamp(**data["observed"])
        return cls(**values)


def save_json(file: Path, data: dict[str, Any]) -> None:
    """Write state atomically (compact: it is rewritten after every step)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_suffix(f".{os.getpid()}.tmp")
    temp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    temp.replace(file)


def load_json(file: Path) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return loaded


def save_state(setup: SyncSetup, state: RunState) -> None:
    save_json(setup.state_dir / "run.json", state.to_dict())


def load_state(setup: SyncSetup) -> RunState:
    data = load_json(setup.state_dir / "run.json")
    if data is None:
        raise SyncError("no sync plan found", where=str(setup.state_dir / "run.json"),
                        fix="run `doit sync` (sync:fetch makes the plan the other sync tasks follow)")
    return RunState.from_dict(data)


def load_stamp(setup: SyncSetup) -> Stamp | None:
    data = load_json(setup.state_dir / "stamp.json")
    return Stamp(**data) if data else None


def nothing_moved(setup: SyncSetup, *_: Any) -> bool:
    """doit `uptodate`: the tips seen at this fetch are those the last successful sync left."""
    data = load_json(setup.state_dir / "run.json")
    stamp = load_stamp(setup)
    return bool(data and stamp and Stamp(**data["observed"]) == stamp)


# -- sync:fetch ----------------------------------------------------------------------------------


def fetch_action(setup: SyncSetup) -> dict[str, str]:
    dry = setup.dry()
    forget_last_run(setup)
    try:
        state = fetch_and_plan(setup, dry)
    except ForkflowError as err:
        write_failure(setup, err, dry)
        raise
    save_state(setup, state)
    for line in plan_lines(state.plan):
        say(line)
    if state.observed == load_stamp(setup):
        say("nothing moved since the last sync: up to date")
        state.main_new, state.release_new = state.plan.main.start, state.plan.release.start
        write_sync_report(setup, state, "up-to-date")
        sync_check.remember(setup)
        return {"made": "up to date"}
    return {"made": plan_summary(state.plan, dry)}


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


def fetch_and_plan(setup: SyncSetup, dry: bool) -> RunState:
    """Everything before the first change: remotes answer, clone, pre-flight, fetch, plan.

    The remotes are asked and an existing clone is looked at in one go (all reads);
    the checks then run in their usual order.
    """
    git = Git(setup.fork, dry_run=dry)
    clone = is_clone(setup.fork)
    upstream, origin, *reads = together(*remote_asks(setup), *(clone_reads(git, setup) if clone else []))
    upstream_heads, origin_heads = remote_heads(setup, upstream, origin)
    if not clone:
        if dry:
            return plan_in_temporary_clone(setup, upstream_heads, origin_heads)
        from tasks.checkout import clone_action

        clone_action(setup.origin_url, setup.upstream_url, setup.fork, setup.release)
        fresh = Git(setup.fork)
        return plan_clone(setup, fresh, upstream_heads, origin_heads, read_clone(fresh, setup), dry, cloned=True)
    return plan_clone(setup, git, upstream_heads, origin_heads, CloneReads(*reads), dry)


def is_clone(path: Path) -> bool:
    return (path / ".git").exists()


def remote_asks(setup: SyncSetup) -> list[Callable[[], dict[str, str]]]:
    """ls-remote of upstream's main and of origin's main and release (nothing changes)."""
    setup.state_dir.mkdir(parents=True, exist_ok=True)
    probe = Git(setup.state_dir)
    return [partial(ask_remote, probe, UPSTREAM, setup.upstream_url, setup, setup.upstream_main),
            partial(ask_remote, probe, ORIGIN, setup.origin_url, setup, setup.main, setup.release, prefix=BACKUP_PREFIX)]


def remote_heads(setup: SyncSetup, upstream: Outcome, origin: Outcome) -> tuple[dict[str, str], dict[str, str]]:
    """Both remotes answer, and upstream has its main branch."""
    upstream_heads: dict[str, str] = upstream.get()
    if setup.upstream_main not in upstream_heads:
        raise SyncError(
            f"upstream {setup.upstream_url} has no branch {setup.upstream_main!r}",
            where=f"[fork] upstream_main in {setup.settings.config_file}",
            fix=f"set [fork] upstream_main to upstream's main branch (see: git ls-remote --heads {setup.upstream_url})",
        )
    origin_heads: dict[str, str] = origin.get()
    return upstream_heads, origin_heads


def ask_remote(probe: Git, name: str, url: str, setup: SyncSetup, *branches: str,
               prefix: str | None = None) -> dict[str, str]:
    try:
        return probe.remote_heads(url, *branches, prefix=prefix)
    except CommandError as err:
        reason = "\n".join(err.what.splitlines()[1:]) or err.what
        raise SyncError(
            f"the {name} remote does not answer: {url}\n  git says:\n{reason}",
            where=f"[fork] {name} in {setup.settings.config_file}",
            fix=f"check the address and your access (`git ls-remote {url}` must work), or correct [fork] {name}",
        ) from None


@dataclass(frozen=True)
class CloneReads:
    """The clone as it is before the fetch: layout, uncommitted changes, remotes, origin's tracking refs."""

    layout: Outcome
    changes: Outcome
    remotes: Outcome
    tracking: Outcome


def clone_reads(git: Git, setup: SyncSetup) -> list[Callable[[], Any]]:
    """The reads behind CloneReads, in its order."""
    return [git.layout, git.changes, git.remote_urls, partial(git.refs, *origin_tracking_refs(setup))]


def read_clone(git: Git, setup: SyncSetup) -> CloneReads:
    return CloneReads(*together(*clone_reads(git, setup)))


def origin_tracking_refs(setup: SyncSetup) -> list[str]:
    return [f"refs/remotes/{ORIGIN}/{setup.main}", f"refs/remotes/{ORIGIN}/{setup.release}"]


def plan_in_temporary_clone(setup: SyncSetup, upstream_heads: dict[str, str], origin_heads: dict[str, str]) -> RunState:
    """Dry run with no clone yet: plan in a throwaway clone, so [fork] path is not created."""
    say(f"would clone {setup.origin_url} into {setup.fork}")
    with tempfile.TemporaryDirectory(prefix="forkflow-sync-") as temp:
        scratch = Path(temp) / "fork"
        Git(Path(temp)).write("clone", "--quiet", "--no-checkout", setup.origin_url, str(scratch))
        git = Git(scratch, dry_run=True)
        tracking = git.refs(*origin_tracking_refs(setup))
        tips = fetch_for_dry_run(git, setup, upstream_heads, origin_heads, tracking)
        nothing_local: dict[str, str | None] = {setup.main: None, setup.release: None}
        facts = gather_facts(git, setup, tips, nothing_local)
        return RunState(dry_run=True, plan=plan_sync(facts), observed=observed(setup, tips, nothing_local),
                        original_branch=setup.release, original_sha=None, cloned=True)


def plan_clone(setup: SyncSetup, git: Git, upstream_heads: dict[str, str], origin_heads: dict[str, str],
               reads: CloneReads, dry: bool, cloned: bool = False) -> RunState:
    layout = preflight(git, setup, reads)
    remotes: dict[str, str] = reads.remotes.get()
    check_remotes(remotes, setup)
    ensure_remotes(git, setup, remotes)
    tracking: dict[str, str] = reads.tracking.get()
    if dry:
        tips = fetch_for_dry_run(git, setup, upstream_heads, origin_heads, tracking)
    else:
        fetch(git, setup, origin_heads, tracking)
    found = git.refs(*tracked_refs(setup), f"refs/heads/{BACKUP_PREFIX}*")
    if not dry:
        tips = tips_after_fetch(setup, found, origin_heads)
    locals_ = {name: found.get(f"refs/heads/{name}") for name in (setup.main, setup.release)}
    facts = gather_facts(git, setup, tips, locals_)
    return RunState(dry_run=dry, plan=plan_sync(facts), observed=observed(setup, tips, locals_),
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


# -- sync:main and sync:release ---------------------------------------------------------------


def run_step(setup: SyncSetup, step: Any) -> str:
    """Run one step on the saved state and save it; a failure goes to the report before doit sees it."""
    state = load_state(setup)
    try:
        made: str = step(setup, state)
    except ForkflowError as err:
        write_failure(setup, err, state.dry_run, state)
        raise
    save_state(setup, state)
    say(made)
    return made


def main_action(setup: SyncSetup) -> dict[str, str]:
    return {"made": run_step(setup, sync_main)}


def sync_main(setup: SyncSetup, state: RunState) -> str:
    move = state.plan.main
    new = move.target if move.action == "fast-forward" else move.start
    if not state.dry_run:
        move_branch(Git(setup.fork), move.name, new, move.old, state.original_branch)
    state.main_new = new
    would = "would move: " if state.dry_run else ""
    if move.action == "fast-forward":
        return f"{would}{move.name} -> {new[:10]} (+{len(state.plan.upstream_commits)})"
    if move.old != new:
        return f"{would}{move.name} -> {new[:10]} (caught up with origin)"
    return f"{move.name} up to date"


def check_unmoved(git: Git, branch: str, seen: str | None, setup: SyncSetup) -> None:
    now = git.rev(f"refs/heads/{branch}")
    if now != seen:
        raise SyncError(f"{branch!r} moved since the fetch ({short(seen)} -> {short(now)})", where=str(setup.fork),
                        fix="run `doit sync` again: it plans from the branches as they are now")


def move_branch(git: Git, branch: str, new: str, old: str | None, checked_out: str | None) -> None:
    """Fast-forward (or create) a branch; the checked-out one moves with its files.

    Any other branch moves only if it is still where the fetch saw it (update-ref checks that).
    """
    if new == old:
        return
    if old is not None and checked_out == branch:
        git.fast_forward_checked_out(new)
    else:
        git.update_branch(branch, new, old, fix="the branch moved since the fetch; run `doit sync` again")


def release_action(setup: SyncSetup) -> dict[str, str]:
    return {"made": run_step(setup, sync_release)}


def dry_release(setup: SyncSetup, state: RunState) -> str:
    move = state.plan.release
    if move.action == "rebase":
        say(f"would create backup branch {backup_name(datetime.now(UTC), state.backups)} at {move.start[:10]}")
        return f"would rebase {len(state.plan.custom_commits)} custom commit(s) of {move.name} onto {move.target[:10]}"
    state.release_new = move.target
    if move.old == move.target:
        return f"{move.name} up to date"
    return f"would move: {move.name} -> {move.target[:10]}"


def sync_release(setup: SyncSetup, state: RunState) -> str:
    if state.dry_run:
        return dry_release(setup, state)
    git = Git(setup.fork)
    move = state.plan.release
    if not state.plan.needs_backup:
        move_branch(git, move.name, move.target, move.old, state.original_branch)
        state.release_new = move.target
        return f"{move.name} -> {move.target[:10]}" if move.action == "fast-forward" else f"{move.name} up to date"
    if not git.knows_committer():
        fork = setup.fork
        raise SyncError("git has no committer identity, and rebasing writes commits", where=str(fork),
                        fix=f'git -C {fork} config user.name "Your Name" && git -C {fork} config user.email you@example.com')
    state.backup = make_backup(git, setup, move, state)
    save_state(setup, state)
    move_branch(git, move.name, move.start, move.old, state.original_branch)
    try:
        rebase_or_explain(git, setup, state)
    finally:
        return_to_original(git, state, move.name)
    after = commits(git, f"{move.target}..refs/heads/{move.name}")
    state.release_new = after[-1].sha if after else move.target
    state.rebased = [asdict(item) for item in pair_rebased(list(state.plan.custom_commits), after)]
    return f"rebased {len(after)} custom commit(s) of {move.name} onto {move.target[:10]} (backup {state.backup})"


def make_backup(git: Git, setup: SyncSetup, move: BranchMove, state: RunState) -> str:
    """The backup branch at the tip the plan starts from, in one transaction with the check that the
    release branch has not moved since the fetch; a backup already at that tip (a retry) is reused."""
    reused = reusable_backup(move.start, state.backup_tips, state.origin_backups)
    name = reused or backup_name(datetime.now(UTC), state.backups)
    seen = f" {move.old}" if move.old else ""
    create = [] if name in state.backup_tips else [f"create refs/heads/{name} {move.start}"]
    try:
        git.update_refs([f"verify refs/heads/{move.name}{seen}", *create], message="forkflow: sync backup")
    except CommandError:
        check_unmoved(git, move.name, move.old, setup)
        raise
    state.backup_tips[name] = move.start
    say(f"backup branch {name} at {move.start[:10]}" + (" (kept from an earlier try of this sync)" if reused else ""))
    return name


def rebase_or_explain(git: Git, setup: SyncSetup, state: RunState) -> None:
    """Rebase release onto the new main; on a conflict abort, check nothing moved, and explain."""
    move = state.plan.release
    code, output = git.rebase(move.target, move.name)
    if code == 0:
        return
    stopped = git.rev("REBASE_HEAD")
    conflict = Conflict(Commit(stopped, git.subject(stopped)) if stopped else None, tuple(git.conflicted_files()))
    layout = git.layout()
    if layout and git.operation_in_progress(layout.git_dir) == "rebase":
        git.abort_rebase()
    now = git.rev(f"refs/heads/{move.name}")
    if now != move.start:
        raise SyncError(f"{move.name!r} is at {short(now)} after aborting the rebase, expected {move.start[:10]}",
                        where=str(setup.fork), fix=f"restore it from the backup: git -C {setup.fork} branch -f "
                                                   f"{move.name} {state.backup}")
    if not conflict.files and conflict.commit is None:
        raise SyncError(f"rebasing {move.name!r} failed; it was aborted and {move.name!r} is unchanged\n{output}",
                        where=str(setup.fork), fix="fix the cause shown above, then run `doit sync` again")
    arguments = push_arguments(ORIGIN, plan_pushes(state.plan, move.target, "rebased"))
    hint = "git push " + " ".join(a for a in arguments if a != "--porcelain")
    raise conflict_error(conflict, str(setup.fork), move.name, move.target, state.backup, hint)


def return_to_original(git: Git, state: RunState, rebased: str) -> None:
    """After a rebase (done or aborted) HEAD is on the rebased branch; go back to where the user was."""
    if state.original_branch == rebased:
        return
    if state.original_branch or state.original_sha:
        git.checkout(state.original_branch, state.original_sha)


# -- sync:push -----------------------------------------------------------------------------------


def push_action(setup: SyncSetup) -> dict[str, str]:
    return {"made": run_step(setup, sync_push)}


def sync_push(setup: SyncSetup, state: RunState) -> str:
    made = push_and_prune(setup, state)
    if not state.dry_run:
        save_json(setup.state_dir / "stamp.json", asdict(after_sync(setup, state)))
    status = "skipped" if state.dry_run else ("updated" if changed_anything(state) else "up-to-date")
    write_sync_report(setup, state, status)
    return made


def push_and_prune(setup: SyncSetup, state: RunState) -> str:
    plan = state.plan
    main_new = state.main_new or plan.main.start
    release_new = state.release_new or "rebased"
    pushes = plan_pushes(plan, main_new, release_new)
    rewrites_release = any(p.branch == plan.release.name for p in pushes)
    backup, stale = backup_pushes(state.backup if rewrites_release and setup.push_backups else None,
                                  state.backup_tips.get(state.backup or ""), state.origin_backups, setup.keep_backups)
    pushes += backup
    arguments = push_arguments(ORIGIN, pushes)
    git = Git(setup.fork, dry_run=state.dry_run) if is_clone(setup.fork) else None
    if not pushes:
        made = "origin is up to date"
    elif state.dry_run or git is None:
        say("would run: git push " + " ".join(arguments))
        made = "would push " + ", ".join(p.branch for p in pushes)
    else:
        push_or_explain(git, setup, state, pushes, arguments)
        made = "pushed " + ", ".join(f"{p.branch} {p.new[:10]}" for p in pushes)
    state.pushed = [] if state.dry_run else [f"refs/heads/{p.branch}" for p in pushes if p not in backup]
    if backup and not state.dry_run:
        state.origin_backups.update({p.branch: p.new for p in backup})
    if git is not None:
        prune_backups(git, setup, state)
        if setup.push_backups:
            prune_origin_backups(git, state, stale)
    return made


def prune_origin_backups(git: Git, state: RunState, stale: list[Push]) -> None:
    """Delete origin's backups beyond keep_backups, each only if still where it was seen; never fails the sync."""
    if not stale:
        return
    names = ", ".join(p.branch for p in stale)
    if state.dry_run:
        say(f"would delete old backup branch(es) on origin: {names}")
        return
    code, output = git.push(["--porcelain", *[p.lease_option for p in stale if p.lease_option], ORIGIN,
                             *[p.refspec for p in stale]])
    if code != 0:
        warn(f"could not delete old backup branch(es) on origin ({names}); they are kept:\n{output.strip()}")
        return
    state.pruned_on_origin = [p.branch for p in stale]
    say(f"deleted {len(stale)} old backup branch(es) on origin: {names}")


def push_or_explain(git: Git, setup: SyncSetup, state: RunState, pushes: list[Push], arguments: list[str]) -> None:
    code, output = git.push(arguments)
    if code == 0:
        return
    rejected = [line for line in output.splitlines() if line.startswith("!") or "rejected" in line or "error" in line]
    try:
        now = git.remote_heads(ORIGIN, *[p.branch for p in pushes])
    except CommandError:
        now = {}
    moved = [f"    origin {p.branch}: {short(p.old)} at the fetch, now {short(now.get(p.branch))}"
             for p in pushes if now.get(p.branch) != p.old]
    backup = f"; the old release tip is in {state.backup}" if state.backup else ""
    fork = setup.fork
    raise SyncError(
        "origin refused the push and nothing was pushed (the push is atomic)"
        + (": origin changed since the fetch" if moved else "") + "\n"
        + "\n".join(f"    {line}" for line in rejected[:10]) + ("\n" + "\n".join(moved) if moved else "") + "\n"
        + f"  your local branches keep the synced result{backup}; nothing else was changed",
        where=f"{fork} -> {ORIGIN}",
        fix=f"look at what reached origin (git -C {fork} fetch origin && git -C {fork} log origin/{state.plan.release.name}); "
            f"to sync on top of it: git -C {fork} checkout {state.plan.main.name} && "
            f"git -C {fork} branch -f {state.plan.release.name} origin/{state.plan.release.name} && doit sync",
    )


def prune_backups(git: Git, setup: SyncSetup, state: RunState) -> None:
    existing = sorted({*state.backups, *([state.backup] if state.backup else [])})
    doomed = backups_to_prune(existing, setup.keep_backups, protect=state.backup)
    for name in doomed:
        git.delete_branch(name)
    if doomed and not state.dry_run:
        say(f"pruned {len(doomed)} old backup branch(es), keeping {setup.keep_backups}: {', '.join(doomed)}")
    state.pruned = [] if state.dry_run else doomed
    state.backups = [name for name in existing if name not in doomed] if not state.dry_run else existing
    if state.backups:
        say(f"backup branches ({len(state.backups)}): {', '.join(state.backups)}")


def after_sync(setup: SyncSetup, state: RunState) -> Stamp:
    """The stamp the next fetch must see for the sync to be up to date."""
    plan = state.plan
    pushed = set(state.pushed)
    origin_main = state.main_new if f"refs/heads/{plan.main.name}" in pushed else plan.origin_main
    origin_release = state.release_new if f"refs/heads/{plan.release.name}" in pushed else plan.origin_release
    return replace(state.observed, origin_main=origin_main, origin_release=origin_release,
                   main=state.main_new, release=state.release_new)


def changed_anything(state: RunState) -> bool:
    plan = state.plan
    return bool(state.pushed) or state.main_new != plan.main.old or state.release_new != plan.release.old


# -- report ------------------------------------------------------------------------------------


def write_sync_report(setup: SyncSetup, state: RunState, status: str, error: str | None = None) -> Path:
    plan = state.plan
    upstream = [c.to_dict() for c in plan.upstream_commits] if plan.main.action == "fast-forward" else []
    data: dict[str, Any] = {
        "status": status,
        "dry_run": state.dry_run,
        "fork": str(setup.fork),
        "upstream": {"ref": plan.upstream_ref, "sha": plan.upstream_main},
        "main": {"name": plan.main.name, "old": plan.main.start, "new": state.main_new, "action": plan.main.action,
                 "upstream_commits": upstream, "count": len(upstream)},
        "release": {"name": plan.release.name, "old": plan.release.start, "new": state.release_new,
                    "action": plan.release.action, "custom_commits": [c.to_dict() for c in plan.custom_commits],
                    "rebased": state.rebased},
        "backup": state.backup,
        "backups": state.backups,
        "pruned": state.pruned,
        "pruned_on_origin": state.pruned_on_origin,
        "origin_backups": sorted(set(state.origin_backups) - set(state.pruned_on_origin)),
        "pushed": state.pushed,
        "plan": plan_lines(plan, limit=50),
    }
    if error:
        data["error"] = error
    return write_report(STAGE, data, setup.settings)


def write_failure(setup: SyncSetup, err: ForkflowError, dry: bool, state: RunState | None = None) -> None:
    if state is not None:
        write_sync_report(setup, state, "failed", str(err))
        return
    write_report(STAGE, {"status": "failed", "dry_run": dry, "fork": str(setup.fork), "main": None, "release": None,
                         "backup": None, "backups": [], "pushed": [], "error": str(err)}, setup.settings)


def print_summary() -> int:
    """`python -m tasks.sync summary`: the last sync report as Markdown (for CI job summaries)."""
    report = read_report(STAGE)
    if report is None:
        print("## Sync: no report (the sync did not run)")
        return 1
    print(summary_markdown(report), end="")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["summary"]:
        print("usage: python -m tasks.sync summary", file=sys.stderr)
        sys.exit(2)
    sys.exit(print_summary())
