"""Deployment specs: the YAML config, its validation, and the desired deployments.

The config (`[flows] config`, usually deployments.yaml) is keyed by flow name:

    defaults:                  # every deployed flow, every environment
      tags: [orbit]
      environments:
        prod: {schedules_active: true}
    flows:
      hello:
        parameters: {name: orbit}
        environments:
          prod: {parameters: {name: production}}

The flows deployed are those listed under `flows`, and those whose code
carries a `FLOW_SPEC`; `every_flow: true` deploys every flow found.

Layers, weakest first: the environment in pipeline.toml (work pool, queue,
schedules on/off), `defaults`, `defaults.environments.<env>`, the flow's
`FLOW_SPEC`, `flows.<name>`, `flows.<name>.environments.<env>`. Mappings
(parameters, job_variables) merge, tags add up, everything else replaces.
Everything is checked before anything is applied; each problem names the
file and the key path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tasks.core.deployment import COMMIT_TAG, VERSION_TAG, Context, Desired, EnvironmentSettings
from tasks.core.discovery import FlowInfo
from tasks.core.errors import ConfigError, validation_problem
from tasks.core.schedules import cron_problem, is_timezone, rrule_problem, utc_iso


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Schedule(Strict):
    """One of cron, interval (seconds) or rrule, with an optional timezone."""

    cron: str | None = None
    interval: float | None = Field(default=None, gt=0, description="seconds between runs")
    rrule: str | None = None
    timezone: str | None = None
    day_or: bool | None = None
    anchor_date: str | None = None
    active: bool | None = None
    parameters: dict[str, Any] | None = None
    slug: str | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Schedule:
        kinds = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a schedule needs exactly one of cron, interval, rrule; got {kinds or 'none'}")
        if self.day_or is not None and self.cron is None:
            raise ValueError("day_or only applies to cron schedules")
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("anchor_date only applies to interval schedules")
        return self

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Prefect's own schedule classes decide (given as `schedule_problem` in the validation context);
        forkflow's cron check, which agrees with them on the cases it knows, says where the problem is."""
        if value is None:
            return value
        check = (info.context or {}).get("schedule_problem")
        problem = check({"cron": value}) if check else cron_problem(value)
        if problem:
            raise ValueError(f"bad cron {value!r}: {cron_problem(value) or problem}")
        return value

    @model_validator(mode="after")
    def _prefect_rules(self, info: ValidationInfo) -> Schedule:
        """Intervals and rrules as Prefect's schedule classes take them (with their timezone and anchor)."""
        check = (info.context or {}).get("schedule_problem")
        if check is None or self.cron is not None:
            return self
        fields = {k: v for k, v in self.model_dump(exclude_none=True).items()
                  if k in ("interval", "rrule", "timezone", "anchor_date")}
        problem = check(fields)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not is_timezone(value):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name like 'Europe/Berlin' or 'UTC'")
        return value

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        if value is not None:
            problem = rrule_problem(value)
            if problem:
                raise ValueError(f"bad rrule {value!r}: {problem}")
        return value

    @field_validator("anchor_date")
    @classmethod
    def _anchor(cls, value: str | None) -> str | None:
        if value is not None:
            utc_iso(value)
        return value


class ConcurrencyLimit(Strict):
    limit: int = Field(gt=0)
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = "ENQUEUE"
    grace_period_seconds: int | None = Field(default=None, ge=60, le=86400)


class Layer(Strict):
    """The keys one layer may set."""

    entrypoint: str | None = Field(default=None, pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    schedules: list[Schedule] | None = None
    schedules_active: bool | None = None
    work_pool: str | None = None
    work_queue: str | None = None
    job_variables: dict[str, Any] | None = None
    tags: list[str] | None = None
    concurrency_limit: int | ConcurrencyLimit | None = None
    paused: bool | None = None
    triggers: list[dict[str, Any]] | None = None
    enforce_parameter_schema: bool | None = None
    version: str | None = None

    @field_validator("concurrency_limit")
    @classmethod
    def _positive(cls, value: int | ConcurrencyLimit | None) -> int | ConcurrencyLimit | None:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive number of concurrent runs")
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: list[str] | None) -> list[str] | None:
        reserved = [t for t in value or [] if t.split("=", 1)[0] in (VERSION_TAG, COMMIT_TAG)]
        if reserved:
            raise ValueError(f"{VERSION_TAG}= and {COMMIT_TAG}= tags are set by forkflow; remove {reserved}")
        return value


class EnvironmentLayers(Layer):
    environments: dict[str, Layer] = {}


class Document(Strict):
    defaults: EnvironmentLayers = EnvironmentLayers()
    flows: dict[str, EnvironmentLayers] = {}
    every_flow: bool = Field(default=False, description="deploy every flow found, not only those listed or with a FLOW_SPEC")


# ---------------------------------------------------------------- validation


def parse_document(data: Any, source: str, context: dict[str, Any] | None = None) -> Document:
    """The YAML mapping as a Document, or a ConfigError naming each bad key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'defaults' and 'flows', got {type(data).__name__}",
                          where=source, fix="see docs/deploy.md for the format")
    try:
        return Document.model_validate(data, context=context)
    except ValidationError as err:
        problems = [describe(item) for item in err.errors()]
        raise invalid(source, problems) from None


def describe(item: Any) -> str:
    """A deployment file's pydantic error as a line (union labels are not keys)."""
    return validation_problem(item, allowed_here, skip=is_union_label)


