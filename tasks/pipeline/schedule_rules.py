"""Prefect's rules for a schedule (cron, interval, rrule, timezone), applied without importing Prefect.

Prefect's schedule classes (`prefect.client.schemas.schedules`) check a cron
string with the croniter Prefect vendors, an rrule with dateutil's `rrulestr`
and a timezone against the zoneinfo database; importing them imports all of
prefect (about a second), which flow discovery and a deploy that changes one
deployment should not pay. So the same checks are made here with the same
parts: Prefect's own vendored croniter, loaded from its file without running
`prefect/__init__.py`, dateutil and zoneinfo. A Prefect without that file
(another layout) gets its own classes asked instead. tests/test_schedule_rules.py
holds both to the same verdicts on a corpus of schedules.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

VENDORED_CRONITER = Path("_vendor") / "croniter" / "croniter.py"
MAX_RRULE_LENGTH = 6500  # Prefect's own limit (prefect._internal.schemas.validators)


@functools.cache
def prefect_croniter() -> Any:
    """Prefect's vendored `croniter` class, from its file; None when this Prefect has no such file."""
    spec = importlib.util.find_spec("prefect")  # a top-level name: found, not imported
    folders = list(spec.submodule_search_locations or []) if spec else []
    files = [Path(folder) / VENDORED_CRONITER for folder in folders if (Path(folder) / VENDORED_CRONITER).is_file()]
    if not files:
        return None
    name = "_forkflow_prefect_croniter"
    loaded = importlib.util.spec_from_file_location(name, files[0])
    if loaded is None or loaded.loader is None:
        return None
    module = importlib.util.module_from_spec(loaded)
    sys.modules[name] = module
    loaded.loader.exec_module(module)
    return module.croniter


@functools.cache
def timezones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def schedule_problem(fields: dict[str, Any]) -> str | None:
    """Why Prefect's schedule classes refuse the schedule (their own words, the first two as forkflow shows
    them), or None."""
    croniter = prefect_croniter()
    if croniter is None:
        from tasks.pipeline.deployments import prefect_schedule_problem

        return prefect_schedule_problem(fields)
    zone = timezone_refusal(fields.get("timezone"))
    if "cron" in fields:
        found = [cron_refusal(croniter, str(fields["cron"])), zone]
    elif "interval" in fields:
        refused = interval_refusal(fields["interval"])
        found = [refused, None if refused else zone]  # Prefect checks the timezone once the interval is valid
    else:
        found = [rrule_refusal(str(fields["rrule"])), rrule_timezone_refusal(fields.get("timezone"))]
    problems = [problem for problem in found if problem]
    return "; ".join(problems[:2]) or None


def rrule_timezone_refusal(timezone: Any) -> str | None:
    """An rrule's timezone is checked against pytz's names (RRuleSchedule.valid_timezone), the others' against
    zoneinfo's."""
    import pytz

    if timezone is None or timezone in pytz.all_timezones_set:
        return None
    return f'Invalid timezone: "{timezone}"'


def timezone_refusal(timezone: Any) -> str | None:
    if timezone and timezone not in timezones():
        return f'Invalid timezone: "{timezone}" (specify in IANA tzdata format, for example, America/New_York)'
    return None


def cron_refusal(croniter: Any, cron: str) -> str | None:
    """prefect._internal.schemas.validators.validate_cron_string, word for word."""
    if not croniter.is_valid(cron):
        return f'Invalid cron string: "{cron}"'
    if any(part for part in cron.split() if part.casefold() in ["R", "H", "r", "h"]):
        return f'Random and Hashed expressions are unsupported, received: "{cron}"'
    return None


def interval_refusal(interval: Any) -> str | None:
    try:
        seconds = timedelta(seconds=float(interval))
    except (ValueError, TypeError, OverflowError) as err:
        return str(err)
    return None if seconds > timedelta(0) else "Input should be greater than 0 seconds"


def rrule_refusal(rrule: str) -> str | None:
    """prefect._internal.schemas.validators.validate_rrule_string, word for word."""
    from dateutil.rrule import rrulestr

    try:
        rrulestr(rrule, cache=True)
    except ValueError as err:
        return f'Invalid RRule string "{rrule}": {err}'
    if len(rrule) > MAX_RRULE_LENGTH:
        return f'Invalid RRule string "{rrule[:40]}..."\nMax length is {MAX_RRULE_LENGTH}, got {len(rrule)}'
    return None
