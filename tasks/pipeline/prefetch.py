"""Questions a run's up-to-date checks will ask other processes, sent together as the run starts.

A no-op run spends most of its time waiting for answers: the local services'
health, each Prefect server's deployment signals. dodo.py sends those
questions here at once, in daemon threads (a server that does not answer never
holds up the exit), while doit is still loading. A check takes its answer with
`answer(key, ask)`: the early one once, or its own when nothing was sent early
(a forked worker, a second look, a task run on its own). Checks that share one
question (every image check reads one listing of the Docker engine) take it
with `shared(key, ask)`: asked once, kept until an action runs.
"""

from __future__ import annotations

import _thread
import os
import threading
from collections.abc import Callable
from typing import Any


class Early:
    """One question asked in its own thread; its answer, or the error it raised."""

    def __init__(self, ask: Callable[[], Any]):
        self.pid = os.getpid()
        self.ask = ask
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        # a bare thread: started without waiting for it to run (threading.Thread.start waits, and while the other
        # questions' threads hold the interpreter that wait is most of what sending a question costs); like a
        # daemon thread it never holds up the exit
        _thread.start_new_thread(self.run, ())

    def run(self) -> None:
        try:
            self.value = self.ask()
        except BaseException as err:  # handed to the check that takes the answer, which reports it
            self.error = err
        finally:
            self.done.set()

    def result(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


SENT: dict[str, Early] = {}


def send(key: str, ask: Callable[[], Any]) -> None:
    """Ask now; `answer(key, ...)` takes the answer later."""
    SENT[key] = Early(ask)


def answer(key: str, ask: Callable[[], Any]) -> Any:
    """The answer sent early under `key` (taken once), else `ask()` now."""
    early = SENT.pop(key, None)
    if early is None or early.pid != os.getpid():
        return ask()
    return early.result()


def shared(key: str, ask: Callable[[], Any]) -> Any:
    """The answer under `key`, asked once (early, or now by the first check that needs it) and kept for every
    check of the run until an action runs: the image checks all read one listing of the engine's images."""
    early = SENT.get(key)
    if early is None or early.pid != os.getpid():
        early = SENT[key] = Early(ask)
    return early.result()


def forget_all() -> None:
    """An action is about to run: what was asked before may no longer hold, so later checks ask again."""
    SENT.clear()


