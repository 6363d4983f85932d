"""acme-portal-sdk's `.acme_portal_sdk/static_flow_deploy_config.yaml`, read in place.

The file is keyed by flow name (underscores), each entry with the keys
acme-portal-sdk's `PrefectDeployInfoPrep` reads: cron, work_pool_name,
work_queue_name, parameters, paused, concurrency_limit (1 when not given,
as acme's default), description, triggers (`{DeploymentEventTrigger: {...}}`).
Deployments keep acme's conventions: the name
`{project}--{branch}--{flow}--{env}`, the flow registered under its
underscore name, tags PROJECT_NAME/BRANCH_NAME/COMMIT_HASH/PACKAGE_VERSION and
the version `<branch>-<commit>`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.core.deploydefs import FORKFLOW_PATTERN, Planned
from tasks.core.deployspec import Schedule, describe
from tasks.core.discovery import FlowInfo, normalized
from tasks.core.errors import ConfigError

TRIGGER_TYPES = {"DeploymentEventTrigger": "event", "DeploymentMetricTrigger": "metric",
                 "DeploymentCompoundTrigger": "compound", "DeploymentSequenceTrigger": "sequence"}


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    import_path: str | None = None
    cron: str | None = None
    description: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    parameters: dict[str, Any] | None = None
    paused: bool | None = None
    concurrency_limit: int | None = 1
    triggers: dict[str, dict[str, Any]] | None = None


def parse_entries(data: Any, source: str, context: dict[str, Any] | None = None) -> dict[str, Entry]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of flow names to their settings, got {type(data).__name__}",
                          where=source, fix="see docs/acme.md")
    problems: list[str] = []
    entries: dict[str, Entry] = {}
    for key, value in data.items():
        try:
            entries[str(key)] = Entry.model_validate(value or {})
            if entries[str(key)].cron:
                Schedule.model_validate({"cron": entries[str(key)].cron}, context=context)
        except ValidationError as err:
            for item in err.errors():
                text = describe({**item, "loc": [key, *item["loc"]]})
                if item["type"] == "extra_forbidden":
                    text = text.split("; allowed:")[0] + "; allowed: " + ", ".join(Entry.model_fields)
                problems.append(text)
    if problems:
        raise ConfigError(f"{source}: invalid acme static config\n" + "\n".join(f"  - {p}" for p in problems),
                          where=source, fix="correct the keys listed above (format: docs/acme.md); nothing was deployed")
    return entries


def planned_deployments(entries: dict[str, Entry], flows: list[FlowInfo], source: str) -> list[Planned]:
    by_name = {normalized(flow.name): flow for flow in flows}
    problems = []
    planned = []
    taken: dict[str, str] = {}
    for key, entry in entries.items():
        flow = by_name.get(normalized(entry.name or key))
        if flow is None:
            problems.append(f"{key}: no flow named {entry.name or key!r}; flows: {', '.join(sorted(by_name)) or 'none found'}")
            continue
        if flow.name in taken:
            problems.append(f"{key}: flow {flow.name!r} is already deployed by entry {taken[flow.name]!r} "
                            "(one entry per flow: its deployment name would be the same)")
            continue
        taken[flow.name] = key
        planned.append(Planned(flow, None, ((None, layer(entry)),), pattern=FORKFLOW_PATTERN, source=f"{source}: {key}",
                               flow_name=flow.name.replace("-", "_"), extra={"acme": True}))
    if problems:
        raise ConfigError(f"{source}: invalid acme static config\n" + "\n".join(f"  - {p}" for p in problems),
                          where=source, fix="name flows as `doit flows` lists them; nothing was deployed")
    return planned


def layer(entry: Entry) -> dict[str, Any]:
    result: dict[str, Any] = {"concurrency_limit": entry.concurrency_limit}
    if entry.cron:
        result["schedules"] = [{"cron": entry.cron}]
    for key, target in (("description", "description"), ("work_pool_name", "work_pool"),
                        ("work_queue_name", "work_queue"), ("parameters", "parameters"), ("paused", "paused")):
        value = getattr(entry, key)
        if value is not None:
            result[target] = value
    if entry.triggers:
        result["triggers"] = [trigger(kind, params) for kind, params in entry.triggers.items()]
    return result


def trigger(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind not in TRIGGER_TYPES:
        raise ConfigError(f"unknown trigger type {kind!r}; allowed: {', '.join(TRIGGER_TYPES)}",
                          fix="use one of acme's trigger class names")
    return {"type": TRIGGER_TYPES[kind], **params}
