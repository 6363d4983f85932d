"""A prefect.yaml, read the way `prefect --no-prompt deploy --all` reads it.

Each entry of `deployments:` becomes a `Planned` deployment whose name stays
as written. Top-level `pull:` applies where a deployment has none, `schedule:`
is the old spelling of one schedule, anchors under `definitions:` are plain
YAML, and `{{ $VAR }}` takes the environment variable (an unset one is an
error, not a literal `{{ $VAR }}` on the server). `{{ prefect.variables.x }}`
and `{{ prefect.blocks.<type>.<name>.<field> }}` are collected here and
resolved from the target server by the deploy stage. Build and push steps that
make Docker images are built by forkflow (tasks/core/docker_steps.py); `{{ <step>.image }}`
then means that image. Other build and push steps run at deploy time through
Prefect's own step runner (tasks/deployments.py), and their outputs fill
`{{ <step>.<output> }}` in the deployment. Pull steps keep `{{ <step>.<output> }}` and server references as
written, as prefect deploy does: the worker fills them in when it runs them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.core.deploydefs import PREFECT_YAML_PATTERN, Planned
from tasks.core.deployspec import ConcurrencyLimit, describe
from tasks.core.discovery import FlowInfo
from tasks.core.errors import ConfigError
from tasks.core.prefect_schedules import PrefectSchedule
from tasks.core.prefect_templates import (
    DOCKER_WORKDIR,
    IMAGE_STEPS,
    entrypoint_files,
    image_step_ids,
    step_ids,
    step_outputs,
)

ENTRYPOINT = r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$"  # path/to/file.py:function, ./path/file.py:function or package.module:function


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class WorkPool(Strict):
    name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = {}


class Deployment(Strict):
    name: str = Field(min_length=1)
    entrypoint: str = Field(pattern=ENTRYPOINT)
    version: str | None = None
    version_type: str | None = None
    tags: list[str] = []
    description: str | None = None
    schedule: PrefectSchedule | None = None
    schedules: list[PrefectSchedule] | None = None
    paused: bool | None = None
    concurrency_limit: int | ConcurrencyLimit | None = None
    flow_name: str | None = None
    parameters: dict[str, Any] = {}
    enforce_parameter_schema: bool | None = None
    build: list[dict[str, Any]] | None = None
    push: list[dict[str, Any]] | None = None
    pull: list[dict[str, Any]] | None = None
    work_pool: WorkPool | None = None
    triggers: list[dict[str, Any]] | None = None
    sla: list[dict[str, Any]] | None = None

    @field_validator("schedule", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """`schedule: {}`, as Prefect 2's `prefect init` template writes it: no schedule, as prefect deploy reads it."""
        return None if value == {} else value

    @model_validator(mode="after")
    def _one_schedule_spelling(self) -> Deployment:
        if self.schedule is not None and self.schedules is not None:
            raise ValueError("give either 'schedule' or 'schedules', not both (prefect deploy refuses both too)")
        return self


class PrefectFile(Strict):
    prefect_version: str | None = Field(default=None, alias="prefect-version")
    name: str | None = None
    definitions: Any = None
    build: list[dict[str, Any]] | None = None
    push: list[dict[str, Any]] | None = None
    pull: list[dict[str, Any]] | None = None
    deployments: list[Deployment] = []


def as_single_steps(data: Any) -> Any:
    """Prefect accepts one step as a mapping where a list is expected; so do we."""
    if isinstance(data, dict):
        return {key: [value] if key in ("build", "push", "pull") and isinstance(value, dict) and value else value
                for key, value in data.items()}
    return data


