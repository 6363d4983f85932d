"""Applying desired deployments to one Prefect server: the bulk read, the diff, the writes, the
records of what was applied. Shared by deploy and promote.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.prefect import PrefectApi
from tasks.core.deploydefs import with_schedules_active
from tasks.core.deployment import Context, Desired
from tasks.core.deploynames import DEFAULT_NAME_PATTERN, fixed_prefix, name_matcher, slug
from tasks.core.deployplan import (
    MADE_ELSEWHERE,
    Change,
    compare,
    edited_prefixes,
    edits_known,
    owned_by_deployment,
    prune_changes,
    record_recent,
    record_usable,
    remembered,
    spec_hashes,
    split_known,
    survivors,
)
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.runtime import built_image, image_reference, tag_of, with_runtime
from tasks.core.text import shown
from tasks.pipeline.credentials import environment_connection
from tasks.pipeline.parallel import together
from tasks.pipeline.prefect_values import SCHEMAS_FILE, PrefectSchemas
from tasks.pipeline.settings import Settings, read_json, read_report, write_failed_report, write_json
from tasks.stages.deploy import check as deploy_check
from tasks.stages.deploy.desired import context_of, environment_settings, flows_dir_for_workers
from tasks.stages.deploy.report import DeploymentsFailed, deploy_report
from tasks.stages.deploy.writes import Applier

MANAGED_LABEL = "forkflow.project"


BRANCH_LABEL = "forkflow.branch"


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
        ctx = context_of(self.current, self.listing)
        envs = sorted({d.environment for d in group} | set(prune_envs))
        patterns = sorted({d.pattern for d in group} or {ctx.name_pattern or DEFAULT_NAME_PATTERN})
        prefixes = sorted({fixed_prefix(ctx, env, pattern) for env in envs for pattern in patterns})
        pools, automations, before, _ = (outcome.get() for outcome in together(  # one round trip instead of four
            api.work_pools, api.read_automations, partial(signals_of, api, prefixes), api.ready_to_write))
        pool_types = {name: pool["type"] for name, pool in pools.items()}
        group = resolved_references(api, group, self.dry_run)  # pools, pool types and images: on resolved values
        check_pools(group, pool_types, api.api_url)
        ready = [self.finalize(d, pool_types[d.work_pool]) for d in group]
        digests = spec_hashes(ready)
        key = f"{api.api_url} {' '.join(prefixes)}"
        record = self.records.get(key)
        not_owned = list((record or {}).get("not_owned", []))
        present = any(signal["count"] for signal in before.values())  # none on a first deploy: nothing to read
        owned = owned_by_deployment(automations, set(not_owned)) if present else {}
        full = prune_envs or not record_usable(record, before, time.time(), self.verify_after)
        edited = None if prune_envs or not full else edited_since(api, record, before, time.time(), self.verify_after)
        full = full and edited is None  # only edits since the record: those are read, the rest stand as recorded
        known: list[Change] = []
        if full:
            stale = ready
            items = self.read_server(api, envs, ready, prefixes) if present else []
            server = by_identity(items, api.flow_names([item["flow_id"] for item in items]))
        else:
            assert record is not None
            known, stale = split_known(ready, record, owned, digests)
            stale += [change.desired for change in known if change.deployment_id in (edited or set()) and change.desired]
            known = [change for change in known if change.deployment_id not in (edited or set())]
            server = read_stale(api, stale) if stale else {}
        changes = known + [self.compare(d, server.get(d.identity), owned) for d in stale]
        for env in prune_envs:
            changes += prune_changes(server, {d.identity for d in ready}, self.prunable(ctx, env, patterns))
        check_against_prefect(changes, pools, api.api_url, PrefectSchemas(self.current.state_dir / SCHEMAS_FILE))
        writes_before = api.writes
        results = Applier(api, self.concurrency, self.labels()).run(changes)
        if not self.dry_run:
            scope: dict[str, Any] = {"url": api.api_url, "prefixes": prefixes, "environment": envs[0] if envs else ""}
            after = before
            if api.writes != writes_before:  # the signals the no-op check will compare, with those of the record
                after, automations = (outcome.get() for outcome in together(
                    partial(signals_of, api, prefixes), partial(forkflow_automations, api)))
                scope["signals"] = {**after, "automations": automations}
            checked = time.time() if full and complete else float((record or {}).get("checked", 0))
            not_owned = sorted({*not_owned, *others_kept(api, changes, owned)})
            self.records[key] = remembered(record, digests, results, after, checked, not_owned)
            save_records(self.current, self.records)
            self.scopes.append({**scope, "checked": checked})
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
        """Add the pool's runtime; a process pool gets an image only to fill a replaced build step's outputs. An
        image forkflow built from the deployment's own Docker build step is its image (not when promoting)."""
        own = desired.runtime.get("built_image") if self.image_of == self.built_image else None
        if own:
            return with_runtime(desired, pool_type, flows_dir_for_workers(self.current, self.listing), own["image"], own["tag"])
        wants_image = pool_type != "process" or bool(desired.runtime.get("image_steps"))
        image = self.image_of(desired, pool_type) if wants_image else None
        if pool_type != "process" and not image and not has_own_image(desired):
            if not leaves_image_to_pool(desired):
                raise ForkflowError(
                    f"work pool {desired.work_pool!r} ({pool_type}) runs containers but no image is known for {desired.name}",
                    where=str(self.current.reports_dir / "image.json"),
                    fix="run `doit image` first (its image.json names the image), or use a process work pool")
            say(f"{shown(desired.identity)}: no image is known for work pool {desired.work_pool!r} ({pool_type}), so the pool's "
                "default image runs it, as prefect deploy leaves it")
        tag = self.image_tag(pool_type) if image else None
        return with_runtime(desired, pool_type, flows_dir_for_workers(self.current, self.listing), image, tag)

    def built_image(self, desired: Desired, pool_type: str) -> str | None:
        return image_reference(self.images_report, *self.image_cell(pool_type))

    @functools.cached_property
    def images_report(self) -> dict[str, Any] | None:
        """image.json, read once per run (every deployment of a container pool asks for its image)."""
        return read_report("image", self.current)

    def image_tag(self, pool_type: str) -> str | None:
        """The first tag of the image `built_image` names (`{{ build-image.tag }}`)."""
        entry = built_image(self.images_report, *self.image_cell(pool_type))
        if entry is None or self.image_of != self.built_image:
            return None
        tag = str(entry["tags"][0])
        return tag_of(tag) if "/" in tag else tag  # a bare tag, or one in a full reference

    def image_cell(self, pool_type: str) -> tuple[str | None, str]:
        images = self.current.config.images
        python = (images.default_python or images.python[0]) if images else None
        return python, "kubernetes" if pool_type == "kubernetes" else "base"

    def read_server(self, api: PrefectApi, envs: list[str], ready: list[Desired], prefixes: list[str]) -> list[dict[str, Any]]:
        """The server's deployments that may carry this branch's names. Not asked (nor the automations, which matter
        only for deployments on the server) when the signals count none under any prefix, as on a first deploy:
        every one of those names contains one of the prefixes."""
        if len(ready) == 1 and not any(env for env in envs if env != ready[0].environment):
            return api.read_deployments(names=[ready[0].name])
        if "" in prefixes:
            return api.read_deployments(name_like="")
        return [item for prefix in prefixes for item in api.read_deployments(name_like=prefix)]


