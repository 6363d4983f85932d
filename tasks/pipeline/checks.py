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
        task.value_savers.append(lambda: {FILE_STATS: file_stats(task.file_dep)})

    def __call__(self, task: Any, values: Any) -> Any:
        if is_forgotten(task.name):
            self.reason = "forgotten (doit forget)"
            return False
        result = self.func(*self.args, task, values)
        self.reason = None if result else changed_files(task, values) or getattr(result, "reason", None) \
            or f"not so: {self.says}"
        return result


FILE_STATS = "_file_stats"


def file_stats(files: Any) -> dict[str, list[int]]:
    """Size and modification time of each file dependency, kept with the task's values after a success."""
    found = {}
    for name in sorted(files):
        try:
            stat = Path(name).stat()
        except OSError:
            continue
        found[name] = [stat.st_size, stat.st_mtime_ns]
    return found


def changed_files(task: Any, values: Any) -> str | None:
    """"changed: <files>" when a check says no and some of the task's file dependencies changed since its last
    success (doit stops at the first check that says no, so it would not name them itself)."""
    saved = (values or {}).get(FILE_STATS)
    if not isinstance(saved, dict) or not task.file_dep:
        return None
    now = file_stats(task.file_dep)
    changed = [name for name in sorted(task.file_dep) if now.get(name) != saved.get(name)]
    return changed_text(changed) if changed else None


def changed_text(paths: list[str]) -> str:
    """`changed: a/x.py, b/y.toml ...` (at most three names)."""
    names = short_names(paths)
    return "changed: " + ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def short_names(paths: list[str]) -> list[str]:
    """Each path by its shortest tail (its folder and name at least) that tells it from the others
    (`orbit-aws/pyproject.toml`, not the full path)."""
    parts = [Path(path).parts for path in paths]
    names = []
    for mine in parts:
        depth = min(2, len(mine))
        while depth < len(mine) and sum(other[-depth:] == mine[-depth:] for other in parts) > 1:
            depth += 1
        names.append("/".join(mine[-depth:]))
    return names


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


class KeepFileDeps:
    """The last action of a task whose input files may appear during the run (the fork's files after the first
    checkout): the ones that exist now join its file_deps, so doit saves their state with the task's success
    and the next run, which lists them from the start, does not count them as changed."""

    def __init__(self, files: Callable[[], list[Path]]):
        self.files = files

    def __str__(self) -> str:
        return " note the input files that exist now as file dependencies"

    def __call__(self, task: Any) -> None:
        task.file_dep.update(str(file) for file in self.files() if file.is_file())


# -------------------------------------------------------------- what `doit forget` forgot


def forgotten_file() -> Path:
    from tasks.pipeline.settings import settings

    return settings().state_dir / FORGOTTEN


def read_forgotten() -> dict[str, Any]:
    from tasks.pipeline.settings import read_json

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
    from tasks.pipeline.settings import write_json

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


def report_intact(stage: str, key: str | None = None) -> Check:
    """An up-to-date check: reports/<stage>.json reads as a report (with a `key` list). A corrupt report is then
    made again by its own task, which its readers' advice ("run `doit <stage>`") relies on."""
    return Check(f"reports/{stage}.json reads as a report", report_reads, stage, key)


def report_reads(stage: str, key: str | None, task: Any = None, values: Any = None) -> bool | Stale:
    from tasks.pipeline.report_facts import report_facts
    from tasks.pipeline.settings import read_report

    facts = report_facts(stage)
    if facts is None:
        read_report(stage)  # a corrupt one is set aside, with one warning, as its readers would
        return Stale(f"reports/{stage}.json is missing or unreadable")
    if key is not None and key not in facts["lists"]:
        return Stale(f"reports/{stage}.json has no {key!r} list")
    return True
