"""Whether `image:<cell>` has anything to do, from one listing of the engine and one tag listing of the registry.

Up to date while the cell's input hash and tags are those of its last build,
the image that build made is still in the engine (or, for a cell found in the
registry, was never needed here), and every tag it pushed is still in the
registry. The engine and the registry are each asked once for all the cells
(tasks.stages.image.look).
"""

from __future__ import annotations

import os
from typing import Any

from tasks.core.errors import ForkflowError
from tasks.core.text import first_few
from tasks.pipeline.actions import is_dry_run
from tasks.pipeline.checks import Stale
from tasks.stages.image import inputs, look
from tasks.stages.image.base import chosen_bases
from tasks.stages.image.cell import plan_cell
from tasks.stages.image.setup import PLATFORM_ENV, ImageSetup, image_setup
from tasks.stages.image.state import in_report, read_state, revision


def image_is_current(key: str, task: Any, values: Any) -> bool | Stale:
    """Up to date while the input hash, the tags, the built image and the pushed tags are unchanged."""
    setup = image_setup()
    for why in (run_stale, cell_stale, tags_stale):
        stale = why(setup, key, values)
        if stale is not None:
            return stale
    return True


def run_stale(setup: ImageSetup, key: str, values: Any) -> Stale | None:
    """Why this run must look again whatever the cell's inputs are: a dry run, no build recorded, a split build,
    or no record in image.json."""
    if is_dry_run(False):
        return Stale("dry run")
    if not values or "input_hash" not in values:
        return Stale("first build (no build recorded)")
    if os.environ.get(PLATFORM_ENV):
        return Stale(f"one platform of a split build ({PLATFORM_ENV}): the registry decides")
    if not in_report(setup, key):
        return Stale("reports/image.json has no record of it (missing or unreadable): the run rebuilds it")
    return None


def cell_stale(setup: ImageSetup, key: str, values: Any) -> Stale | None:
    """What changed in the cell's inputs, tags or built image since its last build, from the engine's listing."""
    try:
        client = look.engine_view(setup)
        planned = inputs.load_plan(setup, revision(setup), chosen_bases(setup, client)).item(key)
        if not planned.deps_ready:
            return Stale("its wheels or wheelhouse are not ready yet")
        cell = plan_cell(setup, client, planned, values)
    except ForkflowError as err:  # the task itself reports the problem properly
        return Stale(f"cannot check: {err.what.splitlines()[0]}")
    return Stale(cell.steps.stale) if cell.steps.stale else None


def tags_stale(setup: ImageSetup, key: str, _: Any = None) -> Stale | None:
    """When images are pushed: a tag the last run pushed (or found) that the registry no longer has, or a
    registry that cannot say."""
    if not setup.images.push:
        return None
    pushed = sorted((read_state(setup, key) or {}).get("pushed") or {})
    try:
        there = look.registry_tags(setup)
    except ForkflowError as err:
        return Stale(f"cannot check its tags in the registry: {err.what.splitlines()[0]}")
    missing = [tag for tag in pushed if tag not in there]
    if missing:
        return Stale(f"{len(missing)} of its tags are no longer in the registry ({first_few(missing)}): the run pushes "
                     "them again")
    return None