def parse_file(data: Any, source: str, context: dict[str, Any] | None = None) -> PrefectFile:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'deployments', got {type(data).__name__}", where=source,
                          fix="see docs/prefect-yaml.md")
    data = as_single_steps(data)
    if isinstance(data.get("deployments"), list):
        data["deployments"] = [as_single_steps(item) for item in data["deployments"]]
    try:
        return PrefectFile.model_validate(data, context=context)
    except ValidationError as err:
        problems = "\n".join(f"  - {prefect_key(item, data)}" for item in err.errors())
        raise ConfigError(f"{source}: not a prefect.yaml forkflow can deploy\n{problems}", where=source,
                          fix="correct the keys listed above (format: docs/prefect-yaml.md); nothing was deployed") from None


def prefect_key(item: Any, data: dict[str, Any]) -> str:
    """Name deployments by their `name` in messages (deployments.daily-etl.schedules.0...)."""
    loc = list(item["loc"])
    if len(loc) > 1 and loc[0] == "deployments" and isinstance(loc[1], int):
        entry = data["deployments"][loc[1]]
        if isinstance(entry, dict) and entry.get("name"):
            loc[1] = f"{loc[1]}({entry['name']})"
    text = describe({**item, "loc": loc})
    if item["type"] == "extra_forbidden":  # keys Prefect ignores are gone by now (tasks/pipeline/prefect_rules.py)
        text = (text.split("; allowed:")[0] + " (prefect deploy accepts it, forkflow cannot deploy it yet: write it in "
                "the spelling below, or deploy this one with prefect deploy); allowed: " + ", ".join(allowed_keys(loc)))
    return text


def allowed_keys(loc: list[Any]) -> list[str]:
    inner = [str(part) for part in loc[:-1] if not str(part)[0].isdigit()]
    if inner[-1:] == ["work_pool"]:
        return list(WorkPool.model_fields)
    if inner[-1:] in (["schedules"], ["schedule"]):
        return list(PrefectSchedule.model_fields)
    if inner[-1:] == ["deployments"]:
        return list(Deployment.model_fields)
    return [field.alias or name for name, field in PrefectFile.model_fields.items()]


# ---------------------------------------------------------------- templating


# ---------------------------------------------------------------- planned deployments


def planned_deployments(doc: PrefectFile, flows: list[FlowInfo], source: str, prefix: str) -> tuple[list[Planned], list[str]]:
    """One Planned per deployment, and notes on what was replaced; `prefix` is the file's folder under the flows root.

    `{{ $NAME }}` stays in the layers: each environment fills it in (its variables over the process environment)."""
    by_entrypoint = {flow.entrypoint: flow for flow in flows}
    planned: list[Planned] = []
    notes: list[str] = []
    problems: list[str] = []
    for index, deployment in enumerate(doc.deployments):
        where = f"{source}: deployments.{index}({deployment.name})"
        steps = [*(deployment.build if deployment.build is not None else doc.build or []),
                 *(deployment.push if deployment.push is not None else doc.push or [])]
        deploy_steps = [step for step in steps if not set(step) <= set(IMAGE_STEPS)]
        if image_step_ids(steps):
            notes.append(f"{deployment.name}: Docker build/push steps built by forkflow (BuildKit)")
        if deploy_steps:
            notes.append(f"{deployment.name}: runs {len(deploy_steps)} deploy-time step(s) with Prefect's step runner")
        if deployment.sla:
            problems.append(f"{where}.sla: SLAs are not deployed by forkflow yet; remove the key or deploy this one "
                            "with prefect deploy")
            continue
        flow = next((by_entrypoint[prefix + file] for file in entrypoint_files(deployment.entrypoint)
                     if prefix + file in by_entrypoint), None)
        if flow is None:
            problems.append(f"{where}.entrypoint: {missing_flow(deployment.entrypoint, flows, prefix)}")
            continue
        try:
            layer = deployment_layer(deployment, doc, where, {**image_step_ids(steps), **step_ids(deploy_steps)})
        except ConfigError as err:
            problems.append(err.what)
            continue
        planned.append(Planned(flow, deployment.name, ((None, layer),), pattern=PREFECT_YAML_PATTERN, native=True,
                               source=where, flow_name=flow.name,
                               extra={"image_steps": sorted(image_step_ids(steps)), "folder": prefix.rstrip("/"),
                                      "steps": deploy_steps, "version_type": deployment.version_type,
                                      "docker_steps": [step for step in steps if set(step) <= set(IMAGE_STEPS)]}))
    if problems:
        raise ConfigError(f"{source}: cannot deploy\n" + "\n".join(f"  - {p}" for p in problems), where=source,
                          fix="correct the deployments listed above; nothing was deployed")
    return planned, notes


