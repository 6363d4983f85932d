"""Stage `deploy`: make the Prefect server's deployments match the flows and their config.

`doit deploy` deploys every flow to the environments the checkout's branch maps
to; `doit deploy:<flow>--<env>` deploys one. Each run validates the whole
config first, reads the server's deployments in bulk, and writes only what
differs, a bounded number at a time, waiting out 429 Retry-After. Options:
`--dry-run` (say what would change), `--validate-only`, `--prune` (delete this
branch's deployments whose flow is gone; never by default). The result is
`.forkflow/reports/deploy.json`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from doit.task import Task, dict_to_task

from tasks.adapters.console import say
from tasks.core.deploynames import slug
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run, missing_section_task, plan_only
from tasks.pipeline.checks import Check, KeepFileDeps, report_intact
from tasks.pipeline.credentials import is_local_service
from tasks.pipeline.deploy_files import input_files
from tasks.pipeline.runmode import run_mode
from tasks.pipeline.settings import Settings, look_at_report, read_report, settings, write_failed_report, write_report
from tasks.stages.deploy import check as deploy_check
from tasks.stages.deploy.check import deploy_unchanged
from tasks.stages.deploy.report import DeploymentsFailed, deploy_report, merged_report, summarize

PRUNE_PARAM = {"name": "prune", "long": "prune", "type": bool, "default": False,
               "help": "delete this branch's deployments (per the name pattern) whose flow is no longer defined"}
VALIDATE_PARAM = {"name": "validate_only", "long": "validate-only", "type": bool, "default": False,
                  "help": "check the flows and the deployment config, change nothing, contact no server"}


def task_deploy() -> Iterator[dict[str, Any] | Task]:
    """Deploy the flows to the Prefect server of each environment the branch maps to.

    `deploy` itself needs nothing but the config to be created; the
    `deploy:<flow>--<env>` tasks come from the last flows.json, so they appear
    once `doit flows` (or `doit deploy`) has run, and each re-checks the
    fresh flows.json when it runs. They are made only when the command names
    one (or for `doit list --all`), so a start does not grow with the number
    of deployments.
    """
    current = settings()
    doc = ("deploy every flow to the environments the branch maps to; only what changed "
           "(--dry-run, --validate-only, --prune)")
    if current.config.flows is None or not current.config.environments:
        yield missing_section_task("deploy", "flows" if current.config.flows is None else "environments.<name>", doc)
        return
    deps = ["flows", *services_deps(current)]
    yield {
        "basename": "deploy",
        "doc": doc,
        "actions": [guarded(deploy_action), KeepFileDeps(partial(input_files, current))],
        "params": [dry_run_param(), PRUNE_PARAM, VALIDATE_PARAM],
        "task_dep": deps,
        "file_dep": [*map(str, input_files(current)), str(current.reports_dir / "flows.json")],
        "uptodate": [Check("flows.json, the deployment config and each server's deployments are as the last deploy left them",
                           deploy_unchanged), report_intact("deploy", "deployments")],
        "verbosity": 2,
    }
    wanted = run_mode().names_subtasks_of("deploy")
    if wanted == ():
        return  # no run names one: a start costs nothing per deployment
    for entry, env in planned_pairs(current):
        if wanted is None or f"deploy:{subtask_name(entry['key'], env)}" in wanted:
            yield one_deployment_task(entry, env, deps)


def one_deployment_task(entry: dict[str, Any], env: str, deps: list[str]) -> Task:
    """`deploy:<name>--<env>`: the same as `deploy`, for one deployment (listed under deploy by `doit list --all`)."""
    task = dict_to_task({
        "name": f"deploy:{subtask_name(entry['key'], env)}",
        "doc": f"deploy {entry['names'].get(env, entry['key'])!r} (flow {entry['flow']!r}) to {env} "
               "(only if it changed; --dry-run, --validate-only)",
        "actions": [guarded(partial(deploy_action, only=(entry["names"].get(env, ""), env)))],
        "params": [dry_run_param(), VALIDATE_PARAM],
        "task_dep": deps,
        "uptodate": [False],
        "verbosity": 2,
    })
    task.subtask_of = "deploy"
    return task


def subtask_name(flow_name: str, env: str) -> str:
    return f"{slug(flow_name)}--{env}"


def planned_pairs(current: Settings) -> list[tuple[dict[str, Any], str]]:
    """(deployment, environment) pairs from the last flows.json (the `flows` task has just written it), one per name."""
    listing = look_at_report("flows", current) or {}
    pairs: dict[str, tuple[dict[str, Any], str]] = {}
    for env in listing.get("environments", []):
        for entry in listing.get("deployments", []):
            if "key" in entry and "names" in entry:
                pairs.setdefault(subtask_name(entry["key"], env), (entry, env))
    return list(pairs.values())


def services_deps(current: Settings) -> list[str]:
    """`services:prefect` when an environment points at the local Prefect server."""
    uses_local = any(is_local_service(current, "prefect", env.prefect_api_url)
                     for env in current.config.environments.values())
    return ["services:prefect"] if uses_local else []


# ---------------------------------------------------------------- the action


def deploy_action(dry_run: bool = False, prune: bool = False, validate_only: bool = False,
                  only: tuple[str, str] | None = None) -> dict[str, str]:
    current = settings()
    try:
        return deploy_listed(current, is_dry_run(dry_run) or plan_only("deploy"), prune, validate_only, only)
    except DeploymentsFailed:
        raise
    except ForkflowError as err:
        if not validate_only:
            write_failed_report("deploy", err, failed_deploy_report(current, only), current)
        raise


def failed_deploy_report(current: Settings, only: tuple[str, str] | None) -> dict[str, Any]:
    """A run that stopped before any deployment's outcome was known: nothing of the last run is kept as
    if it were this one's, except (for a one-deployment run) the other deployments' entries."""
    listing = read_report("flows", current) or {}
    kept = []
    if only is not None:
        kept = [entry for entry in (read_report("deploy", current) or {}).get("deployments", [])
                if not is_chosen(only, (entry.get("name"), entry.get("key"), entry.get("flow")), entry.get("environment"))]
    return {"deployments": kept, "branch": listing.get("branch"), "commit": listing.get("commit"),
            "version": listing.get("version"), "dry_run": False, "writes": 0, "retries": 0}


def is_chosen(only: tuple[str, str], names: tuple[Any, ...], environment: Any) -> bool:
    """A one-deployment run (`deploy:<key>--<env>`) is about this deployment, named any of its ways."""
    return only[0] in names and environment == only[1]


def deploy_listed(current: Settings, dry: bool, prune: bool, validate_only: bool,
                  only: tuple[str, str] | None) -> dict[str, str]:
    from tasks.stages.deploy.apply import DeployRun  # the deploy machinery, imported only when a deploy runs
    from tasks.stages.deploy.desired import flows_listing, load_desired

    listing = flows_listing(current)
    desired = load_desired(current, listing, listing["environments"], dry_run=dry or validate_only, offline=validate_only)
    if only is not None:
        desired = [d for d in desired if is_chosen(only, (d.name, d.key, d.flow), d.environment)]
        if not desired:
            raise ForkflowError(f"deployment {only[0]!r} is no longer deployed to {only[1]} from branch {listing['branch']}",
                                where=str(current.reports_dir / "flows.json"),
                                fix="run `doit list --all deploy` to see the current ones")
    if validate_only:
        configs = listing.get("configs") or [listing["config"]]
        source = configs[0] if len(configs) == 1 else f"{len(configs)} files"
        say(f"valid: {len(desired)} deployments from {source} for {', '.join(listing['environments'])}")
        return {"made": f"valid ({len(desired)} deployments)"}
    if not dry:
        deploy_check.forget(current)
    run = DeployRun(current, listing, dry)
    results = run.apply(desired, prune_envs=listing["environments"] if prune and only is None else [], complete=only is None)
    report = {**deploy_report(listing, results, run, dry), "status": "ok"}
    if only is not None:
        report = merged_report(read_report("deploy", current), report)
    write_report("deploy", report, current)
    if not dry and only is None and run.scopes:
        deploy_check.remember(current, run.scopes, min(scope["checked"] for scope in run.scopes))
    return {"made": summarize(results, run, dry)}
