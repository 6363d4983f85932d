"""Prefect's schedule models list the machine's time zones once per schedule they check.

`prefect._internal.schemas.validators.default_timezone` calls
`get_timezones()`, a fresh walk of the time zone database (about 4 ms) for
every schedule: 0.9 s for a prefect.yaml of 200 schedules. Within one
forkflow process the database does not change, so one listing serves every
check. Only forkflow's own process is touched: flow code runs in child
processes.
"""

from __future__ import annotations

import functools


def list_timezones_once() -> None:
    """Make Prefect's validators reuse the first listing of time zones (idempotent)."""
    from prefect._internal.schemas import validators

    listing = getattr(validators, "get_timezones", None)
    if listing is not None and not hasattr(listing, "cache_info"):
        setattr(validators, "get_timezones", functools.cache(listing))  # noqa: B010 - not a name Prefect exports
