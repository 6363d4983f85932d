"""An image's SBOM (tasks.core.sbom): written next to the cell's state, attached in the registry to the digest
the cell pushed (an OCI artifact whose `subject` is the image, under the tag `sha256-<hex>.sbom`), and
listed in image.json under `sbom`; and the provenance attestation its build asks for (tasks.core.provenance),
listed under `provenance`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasks.adapters import buildkit, registry_artifacts
from tasks.adapters.console import say
from tasks.adapters.registry import RegistryUnreachable
from tasks.core import images as core
from tasks.core import sbom
from tasks.core.errors import ForkflowError
from tasks.core.provenance import BuilderFacts, decide
from tasks.stages.image.setup import ImageSetup


def write_sbom(setup: ImageSetup, spec: core.ImageSpec, input_hash: str,
               installed: Mapping[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """The SBOM of the image just smoke-tested (platform -> what its package check found installed; "" for a
    plain build), written to `<state>/images/<key>/sbom.cdx.json`; with platforms, one per platform's image
    (`sbom-<arch>.cdx.json`) and the index's, merged from them. Returns image.json's `sbom` entry."""
    if not all(installed.values()):
        raise ForkflowError(f"image:{spec.key}: the smoke test listed no installed distributions, so there is no "
                            "SBOM to make", fix="run `doit image` again; a custom base without importlib.metadata "
                                                "cannot be described")
    project = [(w.name, w.version, w.file, w.sha256) for w in spec.wheels]
    each = {platform: sbom.image_components({platform: pairs}, project, spec.wheelhouse)
            for platform, pairs in installed.items()}
    entry: dict[str, Any] = {}
    if "" not in each:
        entry["platforms"] = {platform: save(setup, spec, input_hash, items, platform) for platform, items in each.items()}
    components = each[""] if "" in each else sbom.merge_components(each)
    return {**save(setup, spec, input_hash, components, ""), **entry}


def merged_sbom(setup: ImageSetup, spec: core.ImageSpec, input_hash: str,
                documents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The index's SBOM from each platform's (as the registry serves them); image.json's `sbom` entry."""
    each = {platform: list(document.get("components") or []) for platform, document in documents.items()}
    return save(setup, spec, input_hash, sbom.merge_components(each), "")


def save(setup: ImageSetup, spec: core.ImageSpec, input_hash: str, components: list[dict[str, Any]],
         platform: str) -> dict[str, Any]:
    document = sbom.image_document(spec.repository, spec.version, spec.python, spec.flavor, spec.base_image,
                                   components, input_hash)
    arch = f"-{platform.rsplit('/', 1)[-1]}" if platform else ""
    file = setup.state_folder / spec.key / f"sbom{arch}.cdx.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(sbom.dumps(document))
    return {"format": sbom.FORMAT, "media_type": sbom.MEDIA_TYPE, "file": str(file), "components": len(components),
            "serial": document["serialNumber"]}


def attach_sbom(spec: core.ImageSpec, record: dict[str, Any], auth: Mapping[str, str]) -> None:
    """The SBOM files attached to the digests just pushed: each platform's image's, then the index's (or the
    one image's)."""
    entry = record.get("sbom") or {}
    for platform, each in (entry.get("platforms") or {}).items():
        attach_one(spec, each, (record.get("platforms") or {}).get(platform), auth)
    attach_one(spec, entry, record.get("digest"), auth)


def attach_one(spec: core.ImageSpec, entry: dict[str, Any], subject: str | None, auth: Mapping[str, str]) -> None:
    if not entry or not subject:
        return
    host, path = spec.repository.split("/", 1)
    artifact = registry_artifacts.Artifact(sbom.MEDIA_TYPE, Path(entry["file"]).read_bytes(), sbom.SUFFIX,
                                           {"org.opencontainers.image.title": "sbom.cdx.json"})
    attached = registry_artifacts.attach(host, path, subject, artifact, auth)
    entry.update(subject=subject, digest=attached.digest, reference=f"{spec.repository}:{attached.tag}",
                 referrer=attached.referrer)
    how = "as a referrer and " if attached.referrer else ""
    say(f"image:{spec.key}: SBOM ({entry['components']} distributions) attached {how}under {attached.tag}")


def sbom_in_registry(spec: core.ImageSpec, record: dict[str, Any], auth: Mapping[str, str] | None) -> None:
    """For a cell the registry already has: the SBOM attached to its digest, when there is one."""
    subject = record.get("digest")
    if not subject or auth is None:
        return
    host, path = spec.repository.split("/", 1)
    try:
        found = registry_artifacts.read_attached(host, path, subject, sbom.SUFFIX, auth)
    except (RegistryUnreachable, ForkflowError):
        return
    if found is None:
        record["sbom"] = {"missing": f"no SBOM is attached to {subject} (pushed before SBOMs were made?); "
                                     f"`doit forget image:{spec.key}` and `doit image` push it again with one"}
        return
    tag = registry_artifacts.artifact_tag(subject, sbom.SUFFIX)
    components = len(json.loads(found[1] or b"{}").get("components") or [])
    record["sbom"] = {"format": sbom.FORMAT, "media_type": sbom.MEDIA_TYPE, "subject": subject, "digest": found[0],
                      "reference": f"{spec.repository}:{tag}", "components": components}


ANNOUNCED: set[str] = set()  # reasons already said in this process: said once, not once per cell


def provenance(setup: ImageSetup, platform: str | None, record: dict[str, Any]) -> str:
    """The provenance mode this build asks for ([images] provenance, `auto` resolved for this builder and
    engine), recorded in image.json under `provenance`; a refused min/max stops here, before building."""
    found = buildkit.builder()
    setting = setup.images.provenance
    chosen = decide(setting, BuilderFacts(found.buildx, found.containerd_store, joined=platform is not None))
    if chosen.refused:
        raise ForkflowError(f"cannot make a {setting} provenance attestation with {found.name}: {chosen.reason}",
                            where="[images] provenance", fix=buildkit.PROVENANCE_FIX)
    record["provenance"] = {"setting": setting, "mode": chosen.mode, **({"reason": chosen.reason} if chosen.reason else {})}
    if chosen.reason and chosen.reason not in ANNOUNCED:
        ANNOUNCED.add(chosen.reason)
        say(f"image: no provenance attestation ([images] provenance = {setting}): {chosen.reason}")
    return chosen.mode
