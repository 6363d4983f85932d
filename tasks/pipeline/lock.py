"""One run per state folder: a second doit run on the same `.forkflow/` refuses to start."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from tasks.core.errors import StateLocked
from tasks.pipeline.heal import treat_as_missing

READ_ONLY_COMMANDS = {"list", "help", "info", "dumpdb", "strace", "tabcompletion", "graph"}
OPTIONS_WITH_VALUES = {"-f", "--file", "-d", "--dir", "--db-file", "--backend", "-r", "--reporter", "-n", "--process",
                       "-P", "--parallel-type", "-o", "--output-file", "-v", "--verbosity", "--check_file_uptodate"}
_held: list[IO[str]] = []


def command_of(argv: list[str]) -> str:
    """The doit command in argv ('run' when only tasks or options are given)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in OPTIONS_WITH_VALUES:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return "run"


DOIT_COMMANDS = READ_ONLY_COMMANDS | {"run", "clean", "forget", "ignore", "reset-dep", "auto"}


def runs_tasks(argv: list[str]) -> bool:
    """`doit`, `doit run ...` or `doit <task> ...`: a run of tasks, not another doit command."""
    return command_of(argv) not in DOIT_COMMANDS - {"run"}


def worker_processes(argv: list[str]) -> int:
    """The number of worker processes `-n N` / `--process N` asks for (1 when not given)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-n", "--process"):
            value = next(args, "")
        elif arg.startswith("--process="):
            value = arg.removeprefix("--process=")
        elif arg.startswith("-n") and len(arg) > 2:
            value = arg[2:]
        else:
            continue
        return int(value) if value.isdigit() else 1
    return 1


def named_tasks(argv: list[str]) -> list[str]:
    """The tasks (and their parameters) named after `doit [run]`; [] for a bare `doit`."""
    args = iter(argv[1:])
    named: list[str] = []
    for arg in args:
        if arg in OPTIONS_WITH_VALUES:
            next(args, None)
        elif not arg.startswith("-") or named:
            named.append(arg)
    return named[1:] if named[:1] == ["run"] else named


def hold_state_lock(state_dir: Path) -> None:
    """Take the state folder's lock for the life of this process, or explain who has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    file = state_dir / "run.lock"
    if file.is_symlink() or (file.exists() and not file.is_file()):
        treat_as_missing(file, "not a plain file", "and a new lock file is made")
    handle = file.open("a+", encoding="utf-8")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise StateLocked(
            f"another forkflow run (pid {owner}) is using {state_dir}",
            where=str(file),
            fix="wait for it to finish; two runs on one state folder would corrupt its state",
        ) from None
    with contextlib.suppress(OSError):  # the pid only informs a second run; a full disk must not stop this one
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)  # unbuffered: nothing left to fail at exit
    _held.append(handle)
    atexit.register(handle.close)  # the lock ends with the process; closing says so before teardown
