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

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from doit.task import Task, dict_to_task

from tasks import deploy_check
from tasks.actions import dry_run_param, guarded, is_dry_run, missing_section_task, plan_only
from tasks.adapters.prefect import PrefectApi
from tasks.checks import Check, KeepFileDeps
from tasks.context import Settings, read_report, settings, write_failed_report, write_report
from tasks.core.deploydefs import desired_from, name_collisions
from tasks.core.deployplan import (
    MADE_ELSEWHERE,
    Change,
    automation_body,
    compare,
    create_body,
    owned_by_deployment,
    prune_changes,
    record_usable,
    remembered,
    split_known,
    survivors,
    triggers_hash,
)
from tasks.core.deployspec import (
    DEFAULT_NAME_PATTERN,
    Context,
    Desired,
    EnvironmentSettings,
    fixed_prefix,
    image_reference,
    name_matcher,
    slug,
    with_runtime,
)
from tasks.core.errors import ConfigError, ForkflowError
from tasks.credentials import environment_connection
from tasks.deploy_check import deploy_unchanged
from tasks.deploy_files import input_files
from tasks.flows import flow_from_entry
from tasks.output import say, warn

MANAGED_LABEL = "forkflow.project"
BRANCH_LABEL = "forkflow.branch"
PRUNE_PARAM = {"name": "prune", "long": "prune", "type": bool, "default": False,
               "help": "delete this branch's deployments (per the name pattern) whose flow is no longer defined"}
VALIDATE_PARAM = {"name": "validate_only", "long": "validate-only", "type": bool, "default": False,
                  "help": "check the flows and the deployment config, change nothing, contact no server"}


def task_deploy() -> Iterator[dict[str, Any] | Task]:
    """Deploy the flows to the Prefect server of each environment the branch maps to.

    `deploy` itself needs nothing but the config to be created; the
    `deploy:<flow>--<env>` tasks come from the last flows.json, so they appear
    once `doit flows` (or `doit deploy`) has run, and each re-checks the
    fresh flows.json when it runs.
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
                           deploy_unchanged)],
        "verbosity": 2,
    }
    for entry, env in planned_pairs(current):
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
    listing = read_report("flows", current) or {}
    pairs: dict[str, tuple[dict[str, Any], str]] = {}
    for env in listing.get("environments", []):
        for entry in listing.get("deployments", []):
            if "key" in entry and "names" in entry:
                pairs.setdefault(subtask_name(entry["key"], env), (entry, env))
    return list(pairs.values())


def services_deps(current: Settings) -> list[str]:
    """`services:prefect` when an environment points at the local Prefect server."""
    services = current.config.services
    if services is None:
        return []
    local = f"http://127.0.0.1:{services.prefect.port}/api"
    uses_local = any((env.prefect_api_url or "").rstrip("/") in (local, local.replace("127.0.0.1", "localhost"))
                     for env in current.config.environments.values())
    return ["services:prefect"] if uses_local else []


# ---------------------------------------------------------------- the action


class DeploymentsFailed(ForkflowError):
    """Some deployments failed; the run's report, with each outcome, is already written."""


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
    listing = flows_listing(current)
    desired = load_desired(current, listing, listing["environments"], dry_run=dry or validate_only)
    if only is not None:
        desired = [d for d in desired if is_chosen(only, (d.name, d.key, d.flow), d.environment)]
        if not desired:
            raise ForkflowError(f"deployment {only[0]!r} is no longer deployed to {only[1]} from branch {listing['branch']}",
                                where=str(current.reports_dir / "flows.json"),
                                fix="run `doit list --all deploy` to see the current ones")
    if validate_only:
        say(f"valid: {len(desired)} deployments from {listing['config']} for {', '.join(listing['environments'])}")
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


def flows_listing(current: Settings) -> dict[str, Any]:
    """flows.json from the `flows` task; refuses to go on when discovery found problems."""
    listing = read_report("flows", current)
    if listing is None:
        raise ForkflowError("no flows.json yet", where=str(current.reports_dir / "flows.json"), fix="run `doit flows` first")
    if listing.get("errors"):
        problems = "\n".join(f"  - {error}" for error in listing["errors"])
        raise ForkflowError(f"flow discovery found problems, so nothing is deployed:\n{problems}",
                            where=listing.get("flows_dir"),
                            fix="fix the files named above and run again (or leave a file out with [flows] exclude)")
    return listing


