"""The deploy report (deploy.json) and the run's summary line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.adapters.console import say
from tasks.core.errors import ForkflowError

if TYPE_CHECKING:
    from tasks.core.deployplan import Change
    from tasks.stages.deploy.apply import DeployRun


class DeploymentsFailed(ForkflowError):
    """Some deployments failed; the run's report, with each outcome, is already written."""


STATUS = {"create": "created", "update": "updated", "unchanged": "unchanged", "prune": "pruned"}


def result_entry(change: Change, dry_run: bool) -> dict[str, Any]:
    desired = change.desired
    entry: dict[str, Any] = {
        "name": change.name,
        "environment": desired.environment if desired else None,
        "flow": desired.flow if desired else change.flow,
        "status": STATUS[change.kind],
        "id": change.deployment_id,
        "diff": list(change.diff),
        "hash": change.spec_hash,
    }
    if desired:
        entry.update(version=desired.spec.get("version"), work_pool=desired.spec.get("work_pool_name"))
    if dry_run and change.kind != "unchanged":
        entry.update(status="skipped", would=change.kind)
    return entry


def deploy_report(listing: dict[str, Any], results: list[dict[str, Any]], run: Any, dry_run: bool) -> dict[str, Any]:
    return {
        "deployments": results,
        "branch": listing["branch"],
        "commit": listing["commit"],
        "version": listing["version"],
        "dry_run": dry_run,
        "writes": run.writes,
        "retries": run.retries,
    }


def merged_report(previous: dict[str, Any] | None, report: dict[str, Any]) -> dict[str, Any]:
    """A one-deployment run updates its own entry and keeps the others."""
    if not previous:
        return report
    names = {entry["name"] for entry in report["deployments"]}
    kept = [entry for entry in previous.get("deployments", []) if entry["name"] not in names]
    status = "failed" if any(entry.get("status") == "failed" for entry in kept) else report.get("status")
    return {**report, "deployments": kept + report["deployments"], "status": status}


def summarize(results: list[dict[str, Any]], run: DeployRun, dry_run: bool, stage: str = "deploy") -> str:
    counts: dict[str, int] = {}
    for result in results:
        key = f"would {result['would']}" if result.get("would") else result["status"]
        counts[key] = counts.get(key, 0) + 1
    text = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing to deploy"
    say(f"{stage}: {text}; {run.writes} API writes" + (" (dry run)" if dry_run else ""))
    return text
