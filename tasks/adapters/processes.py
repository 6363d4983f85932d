"""Child processes end with forkflow: none is left writing after forkflow is killed (even with SIGKILL).

Linux's PR_SET_PDEATHSIG asks the kernel to send a signal to a process when the thread that started it ends. Every
outside command forkflow runs gets SIGKILL that way (`kill_with_parent`, the `preexec_fn` of tasks.adapters.run), and
so does a worker process of `doit -n N` (`end_with_parent`, called before each action), so killing doit ends its
workers, and their commands, at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
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
