"""Shared shape of benchmark results: ours vs a baseline, as a ratio, in one run.

Each bench module has `run() -> list[Result]` and can be run alone with
`python -m bench.<module>`; `python -m bench` runs them all and writes
bench/RESULTS.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    case: str
    ours: float
    baseline: float
    target: str
    note: str = ""
    unit: str = "s"

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")

    def line(self) -> str:
        return (f"{self.case}: ours {self.ours:.3f}{self.unit}, baseline {self.baseline:.3f}{self.unit}, "
                f"ratio {self.ratio:.2f} (target {self.target}){' - ' + self.note if self.note else ''}")


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed: ...` then `elapsed()` gives seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def print_results(results: list[Result]) -> None:
    for result in results:
        print(result.line(), flush=True)
