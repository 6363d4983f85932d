"""doit `uptodate` checks and `clean` actions that say what they do, and a `doit forget` that forgets them too.

A stage's up-to-date check reads forkflow's own stamps (so a fresh CI runner
with an empty doit database still trusts what is already built). doit's
`forget` only clears doit's database, so `dodo.py` records, while doit
forgets, which tasks were forgotten; their checks then answer "run" until the
task has run once more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

FORGOTTEN = "forgotten.json"


class Stale:
    """A check's "not up to date" that says why (falsy, as doit expects); the summary's why column shows it."""

    def __init__(self, reason: str):
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Stale({self.reason!r})"


class Check:
    """An uptodate check named by what it checks: `doit info` shows `says`, the summary shows `reason`."""

    def __init__(self, says: str, func: Callable[..., Any], *args: Any):
        self.says = says
        self.func = func
        self.args = args
        self.reason: str | None = None

    def __str__(self) -> str:
        return self.says

    __repr__ = __str__

    def configure_task(self, task: Any) -> None:
        inner = getattr(self.func, "configure_task", None)
        if inner is not None:
            inner(task)
        task.value_savers.append(lambda: remembered(task.name))

    def __call__(self, task: Any, values: Any) -> Any:
        if is_forgotten(task.name):
            self.reason = "forgotten (doit forget)"
            return False
        result = self.func(*self.args, task, values)
        self.reason = None if result else getattr(result, "reason", None) or f"{self.says}: no"
        return result


class Cleaner:
    """A `clean` action that `doit clean -n` describes in words."""

    def __init__(self, says: str, func: Callable[..., Any], *args: Any):
        self.says = says
        self.func = func
        self.args = args

    def __str__(self) -> str:
        return " " + self.says  # doit shows str(callable)[1:]

    def __call__(self) -> Any:
        return self.func(*self.args)


# -------------------------------------------------------------- what `doit forget` forgot


def forgotten_file() -> Path:
    from tasks.context import settings

    return settings().state_dir / FORGOTTEN


def read_forgotten() -> dict[str, Any]:
    from tasks.context import read_json

    return read_json(forgotten_file()) or {}


def is_forgotten(name: str) -> bool:
    data = read_forgotten()
    if not data:
        return False
    return name in data.get("tasks", []) or (bool(data.get("all")) and name not in data.get("ran", []))


def remembered(name: str) -> dict[str, Any]:
    """After a successful run: the task is no longer forgotten (a doit value saver; saves nothing itself)."""
    data = read_forgotten()
    if data:
        data["tasks"] = [t for t in data.get("tasks", []) if t != name]
        if data.get("all"):
            data["ran"] = sorted({*data.get("ran", []), name})
        if data["tasks"] or data.get("all"):
            write_forgotten(data)
        else:
            forgotten_file().unlink(missing_ok=True)
    return {}


def write_forgotten(data: dict[str, Any]) -> None:
    from tasks.context import write_json

    write_json(forgotten_file(), data)


def record_forgets() -> None:
    """Called by dodo.py for `doit forget`: note each task doit removes from its database."""
    from doit.dependency import Dependency

    setup = Dependency.__init__

    def recording(self: Any, *args: Any, **kwargs: Any) -> None:
        setup(self, *args, **kwargs)
        remove, remove_all = self.remove, self.remove_all

        def forget_one(task_id: str) -> None:
            remove(task_id)
            data = read_forgotten()
            data["tasks"] = sorted({*data.get("tasks", []), task_id})
            write_forgotten(data)

        def forget_all() -> None:
            remove_all()
            write_forgotten({"all": True, "ran": [], "tasks": []})

        self.remove, self.remove_all = forget_one, forget_all

    Dependency.__init__ = recording  # type: ignore[method-assign]
