"""One run per state folder: a second doit run on the same `.forkflow/` refuses to start."""

from __future__ import annotations

import atexit
import fcntl
import os
from pathlib import Path
from typing import IO

from tasks.core.errors import StateLocked

_held: list[IO[str]] = []


def hold_state_lock(state_dir: Path) -> None:
    """Take the state folder's lock for the life of this process, or explain who has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    file = state_dir / "run.lock"
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
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held.append(handle)
    atexit.register(handle.close)  # the lock ends with the process; closing says so before teardown
