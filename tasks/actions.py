"""Helpers shared by the stage modules for building doit actions and tasks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from doit.exceptions import TaskFailed

from tasks.core.errors import ForkflowError
from tasks.core.secrets import mask, secret_values


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ForkflowError raised by an action into a clean doit failure (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ForkflowError as err:
            import os

            return TaskFailed(mask(str(err), secret_values(os.environ)))

    return wrapper


def missing_section_task(stage: str, section: str, doc: str) -> dict[str, Any]:
    """A task that explains a stage is not configured instead of failing obscurely."""

    def explain() -> dict[str, str]:
        print(f"{stage}: skipped: the config has no [{section}] section")
        return {"made": f"skipped (no [{section}])"}

    return {
        "basename": stage,
        "doc": f"{doc} (not configured: add a [{section}] section)",
        "actions": [explain],
        "uptodate": [False],
        "verbosity": 2,
    }


DRY_RUN_ENV = "FORKFLOW_DRY_RUN"


def dry_run_param() -> dict[str, Any]:
    """The `--dry-run` task parameter; FORKFLOW_DRY_RUN=1 turns it on for every task."""
    return {
        "name": "dry_run",
        "long": "dry-run",
        "type": bool,
        "default": False,
        "help": f"report what would change and change nothing (also: {DRY_RUN_ENV}=1)",
    }


def is_dry_run(param_value: bool = False) -> bool:
    import os

    return bool(param_value) or os.environ.get(DRY_RUN_ENV, "").lower() in ("1", "true", "yes")
