"""Software bills of materials (CycloneDX 1.5 JSON) from what forkflow itself put into an artefact.

An image's SBOM lists every Python distribution installed in it, each with its version: the package check
of the smoke test reads them in the image (`importlib.metadata`, the list pip keeps), and each is matched
to the wheel forkflow installed it from (a project wheel, or a wheel of the dependency wheelhouse), whose
file name and sha256 it carries; a distribution no forkflow wheel gave came with the base image and says
so. A wheel's SBOM is read from the wheel's own metadata: the distribution, its file's sha256, and the
requirements it declares. No scanner runs. Nothing here touches files, Docker or doit.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name

SPEC_VERSION = "1.5"
FORMAT = f"CycloneDX {SPEC_VERSION}"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
SUFFIX = "sbom"  # the registry tag of an image's SBOM: sha256-<hex of the image's digest>.sbom
INSTALLED_PREFIX = "installed "  # the smoke test's line listing the distributions in the image
SOURCE = "org.forkflow:source"
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def same_version(version: str) -> str:
    """A version as pip writes it in METADATA (PEP 440's normal form), so a wheel and what it installed match."""
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{version}"


def installed_from_output(output: str) -> list[tuple[str, str]]:
    """The (name, version) pairs of the smoke test's `installed [...]` line; [] when it has none."""
    for line in output.splitlines():
        if line.startswith(INSTALLED_PREFIX):
            return [(str(name), str(version)) for name, version in json.loads(line[len(INSTALLED_PREFIX):])]
    return []


def wheel_files(files: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(canonical name, version) -> [(wheel file, sha256)] for the wheels in a wheelhouse."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for file, sha256 in files:
        match = WHEEL_NAME.match(file)
        if match:
            key = (canonicalize_name(match["name"]), same_version(match["version"]))
            found.setdefault(key, []).append((file, sha256))
    return found


def component(name: str, version: str, source: str, wheels: Sequence[tuple[str, str]] = (),
              platforms: Sequence[str] = ()) -> dict[str, Any]:
    """One distribution: a CycloneDX library with its purl, where it came from and the wheel(s) it was
    installed from (one file: its sha256 as the component's hash; several, one per platform: each named)."""
    item: dict[str, Any] = {"type": "library", "bom-ref": purl(name, version), "name": name, "version": version,
                            "purl": purl(name, version)}
    if len(wheels) == 1:
        item["hashes"] = [{"alg": "SHA-256", "content": wheels[0][1]}]
    properties = [{"name": SOURCE, "value": source}]
    properties += [{"name": "org.forkflow:wheel", "value": f"{file} sha256:{sha256}"} for file, sha256 in wheels]
    properties += [{"name": "org.forkflow:platform", "value": platform} for platform in platforms]
    item["properties"] = properties
    return item


def image_components(installed: Mapping[str, Sequence[tuple[str, str]]], project: Iterable[tuple[str, str, str, str]],
                     wheelhouse: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The components of an image: every distribution any platform's image has (platform -> its
    (name, version) list; "" for a plain build), with the wheels forkflow installed it from.
    `project`: (name, version, file, sha256) of the project wheels; `wheelhouse`: (file, sha256)."""
    ours = {(canonicalize_name(name), same_version(version)): [(file, sha256)] for name, version, file, sha256 in project}
    third = wheel_files(wheelhouse)
    on: dict[tuple[str, str], list[str]] = {}
    names: dict[tuple[str, str], str] = {}
    for platform, pairs in installed.items():
        for name, version in pairs:
            key = (str(canonicalize_name(name)), same_version(version))
            names.setdefault(key, name)
            on.setdefault(key, []).append(platform)
    every = [p for p in installed if p]
    items = []
    for key in sorted(on):
        platforms = [p for p in on[key] if p] if set(on[key]) != set(installed) else []
        if key in ours:
            items.append(component(names[key], key[1], "project wheel", ours[key], platforms))
        elif key in third:
            picked = third[key] if len(every) != 1 else [w for w in third[key] if fits(w[0], every[0])] or third[key]
            items.append(component(names[key], key[1], "dependency wheelhouse", picked, platforms))
        else:
            items.append(component(names[key], key[1], "base image", (), platforms))
    return items


def merge_components(per_platform: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The components of an index from those of each platform's image: one per distribution and version,
    with every platform's wheel named (its hash kept only when every platform installed the same file) and
    `org.forkflow:platform` properties when only some platforms have it."""
    found: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for platform, items in per_platform.items():
        for item in items:
            found.setdefault(str(item["bom-ref"]), []).append((platform, item))
    merged = []
    for ref in sorted(found):
        seen = found[ref]
        first = dict(seen[0][1])
        properties = [p for p in first["properties"] if p["name"] == SOURCE]
        wheels = dict.fromkeys(p["value"] for _, item in seen for p in item["properties"] if p["name"] == "org.forkflow:wheel")
        properties += [{"name": "org.forkflow:wheel", "value": value} for value in wheels]
        if len(seen) != len(per_platform):
            properties += [{"name": "org.forkflow:platform", "value": platform} for platform, _ in seen]
        hashes = {json.dumps(item.get("hashes"), sort_keys=True) for _, item in seen}
        first.pop("hashes", None)
        if len(hashes) == 1 and seen[0][1].get("hashes"):
            first["hashes"] = seen[0][1]["hashes"]
        first["properties"] = properties
        merged.append(first)
    return merged


def fits(file: str, platform: str) -> bool:
    """Whether a wheel file can be the one installed on `platform` (`linux/arm64`): a pure wheel, or one
    built for that CPU."""
    cpu = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}.get(platform, platform.rsplit("/", 1)[-1])
    return file.endswith("-any.whl") or cpu in file


def document(subject: dict[str, Any], components: list[dict[str, Any]],
             properties: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A CycloneDX 1.5 document about `subject` (its metadata component) listing `components`; its serial
    number is derived from its content, so the same inputs give the same document."""
    body: dict[str, Any] = {
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION, "version": 1,
        "metadata": {"tools": {"components": [{"type": "application", "name": "forkflow"}]},
                     "component": subject,
                     "properties": [{"name": k, "value": v} for k, v in sorted((properties or {}).items())]},
        "components": components,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "serialNumber": f"urn:uuid:{uuid.UUID(digest[:32])}"}


def image_document(repository: str, version: str, python: str, flavor: str, base_image: str,
                   components: list[dict[str, Any]], input_hash: str) -> dict[str, Any]:
    subject = {"type": "container", "bom-ref": f"{repository}:{version}", "name": repository, "version": version}
    return document(subject, components, {"org.forkflow:python": python, "org.forkflow:flavor": flavor,
                                          "org.forkflow:base-image": base_image,
                                          "org.forkflow:input-hash": input_hash})


def wheel_document(metadata: Mapping[str, Any], file: str, sha256: str) -> dict[str, Any]:
    """A wheel's SBOM from its METADATA (`name`, `version`, `requires_dist`, `license_expression`, `license`,
    `summary`): the wheel
    itself, with the requirements it declares as its dependencies (ranges, not pins: a wheel pins nothing)."""
    name, version = str(metadata["name"]), str(metadata["version"])
    subject = component(name, version, "built by forkflow", [(file, sha256)])
    if metadata.get("summary"):
        subject["description"] = str(metadata["summary"])
    license_text = str(metadata.get("license") or "").strip()
    if metadata.get("license_expression"):
        subject["licenses"] = [{"expression": str(metadata["license_expression"])}]
    elif license_text and "\n" not in license_text and len(license_text) <= 100:  # a name, not a license's text
        subject["licenses"] = [{"license": {"name": license_text}}]
    requirements = [str(r) for r in metadata.get("requires_dist") or ()]
    subject["properties"] += [{"name": "org.forkflow:requires-dist", "value": r} for r in requirements]
    return document(subject, [])


def dumps(bom: Mapping[str, Any]) -> bytes:
    return (json.dumps(bom, indent=2, sort_keys=True) + "\n").encode()
