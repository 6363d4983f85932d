"""Errors a user can act on: what went wrong, where, and what to do about it."""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tasks.core.text import shown


class ForkflowError(Exception):
    """A failure with a message meant for the person running the pipeline."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        lines = [self.what]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.fix:
            lines.append(f"  fix:   {self.fix}")
        return "\n".join(lines)


class ConfigError(ForkflowError):
    """pipeline.toml is unreadable or invalid; raised before any task runs."""

    exit_code = 2


class StateLocked(ForkflowError):
    """Another forkflow run holds the state folder's lock."""

    exit_code = 3


class CommandError(ForkflowError):
    """An outside command (git, docker, twine...) failed."""


class CommandTimedOut(CommandError):
    """An outside command ran past its time bound and was ended."""


class ServiceError(ForkflowError):
    """A local service could not be started, reached or stopped."""


DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # no space, a file size limit, a quota


def disk_full(err: OSError) -> ForkflowError | None:
    """A write that failed for want of space as a message with its file and the fix; None for any other OSError."""
    if err.errno not in DISK_FULL:
        return None
    where = str(err.filename) if err.filename else None
    return ForkflowError(f"no space left to write: {err.strerror or err}", where=where,
                         fix="free disk space on the filesystem holding it (`df -h`), then run again; finished work "
                             "is kept and re-checked")


def validation_problem(item: Mapping[str, Any], allowed: Callable[[Sequence[str]], list[str]], *, data: Any = None,
                       skip: Callable[[str], bool] = lambda part: False,
                       unknown: str = "unknown key; allowed: {allowed}") -> str:
    """One pydantic error as a line: the key path, the value when the raw mapping `data` is given, and for an
    unknown key the keys allowed there (`allowed` gets the key path; `skip` drops union labels from it)."""
    loc = tuple(str(part) for part in item["loc"] if not skip(str(part)))
    key = ".".join(shown(part) for part in loc) or "(top level)"  # keys from a repository: one inert line
    if item["type"] == "extra_forbidden":
        return f"{key}: " + unknown.format(allowed=", ".join(allowed(list(loc))), value=item.get("input"))
    if item["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    value = value_at(data, loc) if data is not None else None
    if data is None or isinstance(value, dict):
        return f"{key}: {message}"
    return f"{key} = {value!r}: {message}"


def value_at(data: Any, loc: Sequence[str]) -> Any:
    """The value at a key path in a raw mapping, or None."""
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data
