"""Stage `promote`: copy tested deployments to the next environment, rebuilding nothing.

`doit promote --from dev --to prod [--flows a,b]` reads the source
environment's deployments of the checkout's branch, and creates or updates
the target ones with the same code version, commit and image, but the target
environment's work pool, schedules, parameters and job variables. It refuses
when a source deployment is missing, or when the flows being promoted do not
all carry one code version. The result is `.forkflow/reports/promote.json`.
"""

from __future__ import annotations

from typing import Any

from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run, missing_section_task
from tasks.pipeline.settings import settings, write_failed_report
from tasks.stages.deploy.report import DeploymentsFailed
from tasks.stages.deploy.stage import services_deps

PARAMS = [
    {"name": "source", "long": "from", "type": str, "default": "", "help": "environment to promote from (e.g. dev)"},
    {"name": "target", "long": "to", "type": str, "default": "", "help": "environment to promote to (e.g. prod)"},
    {"name": "flows", "long": "flows", "type": str, "default": "", "help": "comma-separated flow names (default: all)"},
]


def task_promote() -> dict[str, Any]:
    """Promote deployments from one environment to the next: same image and code version."""
    current = settings()
    doc = "copy deployments --from ENV --to ENV [--flows a,b]: same image and code version, target's pool/schedules"
    if current.config.flows is None or not current.config.environments:
        return missing_section_task("promote", "flows" if current.config.flows is None else "environments.<name>", doc)
    return {
        "basename": "promote",
        "doc": doc,
        "actions": [guarded(promote_action)],
        "params": [*PARAMS, dry_run_param()],
        "task_dep": ["flows", *services_deps(current)],
        "uptodate": [False],
        "verbosity": 2,
    }


def promote_action(source: str = "", target: str = "", flows: str = "", dry_run: bool = False) -> dict[str, str]:
    from tasks.stages.deploy.promote_run import promote_flows

    current = settings()
    try:
        return promote_flows(current, source, target, flows, is_dry_run(dry_run))
    except DeploymentsFailed:
        raise
    except ForkflowError as err:
        write_failed_report("promote", err, {"deployments": [], "from": source, "to": target}, current)
        raise

