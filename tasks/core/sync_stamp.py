"""The stamp of the last successful sync: the tips right after it. Apart from the sync rules (tasks.core.sync) so
the check that compares it loads nothing else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stamp:
    """Tips right after the last successful sync; unchanged tips mean there is nothing to do."""

    config: str
    upstream_main: str | None
    origin_main: str | None
    origin_release: str | None
    main: str | None
    release: str | None
