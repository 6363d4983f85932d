"""`doit image-join`: the index of each cell's per-platform images, put under the cell's tags.

After the platforms of a cell were built apart (FORKFLOW_IMAGE_PLATFORM, tasks.stages.image.split), each in
its own state folder or on its own runner, the registry holds one image per platform under
`<first tag>-<arch>`. The join reads them there (nothing is built, so it needs only wheel.json for the tags),
checks they carry one input hash, applies the tag rules of a normal push (a release tag on other content
refuses; a floating tag stays on a newer version) and puts the index, in the configured platform order, so
the same images give the same index digest as a one-run build. The index's SBOM is merged from the
platforms' SBOMs in the registry.
"""

from __future__ import annotations

import json
from typing import Any

from tasks.adapters import registry, registry_artifacts
from tasks.adapters.console import say
from tasks.core import image_tags, sbom
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import is_dry_run
from tasks.pipeline.credentials import registry_auth
from tasks.stages.image import evidence, inputs, tags
from tasks.stages.image.setup import PLATFORM_ENV, ImageSetup, image_setup
from tasks.stages.image.state import revision, update_report


def join_action(run_id: str, dry_run: bool = False) -> dict[str, str]:
    setup = image_setup(dry_run)
    wanted = setup.images.platforms
    if len(wanted) < 2:
        raise ForkflowError(f"image-join: [images] platforms lists {', '.join(wanted)}: there is nothing to join",
                            where="[images] platforms", fix="join only a config with two or more platforms")
    plan = inputs.load_plan(setup, revision(setup))
    auth = registry_auth(setup.settings)
    if is_dry_run(dry_run):
        return {"made": "dry run: " + "; ".join(describe_join(planned.spec, wanted, auth) for planned in plan.images)}
    made = [join_cell(setup, plan, planned.spec, auth, run_id) for planned in plan.images]
    return {"made": "; ".join(made)}


def join_cell(setup: ImageSetup, plan: inputs.Plan, spec: core.ImageSpec, auth: dict[str, str], run_id: str) -> str:
    wanted = setup.images.platforms
    digests, input_hash = platform_images(spec, wanted, auth)
    record: dict[str, Any] = {"name": spec.key, "python": spec.python, "flavor": spec.flavor, "version": spec.version,
                              "tags": list(spec.tags), "references": spec.references(), "repository": spec.repository,
                              "input_hash": input_hash, "platforms": digests, "base_image": spec.base_image,
                              "packages": [{"name": w.name, "version": w.version, "file": w.file, "sha256": w.sha256}
                                           for w in spec.wheels], "run": run_id, "smoke": "passed"}
    there = tags.checked(spec, input_hash, auth, wanted, record)
    host, path = spec.repository.split("/", 1)
    if there.up_to_date:
        record.update(status="up-to-date", pushed=dict(there.current),
                      reason="the registry has every tag on the index of these platform images")
    else:
        index = registry.put_index(host, path, list(there.push), digests, auth)
        record.update(status="built", pushed=dict.fromkeys(there.push, index),
                      reason=f"index of {', '.join(wanted)} joined from the per-platform images in the registry")
    record["digest"] = next(iter(record["pushed"].values()), None)
    documents = platform_sboms(spec, digests, auth)
    if documents and record["digest"]:
        record["sbom"] = evidence.merged_sbom(setup, spec, input_hash, documents)
        evidence.attach_sbom(spec, record, auth)
    update_report(setup, plan.keys, images=[record])
    say(f"image-join:{spec.key}: {record['status']}: {record['reason']} ({core.short(record['digest'])})")
    return f"{spec.key} {record['status']} {core.short(record['digest'])}"


def describe_join(spec: core.ImageSpec, wanted: tuple[str, ...], auth: dict[str, str]) -> str:
    """The dry run of one cell's join: what it would put under which tags; nothing is written."""
    digests, input_hash = platform_images(spec, wanted, auth)
    there = tags.look(spec, input_hash, auth, wanted)
    if there.refused:
        line = f"image-join:{spec.key}: would refuse: {', '.join(there.refused)} in the registry on other content"
    elif there.up_to_date:
        line = f"image-join:{spec.key}: would put nothing: every tag is on the index of these platform images"
    else:
        shown = ", ".join(f"{p} {core.short(d)}" for p, d in digests.items())
        line = f"image-join:{spec.key}: would put the index of {shown} under {', '.join(there.push)}"
    say(line)
    return line.split(": ", 1)[1]


def platform_images(spec: core.ImageSpec, wanted: tuple[str, ...], auth: dict[str, str]) -> tuple[dict[str, str], str]:
    """platform -> digest of its image under `<first tag>-<arch>` (in the configured order), and the one input
    hash they all carry; a clear error when one is missing or they were built from different inputs."""
    host, path = spec.repository.split("/", 1)
    names = {platform: image_tags.platform_tag(spec.tags[0], platform) for platform in wanted}
    found = registry.tagged(host, path, list(names.values()), auth)
    missing = [platform for platform, tag in names.items() if found[tag] is None]
    if missing:
        raise ForkflowError(f"image-join:{spec.key}: no {', '.join(missing)} image in the registry under "
                            f"{', '.join(f'{spec.repository}:{names[p]}' for p in missing)}",
                            where=f"[images] registry = {spec.repository.split('/', 1)[0]!r}",
                            fix=f"build it first: `{PLATFORM_ENV}={missing[0]} doit image:{spec.key}` (or `doit "
                                f"image:{spec.key}` for every platform in one run)")
    there = {platform: item for platform, tag in names.items() if (item := found[tag]) is not None}
    hashes = {platform: item.labels.get(core.INPUT_HASH_LABEL) for platform, item in there.items()}
    if len(set(hashes.values())) != 1 or None in hashes.values():
        shown = ", ".join(f"{p}: {core.short(h)}" for p, h in hashes.items())
        raise ForkflowError(f"image-join:{spec.key}: the platform images were built from different inputs ({shown}); "
                            "an index must join one build", where=spec.repository,
                            fix=f"build every platform from the same wheels and config (`{PLATFORM_ENV}=<platform> doit "
                                f"image:{spec.key}` on each), then join again")
    digests = {platform: item.digest for platform, item in there.items()}
    return digests, str(next(iter(hashes.values())))


def platform_sboms(spec: core.ImageSpec, digests: dict[str, str], auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """platform -> the SBOM the registry holds for its image; {} when one of them has none."""
    host, path = spec.repository.split("/", 1)
    found = {}
    for platform, digest in digests.items():
        attached = registry_artifacts.read_attached(host, path, digest, sbom.SUFFIX, auth)
        if attached is None:
            say(f"image-join:{spec.key}: the {platform} image has no SBOM in the registry, so the index gets none")
            return {}
        found[platform] = json.loads(attached[1])
    return found
