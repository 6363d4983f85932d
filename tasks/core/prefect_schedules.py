"""A schedule as a prefect.yaml writes it, templates included.

prefect deploy resolves `{{ $VAR }}`, step outputs and server variables in
a schedule before it builds the schedule, so a templated `cron`, `interval`,
`timezone` or `active` is valid as written. Such a schedule is checked here
for its shape (its other values, its keys) and checked in full once the
templates are filled (`checked`), per environment, before anything is written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError, ValidatorFunctionWrapHandler, field_validator, model_validator

from tasks.core.deployspec import Schedule, describe
from tasks.core.errors import ConfigError
from tasks.core.prefect_templates import STAND_INS, as_boolean, is_template


class PrefectSchedule(Schedule):
    """interval may be seconds or an ISO 8601 / HH:MM:SS duration; any of STAND_INS' keys and `active` may be a
    template, filled before the schedule is checked in full."""

    interval: float | str | None = None  # type: ignore[assignment]  # a template until filled
    day_or: bool | str | None = None  # type: ignore[assignment]
    active: bool | str | None = None  # type: ignore[assignment]
    replaces: str | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _templates_later(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A schedule with templates: its other values are checked now, the templated ones once filled."""
        templated = {key: value for key, value in data.items() if key in STAND_INS and is_template(value)} \
            if isinstance(data, dict) else {}
        if not templated:
            return handler(data)
        checked = handler({**data, **{key: STAND_INS[key] for key in templated}})
        return checked.model_copy(update=templated)

    @field_validator("active", mode="before")
    @classmethod
    def _active(cls, value: Any) -> Any:
        """Text that is no template must read as a boolean, as Prefect's API model reads it."""
        if isinstance(value, str) and not is_template(value):
            parsed = as_boolean(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not a boolean (true or false) nor a template")
            return parsed
        return value

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not is_template(value):
            from pydantic import TypeAdapter

            value = TypeAdapter(timedelta).validate_python(value).total_seconds()
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            raise ValueError("an interval must be greater than 0 seconds")
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def checked(schedule: dict[str, Any], where: str) -> dict[str, Any]:
    """A filled schedule, checked in full as the file's own schedules are (cron, timezone, interval...)."""
    try:
        found = PrefectSchedule.model_validate({k: v for k, v in schedule.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(describe(item) for item in err.errors())
        raise ConfigError(f"{where}: a schedule, once its templates are filled, is not one Prefect accepts: {problems}",
                          where=where, fix="correct the values the templates give (or the templates); nothing was "
                                           "deployed") from None
    return found.model_dump(exclude_none=True, mode="json")
