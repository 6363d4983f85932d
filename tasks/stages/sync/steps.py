"""sync:main, sync:release and sync:push: carry out the plan, backing up before any ref moves."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from tasks.adapters.console import say, warn
from tasks.adapters.git import Git
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.sync import (
    BranchMove,
    Commit,
    Conflict,
    Push,
    Rebased,
    SyncError,
    backup_name,
    backup_pushes,
    backups_to_prune,
    conflict_error,
    pair_rebased,
    push_arguments,
    reusable_backup,
    short,
)
from tasks.core.sync_stamp import Stamp
from tasks.core.sync_tags import MovedTag, TagPlan, place_moves, tag_pushes
from tasks.pipeline.lock import clone_lock
from tasks.pipeline.settings import write_json
from tasks.stages.sync.check import ORIGIN
from tasks.stages.sync.plan import commits, is_clone
from tasks.stages.sync.protected import (
    choose_sync_branch,
    fast_forward_branch,
    local_release,
    release_pushes,
    release_ref_update,
    same_as_on_origin,
)
from tasks.stages.sync.report import write_failure, write_sync_report
from tasks.stages.sync.setup import SyncSetup
from tasks.stages.sync.state import RunState, load_state, save_state
from tasks.stages.sync.tags import moved_tags, tag_ref_updates


def run_step(setup: SyncSetup, step: Any) -> str:
    """Run one step on the saved state and save it; a failure goes to the report before doit sees it."""
    state = load_state(setup)
    try:
        with clone_lock(setup.fork, setup.settings.state_dir):
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
    if state.resumed:
        return f"{move.name} at {short(state.main_new)} (moved by the interrupted sync)"
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
    if setup.protected:
        choose_sync_branch(Git(setup.fork) if is_clone(setup.fork) else None, setup, state)
    if state.dry_run:
        return dry_release(setup, state)
    if state.resumed:
        return f"{state.plan.release.name} at {short(state.release_new)} (rebased by the interrupted sync, backup {state.backup})"
    git = Git(setup.fork)
    move = state.plan.release
    if not state.plan.needs_backup:
        if setup.protected:
            move_branch(git, move.name, move.start, move.old, state.original_branch)
            return fast_forward_branch(git, state)
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
    applied = False
    try:
        tip, after = rebase_or_explain(git, setup, state)
        kept = same_as_on_origin(git, state, tip) if setup.protected else tip
        if kept != tip:
            tip, after = kept, commits(git, f"{move.target}..{kept}")
        pairs = pair_rebased(list(state.plan.custom_commits), after)
        moved = rebased_tags(git, setup, state, pairs)
        # saved before any ref moves: a sync interrupted from here on is finished by the next one (sync.resume)
        state.release_new = tip
        state.rebased = [asdict(item) for item in pairs]
        state.moved_tags = [asdict(tag) for tag in moved]
        save_state(setup, state)
        apply_rebase(git, setup, state, tip, moved)
        applied = True
    finally:
        return_to_original(git, state, attach=applied and not setup.protected)
    for tag in moved:
        say(f"moved tag {tag.line()}")
    into = f" into {state.sync_branch}, for a pull request" if setup.protected else ""
    return f"rebased {len(after)} custom commit(s) of {move.name} onto {move.target[:10]}{into} (backup {state.backup})"


def rebased_tags(git: Git, setup: SyncSetup, state: RunState, pairs: list[Rebased]) -> list[MovedTag]:
    """The fork's version tags on their rebased copies (tag objects only, no ref moves); a tagged commit
    without a copy stops the sync here."""
    plan = TagPlan.from_dict(state.tags)
    return moved_tags(git, place_moves(plan.move, pairs, str(setup.fork), state.plan.release.name))


def apply_rebase(git: Git, setup: SyncSetup, state: RunState, tip: str, moved: list[MovedTag]) -> None:
    """Point release at the rebased commits, and its version tags at their rebased copies, in one ref transaction."""
    move = state.plan.release
    local = {item.name: item.local for item in TagPlan.from_dict(state.tags).move}
    try:
        git.update_refs([release_ref_update(setup, state, tip), *tag_ref_updates(moved, local)],
                        message="forkflow: sync rebase")
    except CommandError:
        check_unmoved(git, move.name, move.start, setup)
        raise


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


def rebase_or_explain(git: Git, setup: SyncSetup, state: RunState) -> tuple[str, list[Commit]]:
    """Rebase release's commits onto the new main on a detached HEAD (the branch moves only once the result
    is checked) and return the new tip and the rebased commits (oldest first: the tip is the last, or the
    new main when every commit was already there); on a conflict abort, check nothing moved, and explain."""
    move = state.plan.release
    code, output = git.rebase(move.target, move.start)
    if code == 0:
        after = commits(git, f"{move.target}..HEAD")
        return (after[-1].sha if after else move.target), after
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
    arguments = push_arguments(ORIGIN, release_pushes(setup, state, move.target, "rebased"))
    hint = "git push " + " ".join(a for a in arguments if a != "--porcelain")
    for tag in TagPlan.from_dict(state.tags).move:
        lease = f" && git push --force-with-lease=refs/tags/{tag.name}:{tag.origin} origin refs/tags/{tag.name}" \
            if tag.origin else ""
        hint += (f"\n    # version tag {tag.name} is on {tag.commit[:10]} {tag.subject}: move it to its rebased commit\n"
                 f"    git tag -f {tag.name} <rebased commit>{lease}")
    error = conflict_error(conflict, str(setup.fork), move.name, move.target, state.backup, hint,
                           state.sync_branch if setup.protected else None)
    state.conflict = {"commit": conflict.commit.to_dict() if conflict.commit else None, "files": list(conflict.files),
                      "release": move.name, "onto": move.target, "backup": state.backup, "commands": error.fix}
    raise error


def return_to_original(git: Git, state: RunState, attach: bool = False) -> None:
    """After a rebase (done or aborted) HEAD is detached; go back to where the user was. When the user was on
    the release branch and it now points at the detached HEAD (`attach`), HEAD is pointed at it again: the
    files are already the rebased ones, so no checkout is needed."""
    if attach and state.original_branch == state.plan.release.name:
        git.attach_head(state.original_branch)
    elif state.original_branch or state.original_sha:
        git.checkout(state.original_branch, state.original_sha)


def push_action(setup: SyncSetup) -> dict[str, str]:
    return {"made": run_step(setup, sync_push)}


def sync_push(setup: SyncSetup, state: RunState) -> str:
    made = push_and_prune(setup, state)
    if not state.dry_run:
        write_json(setup.state_dir / "stamp.json", asdict(after_sync(setup, state)), compact=True)
    status = "skipped" if state.dry_run else ("updated" if changed_anything(state) else "up-to-date")
    write_sync_report(setup, state, status)
    return made


def push_and_prune(setup: SyncSetup, state: RunState) -> str:
    plan = state.plan
    main_new = state.main_new or plan.main.start
    release_new = state.release_new or "rebased"
    pushes = release_pushes(setup, state, main_new, release_new)
    rewrites_release = any(p.branch == plan.release.name for p in pushes)
    backup, stale = backup_pushes(state.backup if rewrites_release and setup.push_backups else None,
                                  state.backup_tips.get(state.backup or ""), state.origin_backups, setup.keep_backups)
    tags = TagPlan.from_dict(state.tags)
    tagged = tag_pushes(tags, [MovedTag(**tag) for tag in state.moved_tags])
    pushes += backup + tagged
    arguments = push_arguments(ORIGIN, pushes)
    git = Git(setup.fork, dry_run=state.dry_run) if is_clone(setup.fork) else None
    if not pushes:
        made = "origin is up to date"
    elif state.dry_run or git is None:
        say("would run: git push " + " ".join(arguments))
        made = "would push " + ", ".join(p.branch for p in pushes if p.kind == "heads")
        made += f"; would push {len(tags.push)} tag(s)" if tags.push else ""
        made += f"; would move tag(s) {', '.join(m.name for m in tags.move)}" if tags.move else ""
    else:
        push_or_explain(git, setup, state, pushes, arguments)
        made = "pushed " + ", ".join([f"{p.branch} {p.new[:10]}" for p in pushes if p.kind == "heads"]
                                     + ([f"{len(tagged)} tag(s)"] if tagged else []))
        if tagged:
            say("pushed tag(s): " + ", ".join(p.branch for p in tagged))
    state.pushed = [] if state.dry_run else [p.ref for p in pushes if p not in backup and p.kind == "heads"]
    state.pushed_tags = [] if state.dry_run else [p.branch for p in tagged]
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
        now = {ref: sha for ref, (sha, _) in git.remote_listing(ORIGIN, *[p.ref for p in pushes]).items()}
    except CommandError:
        now = {}
    moved = [f"    origin {p.ref}: {short(p.old)} at the fetch, now {short(now.get(p.ref))}"
             for p in pushes if now.get(p.ref) != p.old]
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
                   main=state.main_new, release=local_release(setup, state))


def changed_anything(state: RunState) -> bool:
    plan = state.plan
    return bool(state.pushed) or state.main_new != plan.main.old or state.release_new != plan.release.old
