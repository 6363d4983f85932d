"""doit's own database (`.forkflow/doit.db`) as state that heals itself.

doit stops every command on a database it cannot read ("remove the database
file(s)"), and a run whose final save fails (a full disk) ends in sqlite's
traceback with no summary. Here a corrupt database is set aside once, with a
warning, and the run re-checks every task as on a fresh clone (forkflow's
checks read their state from the work itself, so nothing done is lost); a
failed save is one message, then the summary, and the run exits 1.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from tasks.pipeline.heal import treat_as_missing


def heal_doit_db(file: Path) -> None:
    """Set `file` aside as `<file>.corrupt` when it is not a readable sqlite database (held under the state lock),
    and make a missing one now: a disk too full for it is one message (exit 1), not doit's advice to delete it."""
    problem = database_problem(file)
    if problem is not None:
        treat_as_missing(file, f"not a doit database: {problem}", "and this run re-checks every task as on a fresh clone")
    if not file.exists():
        failure = create_database(file)
        if failure is not None:
            print(f"forkflow: cannot create doit's database {file}: {failure}\n  where: {file}\n"
                  "  fix:   free disk space (or fix the folder's permissions) and run again", file=sys.stderr)
            raise SystemExit(1)


def create_database(file: Path) -> str | None:
    """Create doit's table as doit's sqlite backend does; why it failed, or None."""
    try:
        with closing(sqlite3.connect(file)) as conn:
            conn.execute("create table if not exists doit (task_id text not null primary key, task_data json)")
            conn.commit()
    except (sqlite3.Error, OSError) as err:
        for leftover in (file, file.with_name(file.name + "-journal")):
            leftover.unlink(missing_ok=True)
        return str(err)
    return None


def database_problem(file: Path) -> str | None:
    """Why `file` cannot be doit's database, or None (missing is fine: doit makes one; busy is fine: it is in use)."""
    if not file.exists() and not file.is_symlink():
        return None
    if file.is_dir():
        return "it is a folder"
    try:
        with closing(sqlite3.connect(f"file:{file}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("pragma quick_check").fetchone()
            conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.OperationalError as err:
        return None if "locked" in str(err) else str(err)
    except sqlite3.DatabaseError as err:
        return str(err)
    return None if verdict and verdict[0] == "ok" else f"integrity check: {verdict[0] if verdict else 'no answer'}"


def save_failure_message(file: str, err: BaseException) -> str:
    return (f"forkflow: doit could not save what this run did in {file}: {err}\n"
            f"  where: {file}\n"
            "  fix:   free disk space (or fix the folder's permissions) and run again; the tasks that ran are "
            "re-checked and their finished work is kept")


_unsaved: list[str] = []  # what doit could not record in its database during this run (a full disk)


def keep_summary_when_save_fails() -> None:
    """Make doit's runner turn a failed database write (after a task, or the final save) into one message: the run
    goes on, the summary still prints, the exit code is 1."""
    from doit.runner import FAILURE, Runner

    if getattr(Runner.finish, "heals", False):
        return
    keep_going_when_a_record_fails()
    one_message_when_a_command_cannot_write()

    def finish(self: Any) -> Any:
        try:
            self.dep_manager.close()
        except (sqlite3.Error, OSError) as err:
            note_unsaved(str(getattr(self.dep_manager, "name", "doit.db")), err)
        if _unsaved:
            self.final_result = max(self.final_result, FAILURE)
        self.teardown()
        self.reporter.complete_run()
        return self.final_result

    finish.heals = True  # type: ignore[attr-defined]
    Runner.finish = finish


def note_unsaved(file: str, err: BaseException) -> None:
    """Say once per run that doit's database could not be written."""
    if not _unsaved:
        print(save_failure_message(file, err), file=sys.stderr)
    _unsaved.append(str(err))


def keep_going_when_a_record_fails() -> None:
    """doit records each task's result as it ends (`save_success`, `remove_success`); a write that fails there
    (sqlite's "database or disk is full") ended the run with a traceback. Now the task is only not recorded: the
    next run checks it again."""
    from doit.dependency import Dependency

    for name in ("save_success", "remove_success"):
        original = getattr(Dependency, name)

        def recorded(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            try:
                return __original(self, *args, **kwargs)
            except (sqlite3.Error, OSError) as err:
                note_unsaved(str(getattr(self, "name", "doit.db")), err)
                return None

        setattr(Dependency, name, recorded)


def one_message_when_a_command_cannot_write() -> None:
    """`doit forget`, `ignore`, `reset-dep` write doit's database (and forkflow's forgotten.json) outside a run;
    on a full disk sqlite's error ended them with a traceback. Now: one message with the fix, exit 1. (dodo.py is
    loaded inside a command's `execute`, so the command's `_execute`, called after it, is what is wrapped.)"""
    from doit.cmd_base import DoitCmdBase

    pending = list(DoitCmdBase.__subclasses__())
    while pending:
        command = pending.pop()
        pending += command.__subclasses__()
        if "_execute" in vars(command) and not getattr(command._execute, "heals", False):
            command._execute = reported_when_unwritable(command._execute)


def reported_when_unwritable(original: Any) -> Any:
    from tasks.core.errors import disk_full

    @functools.wraps(original)  # doit passes `_execute` the options its signature names
    def _execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as err:
            if isinstance(err, OSError) and disk_full(err) is None:
                raise
            note_unsaved(str(getattr(getattr(self, "dep_manager", None), "name", None) or "doit.db"), err)
            return 1

    _execute.heals = True  # type: ignore[attr-defined]
    return _execute
