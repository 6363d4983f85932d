"""The sync report (.forkflow/reports/sync.json) and its Markdown summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.core.errors import ForkflowError
from tasks.core.sync import (
    plan_lines,
    summary_markdown,
)
from tasks.core.sync_tags import TagPlan, tag_lines
from tasks.pipeline.settings import read_report, write_report
from tasks.stages.sync.protected import protected_part
from tasks.stages.sync.setup import STAGE, SyncSetup
from tasks.stages.sync.state import RunState


def write_sync_report(setup: SyncSetup, state: RunState, status: str, error: str | None = None) -> Path:
    plan = state.plan
    upstream = [c.to_dict() for c in plan.upstream_commits] if plan.main.action == "fast-forward" else []
    data: dict[str, Any] = {
        "status": status,
        "dry_run": state.dry_run,
        "fork": str(setup.fork),
        "upstream": {"ref": plan.upstream_ref, "sha": plan.upstream_main},
        "main": {"name": plan.main.name, "old": plan.main.start, "new": state.main_new, "action": plan.main.action,
                 "upstream_commits": upstream, "count": len(upstream)},
        "release": {"name": plan.release.name, "old": plan.release.start, "new": state.release_new,
                    "action": plan.release.action, "custom_commits": [c.to_dict() for c in plan.custom_commits],
                    "rebased": state.rebased},
        "backup": state.backup,
        "backups": state.backups,
        "pruned": state.pruned,
        "pruned_on_origin": state.pruned_on_origin,
        "origin_backups": sorted(set(state.origin_backups) - set(state.pruned_on_origin)),
        "pushed": state.pushed,
        "tags": tags_part(state),
        "plan": plan_lines(plan, limit=50) + tag_lines(TagPlan.from_dict(state.tags), would=state.dry_run),
        "conflict": state.conflict,
        "protected": protected_part(setup, state),
    }
    if error:
        data["error"] = error
    return write_report(STAGE, data, setup.settings)


def tags_part(state: RunState) -> dict[str, Any]:
    """Version tags: those pushed to origin and moved with the rebase, and (a dry run's) those planned."""
    planned = TagPlan.from_dict(state.tags)
    return {
        "pushed": state.pushed_tags,
        "moved": [{"name": tag["name"], "old": tag["old"], "new": tag["new"], "on_origin": bool(tag["origin"])}
                  for tag in state.moved_tags],
        "to_push": [tag.name for tag in planned.push],
        "to_move": [{"name": move.name, "old": move.commit} for move in planned.move],
    }


def write_failure(setup: SyncSetup, err: ForkflowError, dry: bool, state: RunState | None = None) -> None:
    if state is not None:
        write_sync_report(setup, state, "failed", str(err))
        return
    write_report(STAGE, {"status": "failed", "dry_run": dry, "fork": str(setup.fork), "main": None, "release": None,
                         "backup": None, "backups": [], "pushed": [], "error": str(err)}, setup.settings)


def print_summary() -> int:
    """`python -m tasks.stages.sync summary`: the last sync report as Markdown (for CI job summaries)."""
    report = read_report(STAGE)
    if report is None:
        print("## Sync: no report (the sync did not run)")
        return 1
    print(summary_markdown(report), end="")
    return 0
