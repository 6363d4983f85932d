"""What `prefect deploy` accepts in a prefect.yaml, taken from Prefect's own models.

Prefect 3 reads a prefect.yaml through the pydantic models of
`prefect.cli.deploy._models`: a file they reject is skipped as a whole and
the deploy fails; keys they do not declare are dropped without a word. The
rules are read from those models (so a Prefect upgrade brings its rules
along), never from a list kept here: a rejected file is refused with what
Prefect says, and each ignored key gets a warning naming it (or, with
`[flows] strict = true`, a refusal) before forkflow's own reading of the
file, which then sees the file without those keys, as Prefect does. What
Prefect said is remembered in the state folder per Prefect version (each
file's verdict per content), so a run that changes nothing does not import
Prefect to hear it again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.deployment import Desired
from tasks.core.errors import ConfigError
from tasks.pipeline.settings import read_json, write_json

if TYPE_CHECKING:
    from pydantic import BaseModel

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


RULES_FILE = "prefect-rules.json"


def prefect_models() -> dict[str, type[BaseModel]]:
    from prefect.cli.deploy._models import ConcurrencyLimitSpec, DeploymentConfig, PrefectYamlModel, WorkPoolConfig

    from tasks.pipeline.timezones import list_timezones_once

    list_timezones_once()
    return {"file": PrefectYamlModel, "deployment": DeploymentConfig, "work_pool": WorkPoolConfig,
            "concurrency_limit": ConcurrencyLimitSpec}


def declared(model: type[BaseModel]) -> list[str]:
    return sorted({name for name, field in model.model_fields.items()} | {
        field.alias for field in model.model_fields.values() if field.alias})


class PrefectRules:
    """Prefect's rules, read from Prefect and remembered in the state folder per Prefect version (and each file's
    verdict per content), so a run that changes nothing does not import Prefect to hear them again."""

    def __init__(self, file: Path | None = None):
        from importlib.metadata import version

        self.file = file
        self.version = version("prefect")
        saved = (read_json(file) or {}) if file is not None else {}
        self.saved: dict[str, Any] = saved if saved.get("prefect") == self.version else {"prefect": self.version}

    def remembered(self, key: str, read: Any) -> Any:
        if key not in self.saved:
            self.saved[key] = read()
            if self.file is not None:
                write_json(self.file, self.saved, compact=True)
        return self.saved[key]

    def keys(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self.remembered(
            "keys", lambda: {kind: declared(model) for kind, model in prefect_models().items()})
        return found

    def refusal(self, data: dict[str, Any]) -> str:
        """What prefect deploy says of the file ("" when its models accept it). A file is its top-level keys and its
        deployments, each checked on its own by Prefect's models: a file whose parts were all accepted before, or
        whose new deployments pass Prefect's own schema of a deployment (entries_accepted), is accepted without
        importing Prefect; any other is read by Prefect, whose words a refusal keeps."""
        digest = digest_of(data)
        verdicts = self.remembered("verdicts", dict)
        if digest not in verdicts:
            parts = parts_of(data)
            accepted = parts is not None and self.parts_accepted(parts)
            verdicts[digest] = "" if accepted else refusal_of(data)
            if not verdicts[digest] and parts is not None:
                if not accepted:  # Prefect was imported to read it: its schema costs nothing more
                    self.shapes_accepted(parts[1], self.remembered("deployment_schema", deployment_schema))
                self.remember_parts(parts)
            if self.file is not None:
                write_json(self.file, self.saved, compact=True)
        found: str = verdicts[digest]
        return found

    def parts_accepted(self, parts: tuple[str, list[Any]]) -> bool:
        """The top level as Prefect accepted it before, and each deployment accepted before or by Prefect's schema."""
        known = self.saved.get("parts", {})
        top, entries = parts
        if top not in known:
            return False
        new = [entry for entry in entries if digest_of(entry) not in known]
        if not new:
            return True
        schema = self.remembered("deployment_schema", deployment_schema)
        unknown = [entry for entry in new if shape_digest(entry, schema) not in known]
        return not unknown or self.shapes_accepted(unknown, schema)

    def shapes_accepted(self, entries: list[Any], schema: dict[str, Any]) -> bool:
        """Whether Prefect's schema accepts every entry, each checked by its shape (see prefect_schema.shape); the
        shapes it accepts are remembered, so a later entry of one of them (new parameter values, a new description)
        needs no schema check at all. Entries Prefect's model accepted but its schema did not are never remembered
        by shape: the model may accept a value (`paused: "yes"`) that another of the same shape is refused for."""
        from tasks.core.schema_shape import shape
        from tasks.pipeline.prefect_schema import entries_accepted

        shapes = {shape_digest(entry, schema): shape(entry, schema) for entry in entries}
        accepted = [key for key, item in shapes.items() if entries_accepted([item], schema)]
        self.saved.setdefault("parts", {}).update(dict.fromkeys(accepted, ""))
        return len(accepted) == len(shapes)

    def remember_parts(self, parts: tuple[str, list[Any]]) -> None:
        known: dict[str, str] = self.saved.setdefault("parts", {})
        top, entries = parts
        for key in [top, *map(digest_of, entries)]:
            known.pop(key, None)
            known[key] = ""  # the newest last: the oldest go first past KEPT_PARTS
        for key in list(known)[:max(0, len(known) - KEPT_PARTS)]:
            del known[key]

    def version_types(self) -> list[str]:
        def read() -> list[str]:
            from prefect._internal.versioning import VersionType

            return [kind.value for kind in VersionType]
        found: list[str] = self.remembered("version_types", read)
        return found

    def name_patterns(self) -> dict[str, str]:
        """Prefect's own patterns for names: a flow's (`Name`) and a deployment's (`NameOrEmpty`)."""
        def read() -> dict[str, str]:
            from prefect.types import names

            return {"flow": names.WITHOUT_BANNED_CHARACTERS, "deployment": names.WITHOUT_BANNED_CHARACTERS_EMPTY_OK,
                    "banned": " ".join(names.BANNED_CHARACTERS)}
        found: dict[str, str] = self.remembered("names", read)
        return found


