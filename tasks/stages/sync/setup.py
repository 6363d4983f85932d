"""The sync stage's options, built once per run from the config and the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tasks.pipeline.actions import is_dry_run, plan_only
from tasks.pipeline.settings import Settings


@dataclass(frozen=True)
class SyncSetup:
    """What the sync works on, from the config (no I/O to build it)."""

    settings: Settings
    fork: Path
    upstream_url: str
    origin_url: str
    main: str
    release: str
    upstream_main: str
    keep_backups: int
    push_backups: bool = True
    protected: bool = False
    dry_run: bool = False
    plan_only: bool = False

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir / STAGE

    @property
    def fingerprint(self) -> str:
        """Changes whenever the [fork] section does, so a changed config is never up to date."""
        fork = self.settings.config.fork
        return json.dumps(fork.model_dump() if fork else {}, sort_keys=True)

    @property
    def writes_nothing(self) -> bool:
        """A dry run, or a bare `doit` that only plans sync's writes."""
        return self.dry_run or self.plan_only


def sync_setup(current: Settings, dry_run: bool = False, keep_backups: int = -1) -> SyncSetup:
    fork = current.config.fork
    assert fork is not None and current.fork_path is not None
    return SyncSetup(
        settings=current,
        fork=current.fork_path,
        upstream_url=current.remote(fork.upstream),
        origin_url=current.remote(fork.origin),
        main=fork.main,
        release=fork.release,
        upstream_main=fork.upstream_main,
        keep_backups=keep_backups if keep_backups >= 0 else fork.keep_backups,
        push_backups=fork.push_backups,
        protected=fork.protected,
        dry_run=is_dry_run(dry_run),
        plan_only=plan_only("sync"),
    )






STAGE = "sync"
