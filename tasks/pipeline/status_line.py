"""A live status line at the foot of a terminal: what runs now, for how long, and how many tasks are done.

Shown only when the run's output is a terminal (not in CI, not with
TERM=dumb, not when FORKFLOW_STATUS=0) and doit runs the tasks in this
process: output written by forked workers would land on the line itself.
Everything the tasks and doit print passes above it, and it is gone when the
run ends, before the summary.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any


def wanted(single_process: bool, stream: Any = None) -> bool:
    out = stream or sys.stdout
    return bool(single_process and hasattr(out, "isatty") and out.isatty() and os.environ.get("CI") != "true"
                and os.environ.get("TERM", "") != "dumb" and os.environ.get("FORKFLOW_STATUS", "1") != "0")


class StatusLine:
    """The line itself (a rich Live display, drawn four times a second while started)."""

    def __init__(self) -> None:
        self.running: dict[str, float] = {}
        self.done = 0
        self.failed = 0
        self.live: Any = None

    def start(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=sys.__stdout__, highlight=False, soft_wrap=True)
        self.live = Live(console=console, get_renderable=self.render, refresh_per_second=4, transient=True,
                         redirect_stdout=True, redirect_stderr=True)
        self.live.start()
        atexit.register(self.stop)  # an interrupted run must not leave the cursor hidden

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    @property
    def active(self) -> bool:
        return self.live is not None

    def task_started(self, name: str) -> None:
        self.running[name] = time.monotonic()

    def task_ended(self, name: str, failed: bool = False) -> None:
        self.running.pop(name, None)
        self.done += 1
        self.failed += failed

    def text(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        parts = [f"{name} {now - started:.0f}s" for name, started in sorted(self.running.items(), key=lambda i: i[1])]
        done = f"{self.done} done" + (f", {self.failed} failed" if self.failed else "")
        return f"running: {', '.join(parts)}  ({done})" if parts else f"({done})"

    def render(self) -> Any:
        from rich.text import Text

        return Text(self.text(), style="bold" if self.running else "dim", no_wrap=True, overflow="ellipsis")
