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

