"""Whether Prefect's model of a prefect.yaml deployment accepts an entry, decided from the model's own JSON schema.

`prefect deploy` reads each deployment of a prefect.yaml with its pydantic
model `DeploymentConfig`; importing it imports all of prefect (about a
second). Its JSON schema (remembered by prefect_rules per Prefect version)
decides most entries the same way without that import. This module only ever
accepts: an entry the schema refuses, or one whose meaning the schema does not
capture, is left to Prefect's model itself (whose words a refusal then
carries). Not captured, so left to Prefect:

- schedules in any spelling but the one prefect.yaml files use (cron, interval
  or rrule beside timezone, active...: `RawScheduleConfig`), where exactly one
  of cron, interval and rrule must be given (a check of Prefect's model, not of
  its schema); the nested `schedule: {cron: ...}` spelling runs Prefect's
  schedule classes' own checks;
- `sla:` entries (Prefect's SLA models);
- strings the schema marks as a duration or a date-time are read as pydantic
  reads them (a duration), or as ISO 8601 (a date-time; Prefect also takes
  other spellings, which go to Prefect).

tests/test_prefect_schema.py holds every acceptance here to Prefect's own model
on a corpus of entries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SCHEDULE_KINDS = ("cron", "interval", "rrule")
RAW_SCHEDULE = "RawScheduleConfig"


def entries_accepted(entries: list[Any], schema: dict[str, Any]) -> bool:
    """True only when Prefect's model of a deployment accepts every entry (False: ask Prefect)."""
    from jsonschema import FormatChecker
    from jsonschema.validators import Draft202012Validator

    checker = FormatChecker(formats=())
    checker.checks("duration")(is_duration)
    checker.checks("date-time")(is_date_time)
    whole = Draft202012Validator(schema, format_checker=checker)
    raw = Draft202012Validator({**schema, "$ref": f"#/$defs/{RAW_SCHEDULE}"}, format_checker=checker)
    return all(entry_accepted(entry, whole, raw) for entry in entries)


def entry_accepted(entry: Any, whole: Any, raw: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("sla") is not None or not whole.is_valid(entry):
        return False
    schedules = entry.get("schedules") or []
    single = [entry["schedule"]] if entry.get("schedule") is not None else []
    return isinstance(schedules, list) and all(raw_schedule(item, raw) for item in [*schedules, *single])


def raw_schedule(item: Any, raw: Any) -> bool:
    """A schedule as prefect.yaml files write it, with exactly one of cron, interval and rrule."""
    given = [kind for kind in SCHEDULE_KINDS if isinstance(item, dict) and item.get(kind) is not None]
    return len(given) == 1 and bool(raw.is_valid(item))


def is_duration(value: object) -> bool:
    if not isinstance(value, str):
        return True
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(dt.timedelta).validate_python(value)
    except ValidationError:
        return False
    return True


def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- shapes: one verdict for entries alike


ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
TYPE_ONLY_KEYS = ANNOTATIONS | {"type", "additionalProperties", "items", "anyOf"}
OBJECT_KEYS = ANNOTATIONS | {"type", "properties", "required", "additionalProperties"}


def shape(value: Any, schema: dict[str, Any]) -> Any:
    """`value` with every part whose schema constrains nothing but JSON types (parameters, job variables, tags,
    descriptions...) replaced by a stand-in of the same type: the schema accepts the shape exactly when it accepts
    the value, so one schema check (or a remembered one) answers every entry of that shape. Parts whose schema
    says more (schedules, formats, $refs it cannot follow plainly) stay as written."""
    return shaped(value, {key: item for key, item in schema.items() if key != "$defs"}, schema.get("$defs", {}))


def shaped(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    schema = resolved(schema, defs)
    if type_only(schema, defs):
        return stand_in(value)
    if set(schema) <= ANNOTATIONS | {"anyOf"} and "anyOf" in schema:
        matching = [branch for branch in schema["anyOf"] if admits(resolved(branch, defs), value)]
        return shaped(value, matching[0], defs) if len(matching) == 1 else value
    if set(schema) <= OBJECT_KEYS and isinstance(value, dict) and isinstance(schema.get("additionalProperties", True), bool):
        known = schema.get("properties", {})
        return {key: shaped(item, known[key], defs) if key in known else item for key, item in value.items()}
    return value


def resolved(schema: Any, defs: dict[str, Any]) -> Any:
    """A local `$ref` (with nothing but annotations beside it) as the definition it names."""
    if isinstance(schema, dict) and set(schema) <= ANNOTATIONS | {"$ref"} and "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/$defs/")
        return defs.get(name, schema)
    return schema


def type_only(schema: Any, defs: dict[str, Any]) -> bool:
    """Whether the schema says nothing about a value but JSON types (of it, its items and its properties' values)."""
    if not isinstance(schema, dict) or not set(schema) <= TYPE_ONLY_KEYS:
        return False
    parts = [schema[key] for key in ("additionalProperties", "items") if not isinstance(schema.get(key, True), bool)]
    return all(type_only(part, defs) for part in [*parts, *schema.get("anyOf", [])])


JSON_TYPES: tuple[tuple[type, str], ...] = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                                            (dict, "object"), (list, "array"), (type(None), "null"))


def json_types(value: Any) -> set[str]:
    """The JSON schema types `value` is an instance of (1.0 is an integer too, as jsonschema says)."""
    found = next((name for kind, name in JSON_TYPES if isinstance(value, kind)), None)
    if found == "integer":
        return {"integer", "number"}
    if found == "number":
        return {"number", "integer"} if float(value).is_integer() else {"number"}
    return {found} if found else set()


def admits(schema: Any, value: Any) -> bool:
    """Whether a branch may accept `value` by its declared type (a branch without one may accept anything)."""
    if not isinstance(schema, dict) or "type" not in schema:
        return True
    declared = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return bool(json_types(value) & set(declared)) or not json_types(value)


def stand_in(value: Any) -> Any:
    """A value of the same JSON type (and, for numbers, the same integer-ness); containers keep their keys and
    lengths. A value YAML made of another type (a date) stays as it is."""
    if isinstance(value, dict):
        return {key: stand_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stand_in(item) for item in value]
    if isinstance(value, float):
        return 0.0 if value.is_integer() else 0.5
    return STAND_INS.get(type(value), value)


STAND_INS: dict[type, Any] = {bool: False, int: 0, str: ""}
