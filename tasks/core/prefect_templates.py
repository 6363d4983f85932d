"""The templates of a prefect.yaml, and the plain-value rules around them.

`{{ $NAME }}` (the environment), `{{ prefect.variables.x }}` and
`{{ prefect.blocks.<type>.<name>.<field> }}` (the server), `{{ <step>.<output> }}`
(a build or push step): found, filled and checked here, in plain values. The
file's models (tasks.core.prefect_yaml, tasks.core.prefect_schedules) are needed
only to read a changed file; deploying what was read before needs only these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tasks.core.errors import ConfigError

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
DOCKER_WORKDIR = "/opt/prefect"  # where prefect deploy points workers at code in a custom image it did not build
IMAGE_STEPS = ("prefect_docker.deployments.steps.build_docker_image",
               "prefect_docker.deployments.steps.push_docker_image")
# valid stand-ins for templated values while the rest of the schedule is checked
STAND_INS = {"cron": "0 0 * * *", "interval": 60.0, "rrule": "FREQ=DAILY", "timezone": "UTC",
             "anchor_date": "2020-01-01T00:00:00+00:00", "day_or": True}


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


@dataclass(frozen=True)
class Reference:
    """A `{{ prefect.variables.x }}` or `{{ prefect.blocks.t.n.f }}` the server must answer."""

    kind: Literal["variable", "block"]
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return "prefect." + ("variables." if self.kind == "variable" else "blocks.") + ".".join(self.path)


def fill_environment(value: Any, environ: dict[str, str], where: str) -> Any:
    """`{{ $NAME }}` from the environment, anywhere in the value; every unset name is named at once."""
    missing = sorted(name for name in environment_names(value) if name not in environ)
    if missing:
        listing = ", ".join(f"{{{{ ${name} }}}}" for name in missing)
        raise ConfigError(f"{where}: {listing} refer{'s' if len(missing) == 1 else ''} to environment variables that are "
                          f"not set: {', '.join(missing)}", where=where,
                          fix="export them before deploying (prefect deploy reads them the same way), or give them "
                              "in [environments.<name>] variables")

    if not any("{{" in text for text in texts(value)):
        return value  # nothing to fill

    def one(text: str) -> Any:
        whole = PLACEHOLDER.fullmatch(text.strip())
        if whole and whole.group(1).startswith("$"):
            return environ[whole.group(1)[1:]]
        return PLACEHOLDER.sub(lambda m: environ[m.group(1)[1:]] if m.group(1).startswith("$") else m.group(0), text)
    return walk(value, one)


def environment_names(value: Any) -> set[str]:
    return {m.group(1)[1:] for m in placeholders(value) if m.group(1).startswith("$")}


def texts(value: Any) -> Iterator[str]:
    """Every text `walk` would visit (values, not keys), without copying anything."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def placeholders(value: Any) -> Iterator[re.Match[str]]:
    """Every `{{ ... }}` in the value's texts."""
    for text in texts(value):
        if "{{" in text:
            yield from PLACEHOLDER.finditer(text)


def walk(value: Any, on_text: Any) -> Any:
    if isinstance(value, str):
        return on_text(value)
    if isinstance(value, list):
        return [walk(item, on_text) for item in value]
    if isinstance(value, dict):
        return {key: walk(item, on_text) for key, item in value.items()}
    return value


def references(value: Any) -> set[Reference]:
    """Every server reference in the value."""
    return {reference for match in placeholders(value) if (reference := as_reference(match.group(1)))}


def as_reference(expression: str) -> Reference | None:
    parts = tuple(expression.split("."))
    if parts[:2] == ("prefect", "variables") and len(parts) == 3:
        return Reference("variable", parts[2:])
    if parts[:2] == ("prefect", "blocks") and len(parts) >= 4:  # prefect.blocks.<type>.<name>[.<field>...]
        return Reference("block", parts[2:])
    return None


def fill_references(value: Any, resolved: dict[Reference, Any]) -> Any:
    def one(text: str) -> Any:
        whole = PLACEHOLDER.fullmatch(text.strip())
        if whole and as_reference(whole.group(1)) in resolved:
            return resolved[as_reference(whole.group(1))]  # type: ignore[index]
        return PLACEHOLDER.sub(lambda m: str(resolved[ref]) if (ref := as_reference(m.group(1))) in resolved
                               else m.group(0), text)
    return walk(value, one)


def step_outputs(value: Any) -> set[str]:
    """`{{ <step id>.<output> }}` references (not environment variables, not prefect.*). `{{ ctx.* }}` (filled by
    the worker) and anything in triggers (event templates such as `{{ event.resource.id }}`) are not checked, as
    `prefect deploy` leaves them for run time."""
    found: set[str] = set()

    def collect(text: str) -> str:
        for match in PLACEHOLDER.finditer(text):
            expression = match.group(1)
            if not expression.startswith("$") and not expression.startswith("prefect.") and "." in expression:
                found.add(expression)
        return text
    walk(value, collect)
    return found


def image_step_ids(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Step id -> step name for the build/push steps that make images."""
    ids = {}
    for step in steps:
        for name, options in step.items():
            if name in IMAGE_STEPS and isinstance(options, dict) and options.get("id"):
                ids[str(options["id"])] = name
    return ids


def step_ids(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Step id -> step name for steps that run at deploy time."""
    return {str(options["id"]): name for step in steps for name, options in step.items()
            if isinstance(options, dict) and options.get("id")}


def entrypoint_files(entrypoint: str) -> list[str]:
    """Where the entrypoint's flow may be, first match wins: a file path as written (`./` dropped); a module path
    (`pkg.mod:f`, which the worker imports from its working directory or its installed packages) as
    `pkg/mod.py`, `pkg/mod/__init__.py`, then the same under `src/` (a package in the src layout)."""
    import posixpath

    path, function = entrypoint.rsplit(":", 1)
    if path.endswith(".py") or "/" in path:
        return [f"{posixpath.normpath(path)}:{function}"]
    module = path.replace(".", "/")
    files = [f"{module}.py", f"{module}/__init__.py"]
    return [f"{file}:{function}" for file in (*files, *(f"src/{file}" for file in files))]


def as_boolean(text: str) -> bool | None:
    """Text as pydantic's lax boolean reads it (Prefect's API models), or None."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    return None


def has_templates(schedule: dict[str, Any]) -> bool:
    return any(is_template(schedule.get(key)) for key in STAND_INS)
