"""The console reporter: doit's usual lines, then a summary table.

Under GitHub Actions each task's output is folded in a `::group::` and the
summary is also appended to `$GITHUB_STEP_SUMMARY` as a Markdown table.
"""

from __future__ import annotations

import os
import time
from typing import Any

from doit.reporter import ConsoleReporter


class SummaryReporter(ConsoleReporter):
    desc = "console output, then a summary table (task, status, duration, what it made)"

    def __init__(self, outstream: Any, options: dict[str, Any]):
        super().__init__(outstream, options)
        self.rows: dict[str, list[str]] = {}
        self.started: dict[str, float] = {}
        self.in_actions = os.environ.get("GITHUB_ACTIONS") == "true"

    def execute_task(self, task: Any) -> None:
        self.started[task.name] = time.monotonic()
        if self.in_actions and task.actions:
            self.write(f"::group::{task.name}\n")
        super().execute_task(task)

    def add_success(self, task: Any) -> None:
        self.finish(task, "ran")

    def add_failure(self, task: Any, fail: Any) -> None:
        self.finish(task, "failed")
        super().add_failure(task, fail)

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        self.record(task, "up-to-date", 0.0)

    def skip_ignore(self, task: Any) -> None:
        super().skip_ignore(task)
        self.record(task, "ignored", 0.0)

    def finish(self, task: Any, status: str) -> None:
        if self.in_actions and task.actions:
            self.write("::endgroup::\n")
        elapsed = time.monotonic() - self.started.get(task.name, time.monotonic())
        self.record(task, status, elapsed)

    def record(self, task: Any, status: str, elapsed: float) -> None:
        if not task.actions or task.name.startswith("_"):
            return
        self.rows[task.name] = [task.name, status, f"{elapsed:.1f}s", made_by(task)]

    def complete_run(self) -> None:
        super().complete_run()
        if not self.rows:
            return
        self.write(render_table(list(self.rows.values())))
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(render_markdown(list(self.rows.values())))


def made_by(task: Any) -> str:
    values = getattr(task, "values", None) or {}
    if values.get("made"):
        return str(values["made"])
    targets = [os.path.basename(str(t)) for t in task.targets]
    return ", ".join(targets[:3]) + (" ..." if len(targets) > 3 else "")


HEADERS = ["task", "status", "time", "made"]


def render_table(rows: list[list[str]]) -> str:
    widths = [max(len(HEADERS[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    lines = ["", "summary:"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(HEADERS[:3], widths, strict=True)) + "  " + HEADERS[3])
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(lines) + "\n"


def render_markdown(rows: list[list[str]]) -> str:
    lines = ["| task | status | time | made |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