KEPT_PARTS = 20000  # remembered accepted parts (deployments of every file read, recent changes)


def digest_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def shape_digest(entry: Any, schema: dict[str, Any]) -> str:
    from tasks.core.schema_shape import shape

    return "shape:" + digest_of(shape(entry, schema))


def parts_of(data: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """(digest of the file without its deployments, the deployments), when its deployments are a list (Prefect
    checks each of them on its own); None otherwise."""
    entries = data.get("deployments", [])
    if not isinstance(entries, list):
        return None
    return digest_of({**data, "deployments": []}), entries


def deployment_schema() -> dict[str, Any]:
    """The JSON schema of Prefect's own model of a prefect.yaml deployment (prefect.cli.deploy._models)."""
    found: dict[str, Any] = prefect_models()["deployment"].model_json_schema(mode="validation")
    return found


def prefect_verdict(data: Any, source: str, strict: bool = False,
                    rules: PrefectRules | None = None) -> tuple[Any, list[str]]:
    """The file without the keys Prefect ignores, and a warning for each; a file Prefect rejects is refused."""
    if not isinstance(data, dict):
        return data, []
    rules = rules or PrefectRules()
    said = rules.refusal(data)
    if said:
        hint = (" (a schedule takes cron, interval or rrule, with timezone, anchor_date, day_or, active, parameters, "
                "slug, replaces)") if "schedule" in said else ""
        raise ConfigError(f"{source}: prefect deploy refuses this file; it says:\n{said}", where=source,
                          fix=f"correct the keys listed above{hint}; nothing was deployed")
    for index, entry in enumerate(data.get("deployments") or []):
        kind = entry.get("version_type") if isinstance(entry, dict) else None
        if kind is not None and kind not in rules.version_types():
            where = f"{source}: deployments.{index}({entry.get('name')})"
            raise ConfigError(f"{where}.version_type: Unknown version type: {kind} (as prefect deploy says)", where=where,
                              fix="use one of " + ", ".join(rules.version_types()) + ", or leave it out (Prefect then "
                                  "infers it)")
    unknown = ignored_keys(data, rules.keys(), drop=False)
    cleaned = copy.deepcopy(data) if unknown else data  # copied only to drop keys (a whole copy of 400 entries: 20 ms)
    ignored = ignored_keys(cleaned, rules.keys()) if unknown else []
    if ignored and strict:
        listing = "\n".join(f"  - {text}" for text in ignored)
        raise ConfigError(f"{source}: keys prefect deploy ignores ([flows] strict = true refuses them)\n{listing}",
                          where=source, fix="delete or move each key as said above, or set [flows] strict = false to "
                                            "deploy without them (with a warning each); nothing was deployed")
    return cleaned, [f"{source}: {text}" for text in ignored]


def ignored_keys(data: dict[str, Any], models: dict[str, list[str]], drop: bool = True) -> list[str]:
    """Drop, from `data` itself (unless not `drop`), each key Prefect's models do not declare; one line per key
    dropped (or to drop), keys Prefect ignores without a word included."""
    found = drop_unknown(data, models["file"], "", "file", QUIET if drop else frozenset(), drop)
    for index, entry in enumerate(data.get("deployments") or []):
        if not isinstance(entry, dict):
            continue
        where = f"deployments.{index}({entry.get('name', '#' + str(index))})"
        found += drop_unknown(entry, models["deployment"], where, "deployment", drop=drop)
        for key in ("work_pool", "concurrency_limit"):
            if isinstance(entry.get(key), dict):
                found += drop_unknown(entry[key], models[key], f"{where}.{key}", key, drop=drop)
    return found


def drop_unknown(mapping: dict[str, Any], known: list[str], where: str, kind: str,
                 quiet: set[str] | frozenset[str] = frozenset(), drop: bool = True) -> list[str]:
    lines = []
    for key in [key for key in mapping if key not in known]:
        if drop:
            del mapping[key]
        if key in quiet:
            continue
        path = f"{where}.{key}" if where else str(key)
        hint = HINTS.get((kind, str(key)), "delete it (or correct its spelling: allowed here: "
                                           + ", ".join(sorted(known)) + ")")
        lines.append(f"{path}: prefect deploy ignores this key, so forkflow ignores it too; {hint}")
    return lines


def refusal_of(data: dict[str, Any]) -> str:
    """What `prefect deploy` prints for the file (it skips the whole file, and the deploy fails), and where; "" when
    Prefect's models accept it."""
    from prefect.cli.deploy._config import _format_validation_error
    from pydantic import ValidationError

    try:
        prefect_models()["file"].model_validate(data)
    except ValidationError as err:
        try:
            said = _format_validation_error(err, data).replace("\n\n", "\n").strip()
        except Exception:  # noqa: BLE001 - Prefect's own formatter fails on some files (a list as a name): ours stands in
            said = "Invalid fields in deployments (prefect deploy's own message could not be made for this file)"
        details = sorted({detail(item, data) for item in as_written(err.errors())})
        return said + "\nwhere:\n" + "\n".join(f"  - {text}" for text in details)
    return ""


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


def refuse_names_prefect_refuses(desired: list[Desired], rules: PrefectRules | None = None) -> None:
    """Flow and deployment names Prefect's own name patterns refuse (a `/` in a flow name gives HTTP 422 half way
    through a deploy): refused before anything is written, each with the deployment it belongs to."""
    patterns = (rules or PrefectRules()).name_patterns()
    banned = patterns["banned"]
    problems = []
    for item in desired:
        for what, kind, value in (("flow name", "flow", item.flow), ("deployment name", "deployment", item.name)):
            if not re.match(patterns[kind], value):
                problems.append(f"  - {item.environment}: {what} {value!r} (deployment {item.name!r} of flow "
                                f"{item.flow!r}): Prefect refuses names with any of {banned}")
    if problems:
        raise ConfigError("names Prefect would refuse (nothing was deployed):\n" + "\n".join(sorted(set(problems))),
                          where="the flow's name= (or its function name) and the deployment's name in the config",
                          fix=f"rename them without {banned} (e.g. '-' for '/')")
