"""The console reporter: doit's usual lines, then a summary table.

Under GitHub Actions each task's output is folded in a `::group::` and the
summary is also appended to `$GITHUB_STEP_SUMMARY` as a Markdown table.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from doit.reporter import ConsoleReporter

from tasks.core.text import shown
from tasks.pipeline import status_line
from tasks.pipeline.checks import changed_text


class SummaryReporter(ConsoleReporter):
    desc = "console output, then a summary table (task, status, duration, what it made)"
    live_status = False  # a live status line on a terminal: only when doit runs the tasks in this process

    def __init__(self, outstream: Any, options: dict[str, Any]):
        super().__init__(outstream, options)
        self.rows: dict[str, list[str]] = {}
        self.started: dict[str, float] = {}
        self.in_actions = os.environ.get("GITHUB_ACTIONS") == "true"
        self.tasks: dict[str, Any] = {}
        self.status = status_line.StatusLine() if status_line.wanted(self.live_status, outstream) else None

    def initialize(self, tasks: dict[str, Any], selected_tasks: Any) -> None:
        self.tasks = tasks
        if self.status:
            self.status.start()

    def write(self, text: str) -> None:
        if self.status and self.status.active:
            sys.stdout.write(text)  # the live display's stand-in for stdout: the text goes above the line
        else:
            super().write(text)

    def execute_task(self, task: Any) -> None:
        self.started[task.name] = time.monotonic()
        if self.status and task.actions:
            self.status.task_started(task.name)
        if self.in_actions and task.actions:
            self.write(f"::group::{task.name}\n")
        super().execute_task(task)

    def add_success(self, task: Any) -> None:
        self.finish(task, "ran")

    def add_failure(self, task: Any, fail: Any) -> None:
        self.finish(task, "failed")
        super().add_failure(task, fail)

    def skip_uptodate(self, task: Any) -> None:
        if task.actions:
            super().skip_uptodate(task)
        self.record(task, "up-to-date", 0.0)

    def skip_ignore(self, task: Any) -> None:
        super().skip_ignore(task)
        self.record(task, "ignored", 0.0)

    def finish(self, task: Any, status: str) -> None:
        if self.in_actions and task.actions:
            self.write("::endgroup::\n")
        if self.status and task.actions:
            self.status.task_ended(task.name, failed=status == "failed")
        now = time.monotonic()
        elapsed = now - self.started.get(task.name, now)  # a task that never started (its dependency failed): 0
        self.record(task, status, elapsed)

    def record(self, task: Any, status: str, elapsed: float) -> None:
        if not task.actions or task.name.startswith("_"):
            return
        from tasks.core.secrets import mask, secret_values

        made = mask(made_by(task), secret_values(os.environ))
        self.rows[task.name] = [shown(task.name), status, f"{elapsed:.1f}s", shown(made), shown(why(task, status))]

    def complete_run(self) -> None:
        if self.status:
            self.status.stop()
        super().complete_run()
        if not self.rows:
            return
        self.write(render_table(list(self.rows.values())))
        markdown = summary_markdown(list(self.rows.values()), self.tasks)
        try:
            write_summary_file(markdown)
            summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
            if summary_file:
                with Path(summary_file).open("a", encoding="utf-8") as handle:
                    handle.write(markdown)
        except OSError as err:  # a full disk: the table above is the summary
            self.write(f"forkflow: the summary file could not be written: {err.strerror or err} ({err.filename})\n")


class LiveSummaryReporter(SummaryReporter):
    """The same, with a live status line when the output is a terminal (dodo.py picks it without -n N)."""

    live_status = True


def made_by(task: Any) -> str:
    values = getattr(task, "values", None) or {}
    if values.get("made"):
        return str(values["made"])
    targets = [Path(str(t)).name for t in task.targets]
    return ", ".join(targets[:3]) + (" ..." if len(targets) > 3 else "")


HEADERS = ["task", "status", "time", "made"]


def render_table(rows: list[list[str]]) -> str:
    widths = [max(len(HEADERS[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    lines = ["", "summary:"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(HEADERS[:3], widths, strict=True)) + "  " + HEADERS[3])
    for row in rows:
        reason = f"  ({row[4]})" if len(row) > 4 and row[4] else ""
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3] + reason)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(lines) + "\n"


def why(task: Any, status: str) -> str:
    """Why a task ran: the file dependencies that changed, else its own up-to-date check."""
    if status != "ran":
        return ""
    changed = [str(f) for f in (getattr(task, "dep_changed", None) or [])]
    if len(changed) > 3 and len(changed) == len(task.file_dep):
        return f"all {len(changed)} of its files are new or changed"
    if changed:
        return changed_text(changed)
    reasons = [utd.reason for utd, *_ in task.uptodate if getattr(utd, "reason", None)]
    if reasons:
        return "; ".join(dict.fromkeys(reasons))  # once each: a forgotten task's every check says so
    if any(utd is False for utd, *_ in task.uptodate) or (not task.file_dep and not task.uptodate):
        return "always runs"
    return "first run"


def render_markdown(rows: list[list[str]]) -> str:
    lines = ["| task | status | time | made | why |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def stage_of(name: str) -> str:
    return name.split(":", 1)[0]


def mermaid_graph(tasks: dict[str, Any]) -> str:
    """The task graph by stage: an edge where a task of one stage depends on another stage's."""
    producers = {str(target): stage_of(name) for name, task in tasks.items() for target in task.targets}
    edges = set()
    for name, task in tasks.items():
        for dep in list(task.task_dep) + [producers.get(str(f), "") for f in task.file_dep]:
            source, target = stage_of(dep), stage_of(name)
            if dep and source != target and not source.startswith("_"):
                edges.add((source, target))
    lines = ["```mermaid", "graph LR"]
    lines += [f"  {safe_id(a)}[{a}] --> {safe_id(b)}[{b}]" for a, b in sorted(edges)]
    lines.append("```")
    return "\n".join(lines)


def safe_id(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def report_lines() -> list[str]:
    """One line per stage report: how many items in each status, then the report's own `summary_lines`."""
    from tasks.pipeline.report_facts import report_facts
    from tasks.pipeline.settings import settings

    lines = []
    for file in sorted(settings().reports_dir.glob("*.json")):
        facts = report_facts(file.stem)  # kept from an earlier run while the report is the same file
        if facts is None:  # the stage that reads it sets it aside and says so
            continue
        detail = ", ".join(f"{n} {status}" for status, n in sorted(facts["counts"].items())) or "written"
        if facts["failed"]:
            error = facts["error"].splitlines()
            detail = f"**FAILED**: {shown(error[0])} ({detail})"
        lines.append(f"- `{file.name}`: {detail}")
        lines += [f"  - {shown(line)}" for line in facts["summary_lines"]]
    return lines


def summary_markdown(rows: list[list[str]], tasks: dict[str, Any]) -> str:
    import time as clock

    parts = [f"## forkflow run, {clock.strftime('%Y-%m-%d %H:%M:%S')}", "", mermaid_graph(tasks), "",
             render_markdown(rows), "### Reports", "", *report_lines(), ""]
    return "\n".join(parts) + "\n"


def write_summary_file(markdown: str) -> None:
    """Write .forkflow/reports/summary.md (skipped quietly when no config is loaded)."""
    from tasks.core.errors import ConfigError
    from tasks.pipeline.settings import settings

    try:
        folder = settings().reports_dir
    except ConfigError:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.md").write_text(markdown, encoding="utf-8")
