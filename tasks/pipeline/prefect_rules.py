"""What `prefect deploy` accepts in a prefect.yaml, taken from Prefect's own models.

Prefect 3 reads a prefect.yaml through the pydantic models of
`prefect.cli.deploy._models`: a file they reject is skipped as a whole and
the deploy fails; keys they do not declare are dropped without a word. The
rules are read from those models (so a Prefect upgrade brings its rules
along), never from a list kept here: a rejected file is refused with what
Prefect says, and each ignored key gets a warning naming it (or, with
`[flows] strict = true`, a refusal) before forkflow's own reading of the
file, which then sees the file without those keys, as Prefect does.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ValidationError

from tasks.core.deployspec import Desired
from tasks.core.errors import ConfigError

# keys Prefect ignores that mean something elsewhere: what was meant, and the way to it
HINTS = {
    ("deployment", "job_variables"): "they were never applied; move them under work_pool: job_variables: to apply "
                                     "them, or delete them",
    ("deployment", "work_queue_name"): "that queue was never used; move it under work_pool: to use it, or delete it",
    ("deployment", "is_schedule_active"): "Prefect 2's key: Prefect 3 reads `active:` on each schedule (and "
                                          "`paused:` on the deployment); delete it",
    ("deployment", "schedule_active"): "Prefect 3 reads `active:` on each schedule; delete it",
    ("work_pool", "type"): "the pool's type is the server's (`prefect work-pool create <name> --type <type>`); "
                           "delete it",
    ("work_pool", "flow_variables"): "Prefect 3 reads work_pool: job_variables:; move them there or delete them",
    ("file", "version"): "a deployment's version is `version:` on the deployment; delete it",
}
QUIET = {"definitions"}  # where YAML anchors live: Prefect ignores it by design, so nobody needs telling


def prefect_models() -> dict[str, type[BaseModel]]:
    from prefect.cli.deploy._models import ConcurrencyLimitSpec, DeploymentConfig, PrefectYamlModel, WorkPoolConfig

    return {"file": PrefectYamlModel, "deployment": DeploymentConfig, "work_pool": WorkPoolConfig,
            "concurrency_limit": ConcurrencyLimitSpec}


def declared(model: type[BaseModel]) -> set[str]:
    return {name for name, field in model.model_fields.items()} | {
        field.alias for field in model.model_fields.values() if field.alias}


def prefect_verdict(data: Any, source: str, strict: bool = False) -> tuple[Any, list[str]]:
    """The file without the keys Prefect ignores, and a warning for each; a file Prefect rejects is refused."""
    if not isinstance(data, dict):
        return data, []
    models = prefect_models()
    try:
        models["file"].model_validate(data)
    except ValidationError as err:
        raise rejected(err, data, source) from None
    from tasks.pipeline.version_info import check_version_type

    for index, entry in enumerate(data.get("deployments") or []):
        if isinstance(entry, dict):
            check_version_type(entry.get("version_type"), f"{source}: deployments.{index}({entry.get('name')})")
    cleaned = copy.deepcopy(data)
    ignored = ignored_keys(cleaned, models)
    if ignored and strict:
        listing = "\n".join(f"  - {text}" for text in ignored)
        raise ConfigError(f"{source}: keys prefect deploy ignores ([flows] strict = true refuses them)\n{listing}",
                          where=source, fix="delete or move each key as said above, or set [flows] strict = false to "
                                            "deploy without them (with a warning each); nothing was deployed")
    return cleaned, [f"{source}: {text}" for text in ignored]


def ignored_keys(data: dict[str, Any], models: dict[str, type[BaseModel]]) -> list[str]:
    """Drop, from `data` itself, each key Prefect's models do not declare; one line per key dropped."""
    found = drop_unknown(data, models["file"], "", "file", QUIET)
    for index, entry in enumerate(data.get("deployments") or []):
        if not isinstance(entry, dict):
            continue
        where = f"deployments.{index}({entry.get('name', '#' + str(index))})"
        found += drop_unknown(entry, models["deployment"], where, "deployment")
        for key in ("work_pool", "concurrency_limit"):
            if isinstance(entry.get(key), dict):
                found += drop_unknown(entry[key], models[key], f"{where}.{key}", key)
    return found


