"""`[fork] protected = true`: origin's release branch takes changes only through pull requests.

The synced release (fast-forwarded or rebased) goes to a branch `sync/<release>-<YYYYMMDD>` in the clone
and on origin, pushed with a lease; the release branch is left where origin has it, and `doit
sync-github` opens (or updates) the pull request from that branch into it. While origin still has an
earlier `sync/<release>-*` branch (its pull request not merged and deleted yet), the newest one is
reused, so its open pull request is updated instead of a second one being opened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tasks.adapters.git import Git
from tasks.core.errors import CommandError
from tasks.core.sync import Push, SyncError, plan_pushes
from tasks.stages.sync.check import ORIGIN
from tasks.stages.sync.setup import SyncSetup
from tasks.stages.sync.state import RunState

PREFIX = "sync/"


def branch_prefix(release: str) -> str:
    return f"{PREFIX}{release}-"


def choose_sync_branch(git: Git | None, setup: SyncSetup, state: RunState) -> None:
    """Origin's newest `sync/<release>-*` branch, else a new one named with today's date (UTC)."""
    if state.sync_branch is not None:
        return
    prefix = branch_prefix(setup.release)
    found: dict[str, tuple[str, str]] = {}
    if git is not None:
        try:
            found = git.remote_listing(ORIGIN, f"refs/heads/{prefix}*")
        except CommandError as err:
            raise SyncError(f"could not list origin's {prefix}* branches", where=f"{setup.fork} -> {ORIGIN}",
                            fix="check that origin answers (git ls-remote origin), then run `doit sync` again") from err
    names = sorted(ref.removeprefix("refs/heads/") for ref in found if ref.startswith(f"refs/heads/{prefix}"))
    if names:
        state.sync_branch = names[-1]
        state.sync_branch_origin = found[f"refs/heads/{names[-1]}"][0]
    else:
        state.sync_branch = prefix + datetime.now(UTC).strftime("%Y%m%d")
        state.sync_branch_origin = None


def release_ref_update(setup: SyncSetup, state: RunState, tip: str) -> str:
    """The `update-ref --stdin` line that records the rebased release: the release branch itself, or,
    when protected, the sync branch (created or moved; origin's copy is guarded by the push's lease)."""
    move = state.plan.release
    if setup.protected and state.sync_branch:
        return f"update refs/heads/{state.sync_branch} {tip}"
    return f"update refs/heads/{move.name} {tip} {move.start}"


def release_pushes(setup: SyncSetup, state: RunState, main_new: str, release_new: str) -> list[Push]:
    """What the sync pushes for main and release: the release itself, or, when protected, the sync branch
    (only when the release has something origin's release lacks and the sync branch does not hold yet)."""
    pushes = plan_pushes(state.plan, main_new, release_new)
    if not setup.protected or not state.sync_branch:
        return pushes
    release = state.plan.release.name
    kept = [push for push in pushes if push.branch != release]
    if len(kept) == len(pushes) or release_new == state.sync_branch_origin:
        return kept
    old = state.sync_branch_origin
    return [*kept, Push(state.sync_branch, old, release_new, lease=old or "")]


def same_as_on_origin(git: Git, state: RunState, tip: str) -> str:
    """Origin's sync branch tip when it already holds this result (on the same main, the same commits by
    subject, the same files); else `tip`. A rebase's new copies differ only in their dates, and pushing
    them would only stir the pull request."""
    old, onto = state.sync_branch_origin, state.plan.release.target
    if not old or not state.sync_branch:
        return tip
    try:
        git.fetch_objects(ORIGIN, [f"refs/heads/{state.sync_branch}"])
    except CommandError:
        return tip
    if not git.ok("merge-base", "--is-ancestor", onto, old):
        return tip
    same_files = git.read("rev-parse", f"{old}^{{tree}}") == git.read("rev-parse", f"{tip}^{{tree}}")
    same_commits = [s for _, s in git.commits(f"{onto}..{old}")] == [s for _, s in git.commits(f"{onto}..{tip}")]
    return old if same_files and same_commits else tip


def fast_forward_branch(git: Git, state: RunState) -> str:
    """Protected, with no custom commits to rebase: the sync branch points at the new main."""
    move = state.plan.release
    state.release_new = move.target
    if move.target == move.start:
        return f"{move.name} up to date"
    git.update_refs([f"update refs/heads/{state.sync_branch} {move.target}"], message="forkflow: sync")
    return f"{state.sync_branch} -> {move.target[:10]} (for a pull request into {move.name})"


def local_release(setup: SyncSetup, state: RunState) -> str | None:
    """Where the clone's release branch is after the sync: protected, where origin's is."""
    return state.plan.release.start if setup.protected else state.release_new


def protected_part(setup: SyncSetup, state: RunState) -> dict[str, Any] | None:
    """The report's `protected` entry: the sync branch, the release it is for, and whether it was pushed."""
    if not setup.protected:
        return None
    ref = f"refs/heads/{state.sync_branch}" if state.sync_branch else None
    return {"branch": state.sync_branch, "base": setup.release, "head": state.release_new,
            "origin_before": state.sync_branch_origin, "pushed": ref is not None and ref in state.pushed}
