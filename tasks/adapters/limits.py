"""How long forkflow waits for another machine: every call to a remote (git fetch, ls-remote, push and clone; the
package index; the registry; a Prefect API; the Docker engine) is bounded, and a remote that does not answer in time
fails with what did not answer, the setting that bounds it and what to do.

The bounds come from `[timeouts]` in pipeline.toml (tasks.pipeline.settings installs them when it loads the
config; an action carries them into worker processes, as it carries the run mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.core.errors import ForkflowError


@dataclass(frozen=True)
class Limits:
    """Seconds a call to each kind of remote may take in all."""

    git: float = 300.0
    index: float = 60.0
    registry: float = 60.0
    prefect: float = 60.0
    engine: float = 60.0


class NoAnswer(ForkflowError):
    """A remote accepted the connection (or not) and did not answer in time."""


_current: list[Limits] = [Limits()]


def configure(limits: Limits) -> None:
    _current[0] = limits


def limits() -> Limits:
    return _current[0]


def no_answer(what: str, kind: str, seconds: float, *, where: str | None = None) -> NoAnswer:
    """The error for a remote of `kind` (a key of [timeouts]) that did not answer within `seconds`."""
    return NoAnswer(f"{what} did not answer within {seconds:g} s",
                    where=(f"{where}; the bound is [timeouts] {kind} in pipeline.toml" if where
                           else f"the bound is [timeouts] {kind} in pipeline.toml"),
                    fix=f"check that it is up and reachable from this machine, then run again; if it is only slow, "
                        f"raise [timeouts] {kind} (now {seconds:g} s)")
