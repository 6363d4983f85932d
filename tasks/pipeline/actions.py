"""Helpers shared by the stage modules for building doit actions and tasks."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

from doit.exceptions import TaskError, TaskFailed

from tasks.adapters import limits
from tasks.adapters.processes import end_with_parent
from tasks.core.errors import ConfigError, ForkflowError, disk_full
from tasks.core.secrets import mask, secret_values
from tasks.core.text import printable
from tasks.pipeline import prefetch
from tasks.pipeline.runmode import DRY_RUN_ENV, RunMode, installed, run_mode


class Guarded:
    """An action that turns a ForkflowError into a clean doit failure (no traceback): bad input (a ConfigError, e.g.
    an invalid deployment file) ends the run with exit code 2, any other failure with 1.

    It carries the run mode and the time bounds ([timeouts]) and installs them before the call, and it pickles
    with the standard pickle (no closure), so a worker of `doit -n N` runs the action with the run's mode under
    the fork, forkserver and spawn start methods.
    """

    def __init__(self, func: Callable[..., Any], mode: RunMode | None = None) -> None:
        self.func = func
        self.mode = mode or run_mode()
        self.limits = limits.limits()
        functools.update_wrapper(self, func)  # doit reads the signature (task, targets, params) through __wrapped__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        end_with_parent()
        limits.configure(self.limits)
        prefetch.forget_all()
        with installed(self.mode):
            try:
                return self.func(*args, **kwargs)
            except ConfigError as err:
                return TaskError(printable(mask(str(err), secret_values(os.environ))))
            except ForkflowError as err:
                return TaskFailed(printable(mask(str(err), secret_values(os.environ))))
            except OSError as err:
                full = disk_full(err)
                if full is None:
                    raise
                return TaskFailed(printable(mask(str(full), secret_values(os.environ))))


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """The action `func`, guarded (see Guarded)."""
    return Guarded(func)


def creation_errors_as_task(creator: Callable[[], Iterator[dict[str, Any]]]) -> Callable[[], Iterator[dict[str, Any]]]:
    """A task creator whose ForkflowError (a bad [packages] skip, a fork package without a name) becomes a
    `<stage>:config` subtask that fails with the message, instead of a traceback while doit loads tasks."""

    @functools.wraps(creator)
    def wrapper() -> Iterator[dict[str, Any]]:
        try:
            yield from creator()
        except ForkflowError as err:
            message = printable(mask(str(err), secret_values(os.environ)))
            yield {"name": "config", "doc": f"cannot make the tasks: {message.splitlines()[0]}",
                   "actions": [guarded(functools.partial(raise_again, err))], "uptodate": [False], "verbosity": 2}

    return wrapper


def raise_again(err: ForkflowError) -> None:
    raise err


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




def plan_only_note(stages: list[str]) -> str:
    named = {"sync": "doit sync", "publish": "doit publish", "image": "doit image", "deploy": "doit deploy"}
    return (f"forkflow: a bare `doit` builds and checks; the remote writes of {', '.join(stages)} are only planned "
            f"(\"would ...\"). Run them by name ({', '.join(named[s] for s in stages)}) or list them in "
            "default_writes in pipeline.toml.")


def plan_only(stage: str) -> bool:
    """True when a bare `doit` runs on a config without [demo] and this stage's remote writes are to be planned only."""
    return run_mode().plans_only(stage)


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
    """The task's own `--dry-run`, or the run's (`--dry-run` anywhere on the command line, FORKFLOW_DRY_RUN)."""
    return bool(param_value) or run_mode().dry_run


def dry_run_marker(task_name: str) -> Any:
    """A file saying the task's last run was a dry run (so doit must not call it up to date)."""
    from tasks.pipeline.settings import settings

    return settings().state_dir / "dry-runs" / task_name.replace(":", "__")


def note_dry_run(task_name: str, dry_run: bool) -> None:
    """Record (or clear, after a real run) that the task ran as a dry run."""
    marker = dry_run_marker(task_name)
    if dry_run:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def not_after_dry_run(task_name: str) -> Callable[..., bool]:
    """An `uptodate` check: a task whose last run was a dry run is never up to date."""

    def check(task: Any = None, *_: Any) -> bool:
        asked = bool(getattr(task, "options", None) and task.options.get("dry_run")) or is_dry_run()
        return not asked and not dry_run_marker(task_name).exists()

    return check
