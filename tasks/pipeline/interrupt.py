"""Ctrl-C ends a run with one line, not a traceback."""

from __future__ import annotations

import sys
from types import TracebackType

INTERRUPTED = ("forkflow: interrupted; the commands it started ended with it. Run the same command again: "
               "what finished is not redone, and what was under way is checked and redone or completed.")


def one_line_on_interrupt() -> None:
    """Install an excepthook that says INTERRUPTED for a KeyboardInterrupt (Python still exits as killed by
    SIGINT, 130 in a shell) and leaves every other exception to the hook before it."""
    before = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print(f"\n{INTERRUPTED}", file=sys.stderr, flush=True)
            return
        before(kind, error, trace)

    sys.excepthook = hook
