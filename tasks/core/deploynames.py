"""Deployment names: forkflow's pattern, slugs, which names an environment owns, which environments a branch maps to."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.core.deployment import Context

DEFAULT_NAME_PATTERN = "{project}--{branch}--{flow}--{env}"


def slug(text: str) -> str:
    """Lowercase, with anything but letters, digits, dots and hyphens turned into hyphens."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9.-]+", "-", text.lower())).strip("-")


def deployment_name(ctx: Context, flow: str, env: str, name: str | None = None) -> str:
    """The pattern filled in; `{name}` is the name as written, or the flow's slug when there is none."""
    return (ctx.name_pattern or DEFAULT_NAME_PATTERN).format(project=ctx.project, branch=slug(ctx.branch), flow=slug(flow), env=env,
                                   name=name if name is not None else slug(flow))


def name_matcher(ctx: Context, env: str, pattern: str | None = None) -> re.Pattern[str]:
    """Names this project gives deployments of the current branch in one environment (any flow)."""
    pieces = re.split(r"(\{project\}|\{branch\}|\{flow\}|\{env\}|\{name\})",
                      pattern or ctx.name_pattern or DEFAULT_NAME_PATTERN)
    values = {"{project}": re.escape(ctx.project), "{branch}": re.escape(slug(ctx.branch)),
              "{flow}": "(?P<flow>.+)", "{name}": "(?P<name>.+)", "{env}": re.escape(env)}
    return re.compile("^" + "".join(values.get(piece, re.escape(piece)) for piece in pieces) + "$")


def fixed_prefix(ctx: Context, env: str, pattern: str | None = None) -> str:
    """The start of every name `name_matcher` accepts, for a server-side filter."""
    head = re.split(r"\{flow\}|\{name\}", pattern or ctx.name_pattern or DEFAULT_NAME_PATTERN, maxsplit=1)[0]
    return head.format(project=ctx.project, branch=slug(ctx.branch), env=env)


def environments_for_branch(branch_patterns: dict[str, str | None], branch: str) -> list[str]:
    """Environments a branch deploys to: exact `branch` matches win over glob patterns like '*'."""
    exact = [env for env, pattern in branch_patterns.items() if pattern == branch]
    if exact:
        return exact
    return [env for env, pattern in branch_patterns.items()
            if pattern and any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(branch, pattern)]
