"""Child processes end with forkflow: none is left writing after forkflow is killed (even with SIGKILL).

Linux's PR_SET_PDEATHSIG asks the kernel to send a signal to a process when the thread that started it ends. Every
outside command forkflow runs gets SIGKILL that way (`tied`: through util-linux's `setpriv --pdeathsig KILL`, which
sets it and execs the command, or else a `preexec_fn`), and so does a worker process of `doit -n N`
(`end_with_parent`, called before each action), so killing doit ends its workers, and their commands, at once.

setpriv first: a `preexec_fn` makes Python fork the whole process instead of vfork, about ten times slower for a
process of doit's size, and a no-op run starts many short git commands.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:  # the symbols already loaded in this process (libc among them): no `ldconfig -p` run at every start
        return ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl


PRCTL = _prctl()  # resolved once here: a preexec_fn must not load libraries between fork and exec


def kill_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent ends (a no-op where Linux's prctl is missing)."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def end_with_parent() -> None:
    """In a worker process of `doit -n N`: end when doit ends, whatever the multiprocessing start method."""
    if multiprocessing.parent_process() is not None:
        kill_with_parent()


def setpriv() -> str | None:
    """util-linux's setpriv when it has --pdeathsig (2.33 and later), else None (looked up once per process: the first
    git commands of a run start at once, from several threads)."""
    with SETPRIV_LOOKUP:
        return _setpriv()


SETPRIV_LOOKUP = threading.Lock()


@functools.cache
def _setpriv() -> str | None:
    """Read from the program's own option table (getopt's long option names are NUL-ended strings in the binary),
    not by running `setpriv --help`, which costs a process."""
    found = shutil.which("setpriv") if PRCTL is not None else None
    if found is None:
        return None
    try:
        return found if b"pdeathsig\0" in Path(found).read_bytes() else None
    except OSError:
        return None


def tied(argv: list[str], path: str | None, cwd: str | None = None) -> tuple[list[str], Callable[[], None] | None]:
    """(argv, preexec_fn) that start argv (in `cwd`) so that it is killed when forkflow ends; FileNotFoundError
    when the program is not on `path`."""
    if PRCTL is None:
        return argv, None
    wrapper = setpriv()
    if wrapper is None:
        return argv, kill_with_parent
    return [wrapper, "--pdeathsig", "KILL", "--", program_path(argv[0], path, cwd), *argv[1:]], None


def program_path(program: str, path: str | None, cwd: str | None) -> str:
    """Where exec would find `program` (a name on `path`, or a path, relative to `cwd`); FileNotFoundError if nowhere."""
    if os.sep in program:
        found = Path(cwd or ".", program).absolute()  # not resolved: a venv's python is a symlink that must stay one
        if found.is_file() and os.access(found, os.X_OK):
            return str(found)
        raise FileNotFoundError(program)
    located = shutil.which(program, path=path)
    if located is None:
        raise FileNotFoundError(program)
    return located