def load_desired(current: Settings, listing: dict[str, Any], environments: list[str],
                 dry_run: bool = True) -> list[Desired]:
    """Validate the whole deployment config, then build every desired deployment for `environments`
    (running a prefect.yaml's deploy-time steps unless `dry_run`)."""
    from tasks.deployments import read_config, with_prefect_facts, with_step_outputs

    flows = [flow_from_entry(entry) for entry in listing["flows"]]
    root = Path(listing["flows_dir"])
    config = with_prefect_facts(read_config(current, root, flows), root, current.state_dir)
    config = with_step_outputs(config, root, dry_run)
    if config.file is None:
        warn(f"no deployment config in {listing['flows_dir']} (prefect.yaml, acme static config or deployments.yaml): "
             "only FlowSpec deployments are deployed")
    ctx = context_of(current, listing)
    desired = [desired_from(planned, environment_settings(current, env), ctx, ctx.name_pattern)
               for env in environments for planned in config.planned]
    name_collisions(desired)
    return desired


def context_of(current: Settings, listing: dict[str, Any]) -> Context:
    assert current.config.flows is not None
    return Context(project=current.config.project.name, branch=listing["branch"], commit=listing["commit"],
                   version=listing["version"], name_pattern=current.config.flows.name_pattern)


def environment_settings(current: Settings, name: str) -> EnvironmentSettings:
    env = current.config.environments[name]
    api_url = env.prefect_api_url or environment_connection(current, name).api_url
    return EnvironmentSettings(name=name, api_url=api_url, work_pool=env.work_pool, variables={**os.environ, **env.variables},
                               work_queue=env.work_queue, schedules=env.schedules)


def flows_dir_for_workers(current: Settings, listing: dict[str, Any]) -> str:
    assert current.config.flows is not None
    worker_path = current.config.flows.worker_path
    return worker_path if worker_path else str(listing["flows_dir"])


# ---------------------------------------------------------------- applying


