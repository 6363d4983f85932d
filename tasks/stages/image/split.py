"""One platform of a multi-platform image, built on its own (FORKFLOW_IMAGE_PLATFORM=linux/arm64): in its own
state folder, on its own runner. The cell's input hash is the one of the whole cell (every configured
platform), so the image is the one a single run would build; it is smoke-tested and pushed under
`<first tag>-<arch>`, with its SBOM, and no index is put: `doit image-join` (tasks.stages.image.join) puts
the index of the platforms' images under the cell's tags. The registry is the hand-off, and the cache: a
platform image already there with this input hash is not built again.
"""

from __future__ import annotations

import os
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters import registry
from tasks.adapters.console import say
from tasks.core import image_tags
from tasks.core import images as core
from tasks.core.errors import ConfigError
from tasks.pipeline.checks import is_forgotten
from tasks.stages.image import dashboard, evidence, inputs, platforms, tags
from tasks.stages.image.setup import PLATFORM_ENV, ImageSetup
from tasks.stages.image.smoke_test import smoke_test
from tasks.stages.image.state import update_report


def selected(setup: ImageSetup) -> str | None:
    """The one platform this run builds (FORKFLOW_IMAGE_PLATFORM), checked against [images] platforms; None
    when every platform is built in this run."""
    chosen = os.environ.get(PLATFORM_ENV, "").strip()
    if not chosen:
        return None
    listed = setup.images.platforms
    if chosen not in listed or len(listed) < 2:
        raise ConfigError(f"{PLATFORM_ENV}={chosen}: a split build builds one of several [images] platforms "
                          f"(configured: {', '.join(listed)})", where=f"environment variable {PLATFORM_ENV}",
                          fix=f"choose one of {', '.join(listed)} with two or more configured, or unset {PLATFORM_ENV}")
    return chosen


def build_one(setup: ImageSetup, plan: inputs.Plan, planned: inputs.Planned, client: Any, record: dict[str, Any],
              platform: str) -> dict[str, Any]:
    """Find or build this platform's image of the cell (its input hash is the whole cell's), smoke-test it and
    push it under `<first tag>-<arch>` with its SBOM."""
    from tasks.stages.image.build import build, refuse_unshippable
    from tasks.stages.image.cell import CellPlan, current_inputs

    spec, images = planned.spec, setup.images
    wanted = platforms.targets(client, images.platforms)
    found = current_inputs(setup, client, planned, wanted)
    digest = found[1]
    auth = registry_auth_or_none(setup)
    if auth is not None:
        refuse_unshippable(setup, spec)
    tag = image_tags.platform_tag(spec.tags[0], platform)
    record.update(input_hash=digest, split=platform, platform_tag=tag)
    if auth is not None:
        tags.in_registry(setup, spec, digest, auth, wanted, record)  # refuses a release tag on other content
        there = platform_image(spec, tag, auth)
        if there is not None and there[1] == digest and not is_forgotten(f"image:{spec.key}"):
            record.update(status="up-to-date", platforms={platform: there[0]},
                          reason=f"the registry has {tag} with these inputs (input hash {digest[:12]}): nothing built "
                                 "or pushed")
            return done(setup, plan, spec, record, auth)
    image = platforms.existing(client, digest, (platform,)).get(platform)
    reason = f"an image with these inputs is already built (input hash {digest[:12]})"
    if not image:
        steps = core.CellSteps("split build", True, (), bool(auth), ())
        cell = CellPlan(found[0], digest, core.push_target(spec, images.push), "", steps, {})
        image = build(setup, plan, planned, client, cell, record, platform)
        reason = f"built {platform} alone ({PLATFORM_ENV})"
    answer, installed = smoke_test(setup, client, planned, image, platform)
    dashboard.keep(record, platform, answer)
    record.update(image_id=image, smoke="passed",
                  sbom=evidence.write_sbom(setup, spec, digest, {platform: installed})["platforms"][platform])
    if auth is None:
        record.update(status="built", platforms={}, reason=reason + "; not pushed")
        return done(setup, plan, spec, record, None)
    docker_adapter.tag_image(client, image, spec.repository, tag)
    pushed = docker_adapter.push(client, spec.repository, tag, auth)
    record["digest"] = pushed
    evidence.attach_sbom(spec, record, auth)
    record["digest"] = None  # the cell's digest is its index's, which `doit image-join` puts
    record.update(status="built", platforms={platform: pushed}, reason=reason + f"; pushed {tag}")
    return done(setup, plan, spec, record, auth)


def done(setup: ImageSetup, plan: inputs.Plan, spec: core.ImageSpec, record: dict[str, Any],
         auth: dict[str, str] | None) -> dict[str, Any]:
    """Record this platform's outcome (`status`, `platforms`, `reason` set) in image.json."""
    pushed = list(record["platforms"].values())
    record["pushed"] = {record["platform_tag"]: pushed[0]} if pushed else {}
    if record["status"] == "up-to-date" and pushed:
        record["digest"] = pushed[0]
        evidence.sbom_in_registry(spec, record, auth)
        record["digest"] = None
    update_report(setup, plan.keys, images=[record])
    say(f"image:{spec.key}: {record['split']}: {record['status']} ({record['reason']}); `doit image-join` puts the index")
    return {"made": f"{record['status']} {record['platform_tag']}", "input_hash": record["input_hash"], "image_id": "",
            "target": ""}


def platform_image(spec: core.ImageSpec, tag: str, auth: dict[str, str]) -> tuple[str, str | None] | None:
    """(digest, input hash label) of the image under `tag` in the registry; None when there is none."""
    host, path = spec.repository.split("/", 1)
    found = registry.tagged(host, path, [tag], auth)[tag]
    return None if found is None else (found.digest, found.labels.get(core.INPUT_HASH_LABEL))


def registry_auth_or_none(setup: ImageSetup) -> dict[str, str] | None:
    from tasks.pipeline.credentials import registry_auth

    return registry_auth(setup.settings) if setup.images.push and not setup.plan_only else None
