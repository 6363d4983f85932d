"""Independent read-only calls (git commands, remote questions) run at the same time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from threading import Thread
from typing import Any


@dataclass
class Outcome:
    """What a call returned, or the error it raised."""

    value: Any = None
    error: Exception | None = None

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def together(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run independent read-only calls at the same time and wait for all; their outcomes, in order."""
    outcomes = [Outcome() for _ in calls]
    threads = [Thread(target=settle, args=(call, outcome)) for call, outcome in zip(calls, outcomes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def settle(call: Callable[[], Any], outcome: Outcome) -> None:
    try:
        outcome.value = call()
    except Exception as err:  # not handled here: carried to the caller's thread, raised there by Outcome.get
        outcome.error = err