def drop_unknown(mapping: dict[str, Any], model: type[BaseModel], where: str, kind: str,
                 quiet: set[str] | frozenset[str] = frozenset()) -> list[str]:
    known = declared(model)
    lines = []
    for key in [key for key in mapping if key not in known]:
        del mapping[key]
        if key in quiet:
            continue
        path = f"{where}.{key}" if where else str(key)
        hint = HINTS.get((kind, str(key)), "delete it (or correct its spelling: allowed here: "
                                           + ", ".join(sorted(known)) + ")")
        lines.append(f"{path}: prefect deploy ignores this key, so forkflow ignores it too; {hint}")
    return lines


def rejected(err: ValidationError, data: dict[str, Any], source: str) -> ConfigError:
    """What `prefect deploy` prints for the file (it skips the whole file, and the deploy fails), and where."""
    from prefect.cli.deploy._config import _format_validation_error

    said = _format_validation_error(err, data).replace("\n\n", "\n").strip()
    details = sorted({detail(item, data) for item in as_written(err.errors())})
    listing = "\n".join(f"  - {text}" for text in details)
    return ConfigError(f"{source}: prefect deploy refuses this file; it says:\n{said}\nwhere:\n{listing}", where=source,
                       fix="correct the keys listed above (a schedule takes cron, interval or rrule, with timezone, "
                           "anchor_date, day_or, active, parameters, slug, replaces); nothing was deployed")


def as_written(errors: list[Any]) -> list[Any]:
    """A schedule is tried against each spelling Prefect knows; the errors worth showing are those of the spelling
    prefect.yaml files use (`RawScheduleConfig`: cron/interval/rrule beside timezone, active...)."""
    raw = [item for item in errors if any("RawScheduleConfig" in str(part) for part in item["loc"])]
    spelled = {tuple(item["loc"][:4]) for item in raw}
    return [item for item in errors if item in raw or tuple(item["loc"][:4]) not in spelled]


def detail(item: Any, data: dict[str, Any]) -> str:
    """One error of Prefect's model as a key path (deployments named), without pydantic's union labels."""
    loc: list[Any] = [part for part in item["loc"] if isinstance(part, int) or (part[:1].islower() and "[" not in part)]
    if len(loc) > 1 and loc[0] == "deployments" and isinstance(loc[1], int):
        entry = (data.get("deployments") or [])[loc[1]]
        loc[1] = f"{loc[1]}({entry.get('name', '#' + str(loc[1])) if isinstance(entry, dict) else '#' + str(loc[1])})"
    path = ".".join(str(part) for part in loc)
    if item["type"] == "extra_forbidden":
        return f"{path}: unknown key (Prefect refuses it here)"
    return f"{path}: {item['msg']}"


def refuse_names_prefect_refuses(desired: list[Desired]) -> None:
    """Flow and deployment names Prefect's own name types refuse (a `/` in a flow name gives HTTP 422 half way
    through a deploy): refused before anything is written, each with the deployment it belongs to."""
    from prefect.types.names import BANNED_CHARACTERS, Name, NameOrEmpty
    from pydantic import TypeAdapter

    flow_name, deployment_name = TypeAdapter(Name), TypeAdapter(NameOrEmpty)
    problems = []
    for item in desired:
        for what, adapter, value in (("flow name", flow_name, item.flow), ("deployment name", deployment_name, item.name)):
            try:
                adapter.validate_python(value)
            except ValidationError:
                problems.append(f"  - {item.environment}: {what} {value!r} (deployment {item.name!r} of flow "
                                f"{item.flow!r}): Prefect refuses names with any of {' '.join(BANNED_CHARACTERS)}")
    if problems:
        raise ConfigError("names Prefect would refuse (nothing was deployed):\n" + "\n".join(sorted(set(problems))),
                          where="the flow's name= (or its function name) and the deployment's name in the config",
                          fix="rename them without " + " ".join(BANNED_CHARACTERS) + " (e.g. '-' for '/')")
