"""Deployments as the configs define them, whatever the format, before an environment is chosen.

Every format (forkflow's deployments.yaml, a Pocket-style `FlowSpec`, an
acme-portal-sdk static config, a prefect.yaml) becomes a list of `Planned`:
the flow, the deployment's name as written (or none, when the name pattern
derives it), and its layers, each for every environment or for one. An
environment then turns each into a `Desired` (deployspec) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.deployment import (
    COMMIT_TAG,
    VERSION_TAG,
    Context,
    Desired,
    EnvironmentSettings,
    api_schedule,
    concurrency_fields,
    merged_layers,
)
from tasks.core.deploynames import slug
from tasks.core.discovery import FlowInfo, normalized, parameter_schema
from tasks.core.errors import ConfigError

if TYPE_CHECKING:
    from tasks.core.deployspec import Document

FORKFLOW_PATTERN = "{project}--{branch}--{flow}--{env}"
FLOW_SPEC_PATTERN = "{name}-{env}"
PREFECT_YAML_PATTERN = "{name}"


@dataclass(frozen=True)
class Planned:
    """One deployment a config defines; `layers` are (environment or None for all, keys) in order."""

    flow: FlowInfo
    name: str | None
    layers: tuple[tuple[str | None, dict[str, Any]], ...]
    pattern: str = FORKFLOW_PATTERN
    native: bool = False
    source: str = ""
    flow_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def server_flow(self) -> str:
        """The flow name the server gets (acme and FlowSpec conventions rename flows)."""
        return self.flow_name or self.flow.name

    def layers_for(self, env: str) -> list[dict[str, Any]]:
        return [layer for scope, layer in self.layers if scope in (None, env)]


@dataclass(frozen=True)
class DeploymentConfig:
    """What the config defines: the file (None when there is none; the first of several), its format, the
    deployments, notes, and every file read (several prefect.yaml files in a monorepo)."""

    file: Path | None
    format: str
    planned: tuple[Planned, ...]
    notes: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()


def deployment_name(ctx: Context, planned: Planned, env: str, pattern: str | None = None) -> str:
    chosen = pattern or planned.pattern
    written = planned.name if planned.name is not None else slug(planned.server_flow)
    return chosen.format(project=ctx.project, branch=slug(ctx.branch), flow=slug(planned.server_flow),
                         env=env, name=written)


# ---------------------------------------------------------------- forkflow's own format


def defined_by(doc: Document, flow: FlowInfo) -> bool:
    """Whether the document (or the flow's own FLOW_SPEC) defines a deployment of the flow."""
    return doc.every_flow or flow.name in doc.flows or bool(flow.spec) or bool(flow.spec_deployments)


def undefined_flows(doc: Document, flows: list[FlowInfo]) -> list[FlowInfo]:
    return [flow for flow in flows if not defined_by(doc, flow)]


def from_document(doc: Document, flows: list[FlowInfo], source: str) -> list[Planned]:
    """Each defined flow once, or once per FlowSpec deployment, layered as docs/deploy.md says."""
    from tasks.core.deployspec import Layer, layer_dict

    planned: list[Planned] = []
    for flow in flows:
        if not defined_by(doc, flow):
            continue
        entry = doc.flows.get(flow.name)
        head: list[tuple[str | None, dict[str, Any]]] = [(None, layer_dict(doc.defaults))]
        head += [(env, layer_dict(layer)) for env, layer in doc.defaults.environments.items()]
        tail: list[tuple[str | None, dict[str, Any]]] = [(None, layer_dict(entry))] if entry else []
        if entry:
            tail += [(env, layer_dict(layer)) for env, layer in entry.environments.items()]
        if flow.spec_deployments:
            for deployment in flow.spec_deployments:
                keys = {k: v for k, v in deployment.items() if k != "name"}
                planned.append(Planned(flow, deployment["name"], (*head, (None, keys), *tail),
                                       pattern=FLOW_SPEC_PATTERN, source=f"{flow.file}: FLOW_SPEC",
                                       flow_name=qualified_flow_name(flow)))
            continue
        spec = [(None, layer_dict(Layer.model_validate(flow.spec)))] if flow.spec else []
        planned.append(Planned(flow, None, (*head, *spec, *tail), source=source))
    return planned


def qualified_flow_name(flow: FlowInfo) -> str:
    """FlowSpec's convention: the flow is registered as `<sub-project>.<flow>`."""
    return f"{slug(flow.project_name)}.{flow.name}" if flow.project_prefix and flow.project_name else flow.name


# ---------------------------------------------------------------- desired state


def desired_from(planned: Planned, env: EnvironmentSettings, ctx: Context, pattern: str | None = None) -> Desired:
    """The managed fields of one deployment in one environment."""
    base: dict[str, Any] = {} if env.schedules is None else {"schedules_active": env.schedules}
    if env.work_pool:
        base["work_pool"] = env.work_pool
    if env.work_queue:
        base["work_queue"] = env.work_queue
    layers = planned.layers_for(env.name)
    if planned.native:
        from tasks.core.prefect_templates import fill_environment

        layers = fill_environment(layers, env.variables, planned.source)
    merged = merged_layers([base, *layers])
    name = deployment_name(ctx, planned, env.name, pattern)
    if not merged.get("work_pool") and env.default_work_pool:
        merged["work_pool"] = env.default_work_pool  # PREFECT_DEFAULT_WORK_POOL_NAME, as prefect deploy reads it
    if not merged.get("work_pool"):
        raise no_work_pool(planned, env)
    spec = native_spec(planned, merged, ctx) if planned.native else forkflow_spec(planned, merged, ctx, name)
    return Desired(name=name, flow=planned.server_flow, environment=env.name, api_url=env.api_url, spec=spec,
                   pattern=pattern or planned.pattern, key=planned_key(planned), native=planned.native,
                   runtime=dict(planned.extra))


def no_work_pool(planned: Planned, env: EnvironmentSettings) -> ConfigError:
    """A deployment with no pool: both ways out, in the words of the config it came from."""
    where = planned.source or planned.flow.entrypoint
    in_file = ("`work_pool: {name: <pool>}` on the deployment in the prefect.yaml" if planned.native
               else "`work_pool: <pool>` on the deployment in its config")
    return ConfigError(f"{where}: no work pool for environment {env.name}: neither the deployment nor "
                       f"[environments.{env.name}] names one (nor PREFECT_DEFAULT_WORK_POOL_NAME)",
                       where=f"[environments.{env.name}] work_pool",
                       fix=f"set work_pool = \"<pool>\" in [environments.{env.name}] of pipeline.toml, or give {in_file} "
                           "(list the server's pools with `prefect work-pool ls`); nothing was deployed")


def planned_key(planned: Planned) -> str:
    """The same deployment across environments: its flow, and its name as written when it has one."""
    return planned.server_flow + (f"/{planned.name}" if planned.name is not None else "")


def forkflow_spec(planned: Planned, merged: dict[str, Any], ctx: Context, name: str) -> dict[str, Any]:
    flow = planned.flow
    job_variables = dict(merged.get("job_variables") or {})
    job_variables["env"] = {**(job_variables.get("env") or {}), "DEPLOYMENT_NAME": name}
    active = bool(merged.get("schedules_active", False)) and not merged.get("paused", False)
    spec: dict[str, Any] = {
        "flow_name": planned.server_flow,
        "entrypoint": merged.get("entrypoint") or flow.entrypoint,
        "description": merged.get("description", flow.description),
        "version": merged.get("version") or ctx.version,
        "parameters": merged.get("parameters") or {},
        "parameter_openapi_schema": parameter_schema(flow),
        "enforce_parameter_schema": bool(merged.get("enforce_parameter_schema", False)),
        "tags": list(merged.get("tags") or []) + [f"{VERSION_TAG}={ctx.version}", f"{COMMIT_TAG}={ctx.commit}"],
        "work_pool_name": merged["work_pool"],
        "work_queue_name": merged.get("work_queue") or "default",
        "job_variables": job_variables,
        "schedules": [api_schedule(s, active) for s in merged.get("schedules") or []],
        "triggers": merged.get("triggers") or [],
        **concurrency_fields(merged.get("concurrency_limit")),
    }
    if "paused" in merged:
        spec["paused"] = bool(merged["paused"])
    if planned.extra.get("acme"):
        spec["version"] = f"{ctx.branch}-{ctx.commit}"
        spec["tags"] = [f"PROJECT_NAME={ctx.project}", f"BRANCH_NAME={ctx.branch}", *spec["tags"]]
    return spec


def native_spec(planned: Planned, merged: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """What `prefect deploy` would store for a prefect.yaml deployment: no fields of forkflow's own."""
    flow = planned.flow
    active = bool(merged.get("schedules_active", True))
    read = read_in_full(planned) if merged.get("schedules") else []
    spec: dict[str, Any] = {
        "flow_name": planned.server_flow,
        "entrypoint": merged.get("entrypoint") or flow.entrypoint,
        # prefect deploy stores the text "None" when neither the file nor the flow describes it
        "description": merged.get("description") or flow.description or "None",
        "version": merged.get("version") or planned.extra.get("version") or ctx.commit[:8],
        "parameters": merged.get("parameters") or {},
        "parameter_openapi_schema": planned.extra.get("parameter_openapi_schema") or parameter_schema(flow),
        "enforce_parameter_schema": bool(merged.get("enforce_parameter_schema", True)),
        "tags": list(merged.get("tags") or []),
        "work_pool_name": merged["work_pool"],
        "work_queue_name": merged.get("work_queue") or "default",
        "job_variables": dict(merged.get("job_variables") or {}),
        "schedules": [native_schedule(s, active, planned.source, read) for s in merged.get("schedules") or []],
        "triggers": merged.get("triggers") or [],
        **concurrency_fields(merged.get("concurrency_limit")),
    }
    if "paused" in merged:
        spec["paused"] = bool(merged["paused"])
    if merged.get("pull") is not None:
        spec["pull_steps"] = merged["pull"]
    return spec


def native_schedule(schedule: dict[str, Any], active: bool, where: str = "",
                    read: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A prefect.yaml schedule (its `{{ $VAR }}` and step outputs filled) as the API stores it. A template still in
    it (`{{ prefect.variables.x }}`, or a step output in a dry run) keeps the schedule as written until the server
    answers (`with_schedules_active`); an environment that switches schedules off wins either way. A schedule as it
    was `read` from the file, where it was checked in full, is not checked again."""
    from tasks.core.prefect_templates import has_templates, is_template

    own = schedule.get("active")
    if has_templates(schedule) or is_template(own):
        return {"schedule": {key: value for key, value in schedule.items()
                             if key not in ("active", "parameters", "slug", "replaces") and value is not None},
                "active": own if active and own is not None else active,
                "parameters": schedule.get("parameters") or {}, "slug": schedule.get("slug"), "pending": True}
    filled = schedule if schedule in (read or []) else checked(schedule, where)
    return prefect_cron_timezone(filled, api_schedule({**filled, "active": as_active(own, filled)}, active))


def read_in_full(planned: Planned) -> list[dict[str, Any]]:
    """The schedules of a prefect.yaml deployment that were checked in full when the file was read: those with no
    template (the file's models check a templated value once it is filled)."""
    from tasks.core.prefect_templates import placeholders

    return [schedule for _, layer in planned.layers for schedule in layer.get("schedules") or []
            if next(placeholders(schedule), None) is None]


def checked(schedule: dict[str, Any], where: str) -> dict[str, Any]:
    from tasks.core.prefect_schedules import checked as checked_in_full

    return checked_in_full(schedule, where)


def prefect_cron_timezone(filled: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """prefect deploy makes a cron schedule without a timezone with none (the server keeps null), where interval and
    rrule schedules get UTC."""
    if filled.get("cron") is not None and not filled.get("timezone"):
        stored["schedule"]["timezone"] = None
    return stored


def with_schedules_active(spec: dict[str, Any], where: str = "", dry_run: bool = False) -> dict[str, Any]:
    """The spec once the server's values are filled in: each schedule kept as written checked in full, its `active`
    a boolean. A dry run, which runs no step, leaves a schedule whose template a step would fill as written."""
    from tasks.core.prefect_templates import has_templates, is_template

    if "schedules" not in spec:
        return spec
    schedules = []
    for item in spec["schedules"] or []:
        if not item.get("pending"):
            schedules.append({**item, "active": as_active(item.get("active"), item["schedule"])})
            continue
        if dry_run and (has_templates(item["schedule"]) or is_template(item.get("active"))):
            schedules.append(item)
            continue
        if has_templates(item["schedule"]):
            raise ConfigError(f"{where}: schedule {item['schedule']}: a template nothing fills", where=where,
                              fix="give the value itself, a `{{ $VAR }}`, a build step's output or a "
                                  "`{{ prefect.variables.<name> }}` that exists; nothing was deployed")
        values = checked(item["schedule"], where)
        filled = prefect_cron_timezone(values, api_schedule({**values, "parameters": item["parameters"],
                                                             "slug": item["slug"]}, True))
        schedules.append({**filled, "active": as_active(item.get("active"), item["schedule"])})
    return {**spec, "schedules": schedules}


def as_active(value: Any, schedule: dict[str, Any] | None = None) -> bool | None:
    """A schedule's `active` as Prefect's API model reads it: a boolean, or text such as "true", "false", "1", "0"
    (a template's value)."""
    from tasks.core.prefect_templates import as_boolean

    if value is None or isinstance(value, bool):
        return value
    parsed = as_boolean(str(value))
    if parsed is not None:
        return parsed
    kind = next((f"{key} {(schedule or {})[key]!r}" for key in ("cron", "interval", "rrule") if (schedule or {}).get(key)),
                "a schedule")
    raise ConfigError(f"schedule {kind}: active is {value!r}, which is not a boolean (true or false)",
                      where="schedules.active", fix="give true or false, or a template whose value is one")


def name_collisions(desired: list[Desired]) -> None:
    """Two deployments of one flow on one server whose names differ only in case or `_`/`-` are refused."""
    seen: dict[tuple[str, str, str], Desired] = {}
    problems = []
    for item in desired:
        key = (item.api_url, normalized(item.flow), normalized(item.name))
        first = seen.setdefault(key, item)
        if first is not item:
            problems.append(f"  - {first.flow}/{first.name} ({first.environment}) and {item.flow}/{item.name} "
                            f"({item.environment}) would be one deployment on {item.api_url}")
    if problems:
        raise ConfigError("deployment names collide (case and '_'/'-' do not tell deployments apart):\n"
                          + "\n".join(problems), where="[flows] name_pattern and the deployment config",
                          fix="rename one flow or deployment, or put {name}/{env} in [flows] name_pattern; nothing was deployed")