UNION_LABELS = ("int", "float", "str", "bool", "ConcurrencyLimit", "PrefectSchedule", "WorkPool")


def is_union_label(part: str) -> bool:
    """pydantic's name for a branch of a union (`int`, `ConcurrencyLimit`, `function-after[...]`), not a key."""
    return part in UNION_LABELS or part.startswith(("function-", "list[", "dict[", "tuple["))


def allowed_here(loc: Sequence[str]) -> list[str]:
    if len(loc) == 1:
        return list(Document.model_fields)
    if "schedules" in loc[-3:-1]:
        return list(Schedule.model_fields)
    if loc[-2:-1] == ["concurrency_limit"]:
        return list(ConcurrencyLimit.model_fields)
    nested = "environments" in loc[:-1][-2:]
    return list(Layer.model_fields) if nested else list(EnvironmentLayers.model_fields)


def invalid(source: str, problems: list[str]) -> ConfigError:
    listing = "\n".join(f"  - {line}" for line in problems)
    return ConfigError(f"{source}: invalid deployment config\n{listing}", where=source,
                       fix="correct the keys listed above (format: docs/deploy.md); nothing was deployed")


def check_document(doc: Document, flows: list[FlowInfo], environments: list[str], source: str,
                   trigger_problem: Any = None) -> None:
    """Cross-checks: flow names, environment names, parameters against each flow's signature, triggers."""
    by_name = {flow.name: flow for flow in flows}
    problems: list[str] = []
    known = ", ".join(sorted(by_name)) or "none found"
    for name in doc.flows:
        if name not in by_name:
            problems.append(f"flows.{name}: no flow named {name!r} was found; flows: {known}")
    for path, entry in layers_with_paths(doc):
        problems += environment_problems(path, entry, environments)
    problems += parameter_problems(doc, flows)
    for flow in flows:
        if flow.spec:
            problems += spec_problems(flow)
    if trigger_problem is not None:
        problems += trigger_problems(doc, trigger_problem)
    if problems:
        raise invalid(source, problems)


def parameter_problems(doc: Document, flows: list[FlowInfo]) -> list[str]:
    """Parameters a layer sets that its flow's signature does not take."""
    problems = []
    for path, layer, targets in parameter_targets(doc, flows):
        for flow in targets:
            for parameter in sorted(layer.parameters or {}):
                if not flow.accepts(parameter):
                    accepted = ", ".join(p.name for p in flow.parameters) or "no parameters"
                    problems.append(f"{path}.parameters.{parameter}: flow {flow.name!r} ({flow.entrypoint}) "
                                    f"does not take this parameter; it takes: {accepted}")
    return problems


def trigger_problems(doc: Document, trigger_problem: Any) -> list[str]:
    problems = []
    for path, any_layer in all_layers(doc):
        for index, trigger in enumerate(any_layer.triggers or []):
            problem = trigger_problem(trigger)
            if problem:
                problems.append(f"{path}.triggers.{index}: {problem}")
    return problems


def layers_with_paths(doc: Document) -> list[tuple[str, EnvironmentLayers]]:
    return [("defaults", doc.defaults)] + [(f"flows.{name}", entry) for name, entry in doc.flows.items()]


def all_layers(doc: Document) -> list[tuple[str, Layer]]:
    found: list[tuple[str, Layer]] = []
    for path, entry in layers_with_paths(doc):
        found.append((path, entry))
        found += [(f"{path}.environments.{env}", layer) for env, layer in entry.environments.items()]
    return found


def environment_problems(path: str, entry: EnvironmentLayers, environments: list[str]) -> list[str]:
    known = ", ".join(environments) or "none configured"
    return [f"{path}.environments.{env}: no such environment; configured in pipeline.toml: {known}"
            for env in entry.environments if env not in environments]


def parameter_targets(doc: Document, flows: list[FlowInfo]) -> list[tuple[str, Layer, list[FlowInfo]]]:
    """Each layer that sets parameters, with the flows it applies to."""
    by_name = {flow.name: flow for flow in flows}
    found: list[tuple[str, Layer, list[FlowInfo]]] = []
    for path, layer in all_layers(doc):
        if not layer.parameters:
            continue
        if path.startswith("defaults"):
            found.append((path, layer, flows))
        else:
            flow = by_name.get(path.split(".")[1])
            if flow is not None:
                found.append((path, layer, [flow]))
    return found


def spec_problems(flow: FlowInfo) -> list[str]:
    where = f"{flow.file}: FLOW_SPEC"
    try:
        layer = Layer.model_validate(flow.spec)
    except ValidationError as err:
        return [f"{where}.{describe(item)}" for item in err.errors()]
    return [f"{where}.parameters.{p}: flow {flow.name!r} does not take this parameter"
            for p in sorted(layer.parameters or {}) if not flow.accepts(p)]


# ---------------------------------------------------------------- desired state


def layer_dict(layer: Layer | None) -> dict[str, Any]:
    if layer is None:
        return {}
    data = layer.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    data.pop("environments", None)
    return data


def desired_deployment(doc: Document, flow: FlowInfo, env: EnvironmentSettings, ctx: Context) -> Desired:
    """The managed fields of one flow's deployment in forkflow's own format (see deploydefs for every format)."""
    from tasks.core.deploydefs import desired_from, from_document

    return desired_from(from_document(doc, [flow], "")[0], env, ctx, ctx.name_pattern)