def resolved_references(api: PrefectApi, ready: list[Desired], dry_run: bool = False) -> list[Desired]:
    """`{{ prefect.variables.x }}` and `{{ prefect.blocks.<type>.<name>.<field> }}` answered by this server, as
    prefect deploy answers them; pull steps keep theirs (the worker resolves them when it runs). Schedules are
    checked once filled."""
    from tasks.core import prefect_templates

    wanted = {ref for d in ready if d.native for ref in prefect_templates.references(without_pull(d.spec))}
    values = {ref: reference_value(api, ref) for ref in sorted(wanted, key=lambda r: r.text)}
    return [dataclasses.replace(d, spec=with_schedules_active(
        {**(prefect_templates.fill_references(without_pull(d.spec), values) if values else without_pull(d.spec)),
         "pull_steps": d.spec.get("pull_steps")}, d.identity, dry_run)) if d.native else d for d in ready]


def signals_of(api: PrefectApi, prefixes: list[str]) -> dict[str, Any]:
    return {prefix: api.deployment_signals(prefix) for prefix in prefixes}


def forkflow_automations(api: PrefectApi) -> list[str]:
    """forkflow's automations as the no-op check sees them (tasks.stages.deploy.check)."""
    found = api.call("POST", "automations/filter", deploy_check.AUTOMATIONS, what="read forkflow's automations")
    return deploy_check.automation_signals(found.json())


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


