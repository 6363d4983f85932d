"""Shared shape of benchmark results: ours vs a baseline, as a ratio, in one run.

Each bench module has `run() -> list[Result]` and can be run alone with
`python -m bench.<module>`; `python -m bench` runs them all and writes
bench/RESULTS.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SMOKE_ENV = "FORKFLOW_BENCH_SMOKE"


def smoke() -> bool:
    """`python -m bench --smoke`: every bench at a small size, to prove it still runs (its figures mean nothing)."""
    return os.environ.get(SMOKE_ENV, "") == "1"


def sized(full: Any, small: Any) -> Any:
    """`full` for a measuring run, `small` for a smoke run."""
    return small if smoke() else full


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


def interleaved_medians(ours: Callable[[], Any], baseline: Callable[[], Any], rounds: int = 5) -> tuple[float, float, Any]:
    """Median seconds of `rounds` alternating calls of `ours` and `baseline` (one sample is mostly noise),
    and the last result of `ours`."""
    import statistics

    ours_times: list[float] = []
    baseline_times: list[float] = []
    last: Any = None
    for _ in range(rounds):
        with stopwatch() as mine:
            last = ours()
        with stopwatch() as theirs:
            baseline()
        ours_times.append(mine())
        baseline_times.append(theirs())
    return statistics.median(ours_times), statistics.median(baseline_times), last


def print_results(results: list[Result]) -> None:
    for result in results:
        print(result.line(), flush=True)


def doit_json(config: Any, *args: str) -> dict[str, str]:
    """Run doit on a config with the JSON reporter; task name -> result."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    proc = subprocess.run([sys.executable, "-m", "doit", "-f", str(repo / "dodo.py"), "-d", str(repo),
                           "--reporter", "json", *args], check=False, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return {task["name"]: task["result"] for task in json.loads(proc.stdout)["tasks"]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
