"""The up-to-date check of sync:main, sync:release and sync:push: the tips sync:fetch saw are those the last
successful sync left, and no tag is to be pushed or moved. It reads two small files and loads neither the sync
rules nor the planner, so a no-op run pays nothing more for it."""

from __future__ import annotations

from typing import Any

from tasks.core.sync_stamp import Stamp
from tasks.pipeline.settings import read_json
from tasks.stages.sync.setup import SyncSetup


def load_stamp(setup: SyncSetup) -> Stamp | None:
    data = read_json(setup.state_dir / "stamp.json")
    try:
        return Stamp(**data) if data else None
    except TypeError:  # a stamp of another shape: as if there were none, the next sync writes it again
        return None


def nothing_moved(setup: SyncSetup, *_: Any) -> bool:
    """doit `uptodate`: the tips seen at this fetch are those the last successful sync left, and no tag
    is to be pushed or moved."""
    data = read_json(setup.state_dir / "run.json")
    stamp = load_stamp(setup)
    try:
        return bool(data and stamp and Stamp(**data["observed"]) == stamp and no_tag_work(data.get("tags")))
    except (KeyError, TypeError, ValueError, AttributeError):  # a plan of another shape: the sync tasks run again
        return False


def no_tag_work(tags: Any) -> bool:
    """The plan's tags (tasks.core.sync_tags.TagPlan.to_dict) push and move nothing; a value of another shape
    raises TypeError or AttributeError, as reading it as a TagPlan does."""
    tags = tags or {}
    return list(tags.get("push", [])) == [] and list(tags.get("move", [])) == []
