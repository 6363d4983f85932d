"""What merging a branch would do, as Markdown: the checks' results and each environment's deploy plan.

Pure: it gets the steps' outcomes and the dry-run deploy reports and gives
the text `python -m tasks.plan` writes to reports/plan.md (a pull request's
job summary and comment). Only names, statuses and the names of changed
fields are shown, never values: parameters and job variables can hold secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MARKER = "<!-- forkflow-plan -->"
LISTED = 20  # names shown per kind of change; the rest are counted


@dataclass(frozen=True)
class Step:
    """One check of the plan: what ran, whether it passed, and why not."""

    name: str
    command: str
    status: str  # "passed", "failed" or "skipped"
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    head: str
    base: str
    steps: list[Step]
    deploys: dict[str, dict[str, Any]] = field(default_factory=dict)  # environment -> dry-run deploy report
    sync: str = ""  # the sync plan's own Markdown

    @property
    def failed(self) -> list[Step]:
        return [step for step in self.steps if step.status == "failed"]


def changes(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A dry-run deploy report's entries by what they would do: create, update, prune, unchanged, failed."""
    found: dict[str, list[dict[str, Any]]] = {"create": [], "update": [], "prune": [], "unchanged": [], "failed": []}
    for entry in report.get("deployments") or []:
        kind = entry.get("would") or {"failed": "failed", "pruned": "prune"}.get(entry.get("status", ""), "unchanged")
        found.setdefault(str(kind), []).append(entry)
    return found


def deploy_section(environment: str, report: dict[str, Any]) -> list[str]:
    found = changes(report)
    counts = ", ".join(f"{len(found[kind])} {label}" for kind, label in
                       (("create", "to create"), ("update", "to update"), ("prune", "to prune"),
                        ("unchanged", "unchanged"), ("failed", "failed")) if found.get(kind))
    lines = [f"### Deploy to {environment}: {counts or 'no deployments'}", ""]
    for kind, label in (("create", "created"), ("update", "updated"), ("prune", "pruned"), ("failed", "failing")):
        entries = found.get(kind) or []
        if not entries:
            continue
        lines.append(f"**would be {label}:**")
        for entry in entries[:LISTED]:
            lines.append(f"- `{entry.get('name', '?')}`" + entry_detail(kind, entry))
        if len(entries) > LISTED:
            lines.append(f"- and {len(entries) - LISTED} more")
        lines.append("")
    return lines


def entry_detail(kind: str, entry: dict[str, Any]) -> str:
    if kind == "update" and entry.get("diff"):
        return ": " + ", ".join(str(name) for name in entry["diff"])
    if kind == "failed" and entry.get("error"):
        return ": " + one_line(str(entry["error"]))
    return ""


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def demoted(text: str) -> str:
    """Another report's Markdown under this one's headings: its headings two levels down."""
    return "\n".join("##" + line if line.startswith("#") else line for line in text.splitlines())


def markdown(plan: Plan) -> str:
    verdict = (f"**{len(plan.failed)} check(s) failed**: merging this would fail the pipeline" if plan.failed
               else "all checks passed")
    lines = [MARKER, f"## forkflow plan: {plan.head} into {plan.base}", "", verdict, "",
             "| check | command | result |", "|---|---|---|"]
    for step in plan.steps:
        lines.append(f"| {step.name} | `{step.command}` | {step.status}"
                     + (f": {one_line(step.detail, 200)}" if step.detail else "") + " |")
    lines.append("")
    for step in plan.failed:
        lines += [f"<details><summary>{step.name}: output</summary>", "", "```", step.detail.strip()[-3000:], "```",
                  "", "</details>", ""]
    if plan.sync:
        lines += ["### Sync with upstream (dry run)", "", demoted(plan.sync).strip(), ""]
    for environment, report in plan.deploys.items():
        lines += deploy_section(environment, report)
    return "\n".join(lines).rstrip("\n") + "\n"