class DeployRun:
    """Applies desired deployments server by server and counts what it wrote."""

    def __init__(self, current: Settings, listing: dict[str, Any], dry_run: bool,
                 image_of: Callable[[Desired, str], str | None] | None = None, stage: str = "deploy"):
        self.current = current
        self.stage = stage
        self.listing = listing
        self.dry_run = dry_run
        self.writes = 0
        self.retries = 0
        self.image_of = image_of or self.built_image
        assert current.config.flows is not None
        self.concurrency = current.config.flows.concurrency
        self.verify_after = current.config.flows.verify_after
        self.records = load_records(current)
        self.scopes: list[dict[str, Any]] = []

    def apply(self, desired: list[Desired], prune_envs: list[str], complete: bool = True) -> list[dict[str, Any]]:
        """Apply per server; `complete` says `desired` is everything this branch deploys (not one subtask)."""
        results: list[dict[str, Any]] = []
        for api_url in sorted({d.api_url for d in desired} | self.prune_urls(prune_envs)):
            group = [d for d in desired if d.api_url == api_url]
            envs = [e for e in prune_envs if environment_settings(self.current, e).api_url == api_url]
            names = sorted({d.environment for d in group} | set(envs))
            connection = environment_connection(self.current, names[0])
            with PrefectApi(api_url, dry_run=self.dry_run, concurrency=self.concurrency, connection=connection) as api:
                try:
                    results += self.apply_to(api, group, envs, complete)
                finally:
                    self.writes += api.writes
                    self.retries += api.retried
        failed = [r for r in results if r["status"] == "failed"]
        if failed:
            self.fail(failed, results)
        return results

    def prune_urls(self, envs: list[str]) -> set[str]:
        return {environment_settings(self.current, env).api_url for env in envs}

    def fail(self, failed: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        lines = "\n".join(f"  - {r['name']}: {r['error']}" for r in failed)
        error = DeploymentsFailed(f"{len(failed)} of {len(results)} deployments failed:\n{lines}",
                                  where=str(self.current.reports_dir / f"{self.stage}.json"),
                                  fix="fix the cause above and run again; deployments that succeeded are not written twice")
        write_failed_report(self.stage, error, deploy_report(self.listing, results, self, self.dry_run), self.current)
        raise error

    def apply_to(self, api: PrefectApi, group: list[Desired], prune_envs: list[str], complete: bool) -> list[dict[str, Any]]:
        pools = api.work_pools()
        pool_types = {name: pool["type"] for name, pool in pools.items()}
        check_pools(group, pool_types, api.api_url)
        ready = [self.finalize(d, pool_types[d.work_pool]) for d in group]
        ready = resolved_references(api, ready)
        ctx = context_of(self.current, self.listing)
        envs = sorted({d.environment for d in ready} | set(prune_envs))
        patterns = sorted({d.pattern for d in ready} or {ctx.name_pattern or DEFAULT_NAME_PATTERN})
        prefixes = sorted({fixed_prefix(ctx, env, pattern) for env in envs for pattern in patterns})
        key = f"{api.api_url} {' '.join(prefixes)}"
        record = self.records.get(key)
        not_owned = list((record or {}).get("not_owned", []))
        owned = owned_by_deployment(api.read_automations(), set(not_owned))
        before = {prefix: api.deployment_signals(prefix) for prefix in prefixes}
        full = prune_envs or not record_usable(record, before, time.time(), self.verify_after)
        known: list[Change] = []
        if full:
            stale = ready
            items = self.read_server(api, envs, ready, prefixes)
        else:
            assert record is not None
            known, stale = split_known(ready, record, owned)
            items = api.read_deployments(names=sorted({d.name for d in stale})) if stale else []
        server = by_identity(items, api.flow_names([item["flow_id"] for item in items]))
        changes = known + [self.compare(d, server.get(d.identity), owned) for d in stale]
        for env in prune_envs:
            changes += prune_changes(server, {d.identity for d in ready}, self.prunable(ctx, env, patterns))
        check_against_prefect(changes, pools, api.api_url)
        writes_before = api.writes
        results = Applier(api, self.concurrency, self.labels()).run(changes)
        if not self.dry_run:
            wrote = api.writes != writes_before
            after = {prefix: api.deployment_signals(prefix) for prefix in prefixes} if wrote else before
            checked = time.time() if full and complete else float((record or {}).get("checked", 0))
            not_owned = sorted({*not_owned, *others_kept(api, changes, owned)})
            self.records[key] = remembered(record, ready, results, after, checked, not_owned)
            save_records(self.current, self.records)
            self.scopes.append({"url": api.api_url, "prefixes": prefixes, "environment": envs[0] if envs else "",
                                "checked": checked})
        return results

    @staticmethod
    def compare(desired: Desired, item: dict[str, Any] | None, owned: dict[str, list[str]]) -> Change:
        if item is None:
            return compare(desired, None, None, [])
        return compare(desired, item, desired.flow, owned.get(item["id"], []))

    def labels(self) -> dict[str, str]:
        return {MANAGED_LABEL: self.current.config.project.name, BRANCH_LABEL: slug(self.listing["branch"])}

    def prunable(self, ctx: Context, env: str, patterns: list[str]) -> Callable[[dict[str, Any]], bool]:
        """What prune may delete: names of forkflow's patterns for this branch and environment, and for
        names as written (a prefect.yaml's) only deployments forkflow created for this project, never others'."""
        mine = self.labels()
        matchers = [(name_matcher(ctx, env, p), "{project}" in p and "{env}" in p) for p in patterns]

        def check(item: dict[str, Any]) -> bool:
            labels = item.get("labels") or {}
            ours = all(labels.get(key) == value for key, value in mine.items())
            return any(matcher.match(item["name"]) and (ours or derived) for matcher, derived in matchers)
        return check

    def finalize(self, desired: Desired, pool_type: str) -> Desired:
        image = None if pool_type == "process" else self.image_of(desired, pool_type)
        if pool_type != "process" and not image and not has_own_image(desired):
            raise ForkflowError(
                f"work pool {desired.work_pool!r} ({pool_type}) runs containers but no image is known for {desired.name}",
                where=str(self.current.reports_dir / "image.json"),
                fix="run `doit image` first (its image.json names the image), or use a process work pool")
        return with_runtime(desired, pool_type, flows_dir_for_workers(self.current, self.listing), image)

    def built_image(self, desired: Desired, pool_type: str) -> str | None:
        images = self.current.config.images
        python = (images.default_python or images.python[0]) if images else None
        flavor = "kubernetes" if pool_type == "kubernetes" else "base"
        return image_reference(read_report("image", self.current), python, flavor)

    def read_server(self, api: PrefectApi, envs: list[str], ready: list[Desired], prefixes: list[str]) -> list[dict[str, Any]]:
        """The server's deployments that may carry this branch's names."""
        if len(ready) == 1 and not any(env for env in envs if env != ready[0].environment):
            return api.read_deployments(names=[ready[0].name])
        if "" in prefixes:
            return api.read_deployments(name_like="")
        return [item for prefix in prefixes for item in api.read_deployments(name_like=prefix)]


def resolved_references(api: PrefectApi, ready: list[Desired]) -> list[Desired]:
    """`{{ prefect.variables.x }}` and `{{ prefect.blocks.<type>.<name>.<field> }}` answered by this server, as
    prefect deploy answers them; pull steps keep theirs (the worker resolves them when it runs)."""
    from tasks.core import prefect_yaml

    wanted = {ref for d in ready if d.native for ref in prefect_yaml.references(without_pull(d.spec))}
    if not wanted:
        return ready
    values = {ref: reference_value(api, ref) for ref in sorted(wanted, key=lambda r: r.text)}
    return [dataclasses.replace(d, spec={**prefect_yaml.fill_references(without_pull(d.spec), values),
                                         "pull_steps": d.spec.get("pull_steps")}) if d.native else d for d in ready]


def without_pull(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key != "pull_steps"}


def reference_value(api: PrefectApi, ref: Any) -> Any:
    if ref.kind == "variable":
        return api.variable(ref.path[0])
    value: Any = api.block_data(ref.path[0], ref.path[1])
    if len(ref.path) == 2 and isinstance(value, dict) and list(value) == ["value"]:
        return value["value"]  # a one-value block (Secret, String...) stands for its value, as in Prefect
    for part in ref.path[2:]:
        if not isinstance(value, dict) or part not in value:
            raise ForkflowError(f"the block {ref.path[0]}/{ref.path[1]} has no field {'.'.join(ref.path[2:])!r}",
                                where=f"{{{{ {ref.text} }}}}", fix="correct the reference; nothing was deployed")
        value = value[part]
    return value


def has_own_image(desired: Desired) -> bool:
    """A prefect.yaml deployment that names its image itself (not through a replaced build step)."""
    image = (desired.spec.get("job_variables") or {}).get("image")
    return desired.native and isinstance(image, str) and "{{" not in image


def by_identity(items: list[dict[str, Any]], flow_names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Server deployments by flow and name (names repeat across flows, e.g. `default`)."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        found.setdefault(f"{flow_names.get(item['flow_id'], '?')}/{item['name']}", item)
    return found


RECORDS = "deploy-record.json"


def load_records(current: Settings) -> dict[str, Any]:
    """What the last runs applied, per server: spec hashes and the server's signals right after."""
    file = current.state_dir / RECORDS
    try:
        loaded: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return loaded


def save_records(current: Settings, records: dict[str, Any]) -> None:
    file = current.state_dir / RECORDS
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_text(json.dumps(records, indent=1, sort_keys=True), encoding="utf-8")
    temp.replace(file)


def check_against_prefect(changes: list[Change], pools: dict[str, dict[str, Any]], api_url: str) -> None:
    """Before any write: job variables against the work pool's template and, where the schema is enforced,
    parameters against the flow's schema, with Prefect's own validator (as the server will check them)."""
    pending = [c.desired for c in changes if c.kind in ("create", "update") and c.desired is not None]
    if not pending:
        return
    from prefect.utilities.schema_tools.validation import validate

    problems = []
    for desired in pending:
        template = (pools.get(desired.work_pool, {}).get("base_job_template") or {}).get("variables") or {}
        if desired.spec.get("job_variables") and template:
            problems += [f"{desired.name}: job_variables.{schema_path(e)}: {e.message}"
                         for e in validate(desired.spec["job_variables"], template, ignore_required=True)]
        schema = desired.spec.get("parameter_openapi_schema")
        if desired.spec.get("enforce_parameter_schema") and schema and desired.spec.get("parameters"):
            problems += [f"{desired.name}: parameters.{schema_path(e)}: {e.message}"
                         for e in validate(desired.spec["parameters"], schema, ignore_required=True)]
    if problems:
        raise ConfigError(f"Prefect would refuse {len(problems)} value(s) on {api_url} (nothing was written there):\n"
                          + "\n".join(f"  - {p}" for p in problems), where="the deployment config",
                          fix="correct the values named above")


def schema_path(error: Any) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(all)"


def check_pools(group: list[Desired], pool_types: dict[str, str], api_url: str) -> None:
    missing = sorted({d.work_pool for d in group} - set(pool_types))
    if missing:
        raise ForkflowError(
            f"work pools missing on {api_url}: {', '.join(missing)} (nothing was deployed)",
            where="[environments.<name>] work_pool, or work_pool in the deployment config",
            fix="run `doit services` for the local server, or create them: "
                + "; ".join(f"prefect work-pool create {name} --type process" for name in missing))


def others_kept(api: PrefectApi, changes: list[Change], owned: dict[str, list[str]]) -> list[str]:
    """After replacing automations that may have been `prefect deploy`'s: the ones that stayed are not owned."""
    replaced = {c.deployment_id for c in changes if c.triggers_changed and c.deployment_id
                and MADE_ELSEWHERE in owned.get(c.deployment_id, [])}
    return survivors(api.read_automations(), replaced) if replaced else []


class Applier:
    """Runs the writes of a plan, `concurrency` at a time; one failure does not stop the others."""

    def __init__(self, api: PrefectApi, concurrency: int, labels: dict[str, str] | None = None):
        self.labels = labels or {}
        self.api = api
        self.concurrency = concurrency
        self.flow_ids: dict[str, str | None] = {}
        self.lock = threading.Lock()

    def run(self, changes: list[Change]) -> list[dict[str, Any]]:
        needed = sorted({c.desired.flow for c in changes if c.kind == "create" and c.desired})
        existing = self.api.flow_ids(needed) if needed else {}
        self.flow_ids.update(existing)
        missing = [name for name in needed if name not in existing]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for name, flow_id in zip(missing, pool.map(self.flow_id, missing), strict=True):
                self.flow_ids[name] = flow_id
            return list(pool.map(self.apply_one, changes))

    def flow_id(self, name: str) -> str | None:
        try:
            return self.api.ensure_flow(name)
        except ForkflowError as err:
            warn(str(err))
            return None

    def apply_one(self, change: Change) -> dict[str, Any]:
        result = result_entry(change, self.api.dry_run)
        try:
            result["id"] = self.write(change)
        except ForkflowError as err:
            result.update(status="failed", error=err.what)
        if not self.api.dry_run and change.kind != "unchanged":
            with self.lock:
                say(f"{result['status']:<9} {change.name}" + (f" ({', '.join(change.diff)})" if change.kind == "update" else ""))
        return result

    def write(self, change: Change) -> str | None:
        if change.kind == "unchanged":
            return change.deployment_id
        if change.kind == "prune":
            assert change.deployment_id is not None
            self.drop_automations(change.deployment_id)
            self.api.delete_deployment(change.deployment_id, change.name)
            return change.deployment_id
        assert change.desired is not None
        if change.kind == "update":
            assert change.deployment_id is not None
            if change.patch:
                self.api.update_deployment(change.deployment_id, change.name, change.patch)
            if change.triggers_changed:
                self.replace_automations(change.deployment_id, change.desired)
            return change.deployment_id
        return self.create(change)

    def create(self, change: Change) -> str | None:
        assert change.desired is not None
        flow_id = self.flow_ids.get(change.desired.flow)
        if flow_id is None and not self.api.dry_run:
            raise ForkflowError(f"could not create flow {change.desired.flow!r}")
        if change.deployment_id:
            self.drop_automations(change.deployment_id)
            self.api.delete_deployment(change.deployment_id, change.name)
        created = self.api.create_deployment({**create_body(change.desired, flow_id), "labels": self.labels})
        if created is None:
            return None
        if change.desired.spec.get("triggers"):
            self.replace_automations(created["id"], change.desired, fresh=True)
        return str(created["id"])

    def replace_automations(self, deployment_id: str, desired: Desired, fresh: bool = False) -> None:
        """As `prefect deploy` does: the deployment's own automations go (a new one has none), one per trigger is made."""
        if not fresh:
            self.drop_automations(deployment_id)
        triggers = desired.spec.get("triggers") or []
        digest = triggers_hash(triggers)
        named = prefect_trigger_names(desired.name, triggers) if desired.native else triggers
        for index, automation in enumerate(trigger_automations(deployment_id, named)):
            self.api.create_automation(automation_body(deployment_id, desired.name, index, automation, digest))

    def drop_automations(self, deployment_id: str) -> None:
        self.api.delete_owned_automations(deployment_id)


def prefect_trigger_names(deployment: str, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`prefect deploy` names an unnamed trigger `<deployment>__automation_<n>`, counting from 1."""
    return [{"name": f"{deployment}__automation_{index}", **trigger} for index, trigger in enumerate(triggers, start=1)]


def trigger_automations(deployment_id: str, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prefect's own conversion of deployment triggers into automations that run the deployment."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    adapter: Any = TypeAdapter(DeploymentTriggerTypes)
    bodies = []
    for trigger in triggers:
        model = adapter.validate_python(trigger)
        model.set_deployment_id(deployment_id)  # type: ignore[arg-type]
        bodies.append(model.as_automation().model_dump(mode="json"))
    return bodies


# ---------------------------------------------------------------- reporting


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
