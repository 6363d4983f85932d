"""Errors a user can act on: what went wrong, where, and what to do about it."""

from __future__ import annotations


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


class ServiceError(ForkflowError):
    """A local service could not be started, reached or stopped."""