def missing_flow(entrypoint: str, flows: list[FlowInfo], prefix: str) -> str:
    """Why no flow is at the entrypoint, with the flows there are; a hint when it starts at the flows folder."""
    known = ", ".join(sorted(f.entrypoint.removeprefix(prefix) for f in flows if f.entrypoint.startswith(prefix)))
    text = f"no flow at {entrypoint!r} (relative to {prefix.rstrip('/') or 'the flows folder'}); flows: {known or 'none found'}"
    if prefix and set(entrypoint_files(entrypoint)) & {f.entrypoint for f in flows}:
        text += ("; it is there relative to [flows] path: set [flows] run_from = \"path\" (as `prefect deploy "
                 "--prefect-file` run there)")
    wanted = {(prefix + file).lower() for file in entrypoint_files(entrypoint)}
    cased = sorted(f.entrypoint.removeprefix(prefix) for f in flows if f.entrypoint.lower() in wanted)
    if cased:
        text += f"; {cased[0]!r} differs only in case (paths are case-sensitive where workers run)"
    return text


def deployment_layer(deployment: Deployment, doc: PrefectFile, where: str, image_steps: dict[str, str]) -> dict[str, Any]:
    """The deployment's keys in forkflow's layer vocabulary."""
    data = deployment.model_dump(exclude_unset=True, mode="json", by_alias=True)
    pull = data.pop("pull", None) if "pull" in data else (doc.pull if doc.pull is not None else None)
    layer: dict[str, Any] = {key: data[key] for key in ("entrypoint", "description", "version", "tags", "parameters",
                                                       "paused", "concurrency_limit", "enforce_parameter_schema",
                                                       "triggers") if key in data}
    schedules = [data["schedule"]] if data.get("schedule") is not None else data.get("schedules")
    if schedules is not None:
        layer["schedules"] = [{k: v for k, v in s.items() if v is not None and k != "replaces"} for s in schedules]
    pool = data.get("work_pool") or {}
    if pool.get("name"):
        layer["work_pool"] = pool["name"]
    if pool.get("work_queue_name"):
        layer["work_queue"] = pool["work_queue_name"]
    if pool.get("job_variables"):
        layer["job_variables"] = pool["job_variables"]
    if pull is None and not image_steps and isinstance(pool.get("job_variables", {}).get("image"), str):
        pull = [{"prefect.deployments.steps.set_working_directory": {"directory": DOCKER_WORKDIR}}]
    if pull is not None:
        layer["pull"] = pull  # step outputs and server references stay: the worker fills them in
    stray = sorted(ref for ref in step_outputs({k: v for k, v in layer.items() if k not in ("pull", "triggers")})
                   if ref.split(".", 1)[0] not in image_steps and not ref.startswith("ctx."))
    if stray:
        raise ConfigError(f"{where}: {stray_message(stray, image_steps)}", where=where)
    return layer


def stray_message(stray: list[str], steps: dict[str, str]) -> str:
    """What `{{ x.y }}` names that nothing fills at deploy time: no step has the id `x` (prefect deploy drops the key
    with a warning, so the value would be lost)."""
    listing = ", ".join(f"{{{{ {ref} }}}}" for ref in stray)
    ids = ", ".join(sorted(steps)) or "none"
    return (f"{listing}: no build or push step has the id {stray[0].split('.', 1)[0]!r} (step ids here: {ids}), so "
            "nothing fills it at deploy time (prefect deploy would drop the key); give the value itself, or a "
            "`{{ $VAR }}` or `{{ prefect.variables.<name> }}`")
