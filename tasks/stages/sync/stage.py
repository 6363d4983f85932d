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

from collections.abc import Iterator
from functools import partial
from typing import Any

from doit import task_params

from tasks.pipeline.actions import dry_run_param, guarded, missing_section_task
from tasks.pipeline.checks import Check, Stale
from tasks.pipeline.settings import settings
from tasks.pipeline.workspace import demo_task_deps
from tasks.stages.sync import check as sync_check
from tasks.stages.sync.setup import STAGE, SyncSetup, sync_setup

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


# The actions and the check that follow the fetch, imported when they run: `doit list` and a start that runs
# no sync task do not load the sync machinery.


def nothing_moved(setup: SyncSetup, *args: Any) -> bool | Stale:
    from tasks.stages.sync.unchanged import nothing_moved as unchanged  # not the planner: a no-op needs only this

    return unchanged(setup, *args) or Stale("upstream, origin or the clone moved since the last successful sync")


def fetch_action(setup: SyncSetup) -> dict[str, str]:
    from tasks.stages.sync.plan import fetch_action as fetch

    return fetch(setup)


def main_action(setup: SyncSetup) -> dict[str, str]:
    from tasks.stages.sync.steps import main_action as step

    return step(setup)


def release_action(setup: SyncSetup) -> dict[str, str]:
    from tasks.stages.sync.steps import release_action as step

    return step(setup)


def push_action(setup: SyncSetup) -> dict[str, str]:
    from tasks.stages.sync.steps import push_action as step

    return step(setup)


# -- state shared by the four tasks ------------------------------------------------------------


# -- sync:fetch ----------------------------------------------------------------------------------
