"""A sync that was interrupted (killed, Ctrl-C) is finished by the next one.

The sync saves what it is about to do before each change (run.json: the plan, the backup, the rebased tip before
the branch moves), so the next sync:fetch can tell what the interrupted one left:

- a rebase of its own still in progress (killed mid-rebase): aborted, and HEAD goes back where the user had it;
- release rebased (and main moved) in the clone but not pushed, with origin still where that sync saw it: the
  same push is made, with the same lease, instead of planning again (a new plan would see the rebased release and
  origin's as diverged);
- release rebased but not pushed while origin's release moved (someone pushed): refused, saying how to sync on top
  of origin;
- anything else: planned again from the clone and remotes as they are (a backup already at the release tip is
  reused, so nothing is lost).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tasks.adapters.console import say
from tasks.adapters.git import Git
from tasks.core.sync import SyncError, short
from tasks.stages.sync.check import ORIGIN
from tasks.stages.sync.setup import SyncSetup
from tasks.stages.sync.state import RunState


def interrupted_run(setup: SyncSetup) -> RunState | None:
    """The run.json of a real sync that did not push (None after a dry run, a finished or unreadable one)."""
    from tasks.pipeline.settings import read_json

    try:
        data = read_json(setup.state_dir / "run.json")
        state = RunState.from_dict(data) if data else None
    except (KeyError, TypeError, ValueError):
        return None
    if state is None or state.dry_run or state.pushed or not state.backup:
        return None
    return state


def tidy_clone(setup: SyncSetup, old: RunState) -> None:
    """Abort the interrupted sync's own rebase and put HEAD back where the user had it."""
    git = Git(setup.fork)
    layout = git.layout()
    if layout is None:
        return
    if own_rebase(layout.git_dir, old):
        stale_lock = layout.git_dir / "index.lock"
        stale_lock.unlink(missing_ok=True)  # left by the killed rebase; this sync holds the clone's lock
        git.abort_rebase()
        say(f"aborted the rebase an interrupted sync left in {setup.fork}")
        layout = git.layout()
    if layout is not None and layout.branch is None and old.original_branch and not git.changes():
        git.checkout(old.original_branch)
        say(f"checked out {old.original_branch} again (an interrupted sync left HEAD detached)")


def own_rebase(git_dir: Path, old: RunState) -> bool:
    """A rebase in progress that the interrupted sync started (of the release tip it planned from)."""
    orig_head = git_dir / "rebase-merge" / "orig-head"
    if not orig_head.is_file():
        orig_head = git_dir / "rebase-apply" / "orig-head"
    return orig_head.is_file() and orig_head.read_text(encoding="utf-8").strip() == old.plan.release.start


def resumed_push(setup: SyncSetup, old: RunState) -> RunState | None:
    """The interrupted run's state, to push as it planned, when the clone and origin show exactly what it left:
    the local branches where it moved them, origin's where it saw them at its fetch; else None. When only origin
    moved (someone pushed since), the rebase it made is stale: SyncError with how to sync on top of origin."""
    if not old.release_new or old.release_new == old.plan.release.start:
        return None
    git = Git(setup.fork)
    main_new = old.main_new or old.plan.main.start
    local = {setup.main: git.rev(f"refs/heads/{setup.main}"), setup.release: git.rev(f"refs/heads/{setup.release}")}
    if local != {setup.main: main_new, setup.release: old.release_new}:
        return None
    origin = git.remote_heads(ORIGIN, setup.main, setup.release)
    if origin.get(setup.release) == old.release_new:
        return None  # its push landed before it was stopped: a new plan finds origin and the clone agreeing
    if origin.get(setup.release) != old.plan.origin_release:
        raise stale_rebase(setup, old, origin.get(setup.release))
    if origin.get(setup.main) != old.plan.origin_main:
        return None
    say(f"resuming an interrupted sync: {setup.release} was moved to {short(old.release_new)} (backup "
        f"{old.backup}) and not pushed; origin still has {short(old.plan.origin_release)}: pushing it with that lease")
    return replace(old, main_new=main_new, resumed=True)


def stale_rebase(setup: SyncSetup, old: RunState, now: str | None) -> SyncError:
    fork, release = setup.fork, setup.release
    return SyncError(
        f"{release!r} in the clone holds the rebase of an interrupted sync ({short(old.release_new)}, not pushed), "
        f"but origin's {release} moved since that sync's fetch ({short(old.plan.origin_release)} -> {short(now)}): "
        "someone pushed to it, so that rebase is out of date and is not pushed",
        where=f"{fork} -> {ORIGIN}",
        fix=f"sync again on top of what origin has (the old tip stays in backup {old.backup}): "
            f"git -C {fork} fetch origin && git -C {fork} checkout --detach && "
            f"git -C {fork} branch -f {release} origin/{release} && git -C {fork} checkout {old.original_branch or release}"
            " && doit sync",
    )
