"""Task `checkout`: the fork's working clone at `[fork] path`, cloned when missing.

An existing clone is never touched here (the `sync` stage owns branches and
remotes); this task only makes sure there is one, on the release branch, so
any stage can run on a fresh machine.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check
from tasks.pipeline.settings import settings
from tasks.pipeline.workspace import clone_action, demo_task_deps


def task_checkout() -> dict[str, Any]:
    """Clone the fork into [fork] path when it is missing."""
    current = settings()
    doc = "clone the fork into [fork] path (release branch) when missing; an existing clone is left alone"
    fork = current.config.fork
    if fork is None or current.fork_path is None:
        return missing_section_task("checkout", "fork", doc)
    return {
        "doc": doc,
        "actions": [guarded(partial(clone_action, current.remote(fork.origin), current.remote(fork.upstream),
                                    current.fork_path, fork.release))],
        "task_dep": demo_task_deps(current),
        "uptodate": [Check(f"a clone exists at {current.fork_path}", has_clone, current.fork_path)],
        "verbosity": 2,
    }


def has_clone(path: Path, *_: Any) -> bool:
    return (path / ".git").exists()


