"""One run per state folder: a second doit run on the same `.forkflow/` refuses to start.

And one sync per fork clone: two configs with different state folders that name the same clone cannot sync it at
once (the lock is a file in the clone's .git, which git ignores).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import multiprocessing
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tasks.core.errors import StateLocked
from tasks.pipeline.heal import treat_as_missing

_held: list[IO[str]] = []
_clones: dict[Path, IO[str]] = {}
CLONE_LOCK = "forkflow-sync.lock"


def hold_state_lock(state_dir: Path) -> None:
    """Take the state folder's lock for the life of this process, or explain who has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    file = state_dir / "run.lock"
    if file.is_symlink() or (file.exists() and not file.is_file()):
        treat_as_missing(file, "not a plain file", "and a new lock file is made")
    handle = locked(file, lambda owner: StateLocked(
        f"another forkflow run (pid {owner}) is using {state_dir}", where=str(file),
        fix="wait for it to finish; two runs on one state folder would corrupt its state"))
    with contextlib.suppress(OSError):  # the pid only informs a second run; a full disk must not stop this one
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)  # unbuffered: nothing left to fail at exit
    _held.append(handle)
    atexit.register(handle.close)  # the lock ends with the process; closing says so before teardown


@contextmanager
def clone_lock(fork: Path, state_dir: Path) -> Iterator[None]:
    """Hold the fork clone's sync lock while a sync step runs; the doit process that holds the state lock keeps it
    until it ends (so no other state folder's sync can run between this run's steps); a worker of `doit -n N`, or a
    caller outside doit, holds it for the step only."""
    git_dir = fork / ".git"
    if not git_dir.is_dir() or fork.resolve() in _clones:
        yield
        return
    handle = take_clone_lock(git_dir / CLONE_LOCK, fork, state_dir)
    try:
        yield
    finally:
        if _held and multiprocessing.parent_process() is None:  # doit's own process, which holds the state lock
            _clones[fork.resolve()] = handle
            atexit.register(handle.close)
        else:
            handle.close()


def locked(file: Path, refusal: Callable[[str], StateLocked]) -> IO[str]:
    """`file` opened and locked for this process (the caller keeps or closes it); held elsewhere: `refusal` of the
    owner the file names."""
    handle = file.open("a+", encoding="utf-8")  # noqa: SIM115 - the caller keeps or closes it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise refusal(owner) from None
    return handle


def take_clone_lock(file: Path, fork: Path, state_dir: Path) -> IO[str]:
    handle = locked(file, lambda owner: StateLocked(
        f"another forkflow run ({owner}) is syncing the fork clone {fork}", where=str(file),
        fix="wait for it to finish, then run `doit sync` again; two syncs of one clone would move its branches "
            "under each other"))
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, state folder {state_dir}\n")
    handle.flush()
    return handle
