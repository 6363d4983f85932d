"""One image cell's plan: its build inputs and their hash, an image already built from them, and what a run does
about them. The up-to-date check, the dry run and the real run share it; it loads none of the build machinery
(buildkit, the registry's pushes, evidence), so a no-op run's checks stay light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.core import image_tags
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.stages.image import inputs, look, platforms
from tasks.stages.image.setup import ImageSetup, base_name
from tasks.stages.image.state import read_state


@dataclass(frozen=True)
class CellPlan:
    """One cell's facts (its inputs, an image already built from them) and what a run does about them."""

    inputs: dict[str, Any]
    digest: str
    target: dict[str, Any]
    existing: str  # the id of an image built from these inputs; "" when there is none
    steps: core.CellSteps
    images: dict[str, str]  # several platforms: platform -> the id of its image built from these inputs


def plan_cell(setup: ImageSetup, client: Any, planned: inputs.Planned, recorded: Mapping[str, Any] | None,
              found: tuple[dict[str, Any], str] | None = None) -> CellPlan:
    """The one plan of a cell, for its up-to-date check, its dry run and its real run; `found`: its inputs and
    their hash when the caller has them already."""
    spec = planned.spec
    images = setup.images
    wanted = platforms.targets(client, images.platforms)
    built_inputs, digest = found or current_inputs(setup, client, planned, wanted)
    target = core.push_target(spec, images.push)
    previous = read_state(setup, spec.key)
    checked = target
    pushed_target = core.push_target(spec, True)
    if setup.plan_only and (recorded or {}).get("target") == core.input_hash(pushed_target):
        checked = pushed_target  # the last run pushed these tags: a run that only plans pushes has nothing to add
    each = platforms.existing(client, digest, wanted) if wanted else {}
    existing = list(each.values()) if wanted else docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest)
    present = previous is not None and (bool(previous.get("from_registry")) or bool(
        docker_adapter.image_id(client, (recorded or {}).get("image_id") or "")))
    built = len(each) == len(wanted) if wanted else bool(existing)
    steps = core.cell_steps(recorded, previous, built_inputs, checked, built=built, recorded_present=present)
    return CellPlan(built_inputs, digest, target, existing[0] if existing else "", steps, each)


def current_inputs(setup: ImageSetup, client: Any, planned: inputs.Planned,
                   wanted: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The cell's build inputs and their hash. The base counts by content: its layers and config in the engine
    for a plain build; for several platforms, the digest of each platform's image in the base's registry."""
    spec = planned.spec
    if wanted:
        digests = platforms.base_digests(setup, spec.base_image, wanted)
        built_inputs = {**core.build_inputs(spec, planned.dockerfile, image_tags.base_content(digests)),
                        "platforms": list(wanted)}
        return built_inputs, core.input_hash(built_inputs)
    base = look.base_content(setup, client, spec.base_image) if client is not None else None
    if base is None:
        raise ForkflowError(f"base image {spec.base_image} is not in the engine",
                            fix=f"run `doit image-base:{base_name(spec.flavor, spec.python)}`")
    built_inputs = core.build_inputs(spec, planned.dockerfile, base)
    return built_inputs, core.input_hash(built_inputs)
