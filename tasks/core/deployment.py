"""One deployment as it should be on a server, and the settings and facts it is made from.

Plain values, no config models: the deploy stage plans and writes with these
without loading the validation of the config files (tasks.core.deployspec,
tasks.core.prefect_yaml), which a run needs only when a config file changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.core.deploynames import DEFAULT_NAME_PATTERN
from tasks.core.schedules import utc_iso
from tasks.core.values import deep_merge

DEFAULT_RRULE_START = "DTSTART:20200101T000000\n"
VERSION_TAG = "PACKAGE_VERSION"
COMMIT_TAG = "COMMIT_HASH"


@dataclass(frozen=True)
class EnvironmentSettings:
    """What pipeline.toml says about one environment."""

    name: str
    api_url: str
    work_pool: str | None
    work_queue: str | None
    schedules: bool | None
    variables: dict[str, str] = field(default_factory=dict, repr=False)
    default_work_pool: str | None = None


@dataclass(frozen=True)
class Context:
    """Facts about this deploy that are the same for every deployment."""

    project: str
    branch: str
    commit: str
    version: str
    name_pattern: str | None = DEFAULT_NAME_PATTERN


@dataclass(frozen=True)
class Desired:
    """One deployment as it should be on the server; `spec` holds the fields forkflow manages."""

    name: str
    flow: str
    environment: str
    api_url: str
    spec: dict[str, Any] = field(default_factory=dict)
    pattern: str = DEFAULT_NAME_PATTERN
    key: str = ""
    native: bool = False
    runtime: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """Flow and name: what makes a deployment unique on a server."""
        return f"{self.flow}/{self.name}"

    @property
    def work_pool(self) -> str:
        return str(self.spec["work_pool_name"])


def merged_layers(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack layers: parameters and job_variables merge deeply, tags add up, the rest replaces."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key in ("parameters", "job_variables") and isinstance(result.get(key), dict):
                result[key] = deep_merge(result[key], value)
            elif key == "tags" and key in result:
                result[key] = result[key] + [tag for tag in value if tag not in result[key]]
            else:
                result[key] = value
    return result


def concurrency_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {"concurrency_limit": None, "concurrency_options": None}
    if isinstance(value, int):
        return {"concurrency_limit": value, "concurrency_options": None}
    options = {"collision_strategy": value["collision_strategy"]}
    if value.get("grace_period_seconds") is not None:
        options["grace_period_seconds"] = value["grace_period_seconds"]
    return {"concurrency_limit": value["limit"], "concurrency_options": options}


def api_schedule(schedule: dict[str, Any], active: bool) -> dict[str, Any]:
    """A schedule in the form the API stores it, so what we send is what we read back."""
    timezone = schedule.get("timezone") or "UTC"
    if schedule.get("cron") is not None:
        body: dict[str, Any] = {"cron": schedule["cron"], "timezone": timezone, "day_or": schedule.get("day_or", True)}
    elif schedule.get("interval") is not None:
        body = {"interval": float(schedule["interval"]), "timezone": timezone}
        if schedule.get("anchor_date"):
            body["anchor_date"] = utc_iso(schedule["anchor_date"])
    else:
        text = schedule["rrule"]
        body = {"rrule": text if text.startswith("DTSTART") else DEFAULT_RRULE_START + text, "timezone": timezone}
    return {"schedule": body, "active": active and schedule.get("active") is not False,
            "parameters": schedule.get("parameters") or {}, "slug": schedule.get("slug")}