def leaves_image_to_pool(desired: Desired) -> bool:
    """A prefect.yaml deployment that names no image and builds none: prefect deploy leaves the image to the
    work pool's default; forkflow does too when the image stage has none to give."""
    return desired.native and not desired.runtime.get("image_steps") and \
        "image" not in (desired.spec.get("job_variables") or {})


def has_own_image(desired: Desired) -> bool:
    """A prefect.yaml deployment that names its image itself (not through a replaced build step)."""
    image = (desired.spec.get("job_variables") or {}).get("image")
    return desired.native and isinstance(image, str) and "{{" not in image


def edited_since(api: PrefectApi, record: dict[str, Any] | None, signals: dict[str, Any], now: float,
                 verify_after: float) -> set[str] | None:
    """The ids of this branch's deployments someone edited since the last run (in the UI, with the API), read newest
    first, so that those are read and compared and the rest stand as recorded; None when only a full read tells (a
    deployment made or deleted since, the record too old)."""
    if record is None or not record_recent(record, now, verify_after):
        return None
    prefixes = edited_prefixes(record, signals)
    if prefixes is None:
        return None
    found: set[str] = set()
    for prefix, since in prefixes.items():
        edited = edits_known(record, api.updated_since(prefix, since))
        if edited is None:
            return None
        found |= edited
    return found


def read_stale(api: PrefectApi, stale: list[Desired]) -> dict[str, dict[str, Any]]:
    """The server's deployments of these names, by identity, read in one round trip with their flows' ids: only
    the stale deployments' own flows need naming (another flow's deployment of the same name is no match)."""
    items, flows = (outcome.get() for outcome in together(
        partial(api.read_deployments, names=sorted({d.name for d in stale})),
        partial(api.flow_ids, sorted({d.flow for d in stale}))))
    return by_identity(items, {flow_id: name for name, flow_id in flows.items()})


def by_identity(items: list[dict[str, Any]], flow_names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Server deployments by flow and name (names repeat across flows, e.g. `default`)."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        found.setdefault(f"{flow_names.get(item['flow_id'], '?')}/{item['name']}", item)
    return found


RECORDS = "deploy-record.json"


def load_records(current: Settings) -> dict[str, Any]:
    """What the last runs applied, per server: spec hashes and the server's signals right after."""
    return read_json(current.state_dir / RECORDS) or {}


def save_records(current: Settings, records: dict[str, Any]) -> None:
    write_json(current.state_dir / RECORDS, records, compact=True)  # rewritten by every deploy: no indenting


def check_against_prefect(changes: list[Change], pools: dict[str, dict[str, Any]], api_url: str,
                          schemas: PrefectSchemas) -> None:
    """Before any write: job variables against the work pool's template and, where the schema is enforced,
    parameters against the flow's schema, as Prefect's own validator checks them (as the server will)."""
    pending = [c.desired for c in changes if c.kind in ("create", "update") and c.desired is not None]
    problems = []
    for desired in pending:
        template = (pools.get(desired.work_pool, {}).get("base_job_template") or {}).get("variables") or {}
        if desired.spec.get("job_variables") and template:
            problems += [f"{desired.name}: job_variables.{path}: {message}"
                         for path, message in schemas.problems(desired.spec["job_variables"], template)]
        schema = desired.spec.get("parameter_openapi_schema")
        if desired.spec.get("enforce_parameter_schema") and schema and desired.spec.get("parameters"):
            problems += [f"{desired.name}: parameters.{path}: {message}"
                         for path, message in schemas.problems(desired.spec["parameters"], schema)]
    schemas.save()
    if problems:
        raise ConfigError(f"Prefect would refuse {len(problems)} value(s) on {api_url} (nothing was written there):\n"
                          + "\n".join(f"  - {p}" for p in problems), where="the deployment config",
                          fix="correct the values named above")


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
