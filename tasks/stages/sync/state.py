"""What one sync run has found and done so far, kept in the state folder between its four tasks,
and the stamp of the last successful sync.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tasks.core.sync import SyncError, SyncPlan
from tasks.core.sync_stamp import Stamp
from tasks.pipeline.settings import read_json, write_json
from tasks.stages.sync.setup import SyncSetup


@dataclass
class RunState:
    """What sync:fetch saw and planned, and what the later tasks did; saved between tasks."""

    dry_run: bool
    plan: SyncPlan
    observed: Stamp
    original_branch: str | None
    original_sha: str | None
    cloned: bool = False
    main_new: str | None = None
    release_new: str | None = None
    rebased: list[dict[str, Any]] = field(default_factory=list)
    backup: str | None = None
    backups: list[str] = field(default_factory=list)
    backup_tips: dict[str, str] = field(default_factory=dict)
    origin_backups: dict[str, str] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    pruned_on_origin: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)  # the TagPlan sync:fetch made
    moved_tags: list[dict[str, Any]] = field(default_factory=list)  # MovedTag items, after the rebase
    pushed_tags: list[str] = field(default_factory=list)
    resumed: bool = False  # main and release were moved by an interrupted sync; this run pushes them
    conflict: dict[str, Any] | None = None  # where a rebase stopped (files, commit, commands to finish)
    sync_branch: str | None = None  # [fork] protected: the branch the synced release goes to on origin
    sync_branch_origin: str | None = None  # that branch's tip on origin before the push (None: new)

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["plan"] = self.plan.to_dict()
        data["observed"] = asdict(self.observed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        values = dict(data)
        values["plan"] = SyncPlan.from_dict(data["plan"])
        values["observed"] = Stamp(**data["observed"])
        return cls(**values)


def save_state(setup: SyncSetup, state: RunState) -> None:
    write_json(setup.state_dir / "run.json", state.to_dict(), compact=True)


def load_state(setup: SyncSetup) -> RunState:
    data = read_json(setup.state_dir / "run.json")
    if data is None:
        raise SyncError("no sync plan found", where=str(setup.state_dir / "run.json"),
                        fix="run `doit sync` (sync:fetch makes the plan the other sync tasks follow)")
    return RunState.from_dict(data)
