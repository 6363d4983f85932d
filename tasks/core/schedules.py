"""Schedule values checked as the Prefect server checks them: cron fields, time zones, RRULEs."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def cron_problem(text: str) -> str | None:
    """Why a cron expression is invalid (5 fields, names, ranges, steps, L/W/#), or None."""
    macros = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
    if text.strip().lower() in macros:
        return None
    fields = text.split()
    if len(fields) == 6:
        seconds = cron_field_problem(fields[5], 0, 59, {}, "second")
        if seconds:
            return seconds
        fields = fields[:5]
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day month weekday, and optionally seconds), got {len(fields)}"
    limits = [("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
              ("month", 1, 12, MONTHS), ("day of week", 0, 7, WEEKDAYS)]
    for text_field, (label, low, high, names) in zip(fields, limits, strict=True):
        problem = cron_field_problem(text_field, low, high, names, label)
        if problem:
            return problem
    return None


MONTHS = {name: index + 1 for index, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}


WEEKDAYS = {name: index for index, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


def cron_field_problem(text: str, low: int, high: int, names: dict[str, int], label: str) -> str | None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return f"{label}: bad step {step!r}"
        if base in ("*", "?") or (label == "day of month" and base == "L"):
            continue
        if label == "day of month" and base.endswith("W"):
            return f"{label}: {base!r}: 'W' (nearest weekday) is not supported by Prefect's cron"
        if label == "day of week" and re.fullmatch(r"([0-7]|sun|mon|tue|wed|thu|fri|sat)(#[1-5]|L)", base.lower()):
            continue
        for bound in base.split("-", 1):
            value = names.get(bound.lower()) if bound.lower() in names else (int(bound) if bound.isdigit() else None)
            if value is None or not low <= value <= high:
                return f"{label}: {bound!r} is not in {low}-{high}"
    return None


def is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def rrule_problem(text: str) -> str | None:
    from dateutil.rrule import rrulestr

    try:
        rrulestr(text, forceset=True)
    except (ValueError, TypeError) as err:
        return str(err) or "not an RFC 5545 recurrence rule"
    return None


def utc_iso(text: str) -> str:
    """An ISO date-time in UTC with a Z, the way the API returns anchor dates (naive means UTC; microseconds
    when there are any, as the API keeps them)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
