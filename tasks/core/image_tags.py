"""Image tags from versions: the tag scheme's fields and rules, as data."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from tasks.core.images import MACHINES

TAG_FIELDS = ("version", "major", "minor", "python", "flavor", "flavor_name", "sha", "sha7")


TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TagRules:
    """Tag templates by kind of build; see `tags_for`."""

    always: tuple[str, ...]
    release: tuple[str, ...]
    release_default_python: tuple[str, ...]
    dev: tuple[str, ...]


def version_kind(version: str) -> str:
    """'release' (X.Y.Z, or X.Y.Z+<fork>.<n> from a fork marker), 'prerelease' (a, b, rc) or 'dev'
    (.devN, or a local part like +12.gabc1234)."""
    from tasks.core.versions import is_fork_marker

    try:
        parsed = Version(version)
    except InvalidVersion:
        return "dev"
    if parsed.is_devrelease or (parsed.local and not is_fork_marker(parsed.local)):
        return "dev"
    if parsed.is_prerelease:
        return "prerelease"
    return "release"


def tag_fields(version: str, python: str, flavor: str, revision: str) -> dict[str, str]:
    try:
        release = Version(version).release
    except InvalidVersion:
        release = (0,)
    parts = list(release) + [0] * (2 - len(release))
    return {
        "version": version.replace("+", "-"),  # image tags cannot hold '+'
        "major": str(parts[0]),
        "minor": f"{parts[0]}.{parts[1]}",
        "python": python,
        "flavor": "" if flavor == "base" else f"-{flavor}",
        "flavor_name": flavor,
        "sha": revision,
        "sha7": revision[:7],
    }


def tags_for(rules: TagRules, version: str, python: str, flavor: str, default_python: str | None, revision: str) -> tuple[str, ...]:
    """Prefect's scheme by default: `{version}-python{py}[-flavor]` always; `{major.minor}-` and
    `{major}-python{py}[-flavor]` and, from the default Python, `{major}-latest[-flavor]` for
    releases; `sha-<7>-python{py}[-flavor]` for dev builds (when the revision is known)."""
    kind = version_kind(version)
    templates = list(rules.always)
    if kind == "release":
        templates += rules.release
        if python == default_python:
            templates += rules.release_default_python
    if kind == "dev" and revision:
        templates += rules.dev
    values = tag_fields(version, python, flavor, revision)
    tags: list[str] = []
    for template in templates:
        tag = sanitize_tag(template.format(**values))
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def sanitize_tag(tag: str) -> str:
    """Docker tags allow [A-Za-z0-9_.-]: `1.0.1+3.gabc` becomes `1.0.1-3.gabc`."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", tag)
    return cleaned[:128]


def unknown_tag_fields(template: str) -> list[str]:
    """Placeholders in a tag template that `tags_for` does not fill."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        return [template]
    return [name for name in names if name not in TAG_FIELDS]


DOCKER_HUB = "registry-1.docker.io"


def split_reference(ref: str) -> tuple[str, str, str]:
    """(registry host, repository, tag or digest) of an image reference, as docker reads it:
    `python:3.11-slim` is Docker Hub's `library/python`, `127.0.0.1:5000/base/python:3.11` a local registry's."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if first in ("docker.io", "index.docker.io", DOCKER_HUB):
        host, repository = DOCKER_HUB, rest if "/" in rest else f"library/{rest}"
    elif rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = DOCKER_HUB, name if "/" in name else f"library/{name}"
    return host, repository, digest or tag or "latest"


def pinned(ref: str, digest: str) -> str:
    """`<name>@<digest>`: the same image as `ref` (`name:tag`) pointed at when `digest` was read."""
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{name}@{digest}"


def arch_suffix(platform: str | None) -> str:
    """`-arm64` for `linux/arm64` (`-arm64v8` with its variant), for tags and file names; "" for a plain build."""
    return "-" + platform.split("/", 1)[1].replace("/", "") if platform else ""


def platform_tag(tag: str, platform: str) -> str:
    """The tag one platform's image of a multi-platform image is pushed under: `1.0-python3.11-arm64`."""
    return sanitize_tag(tag + arch_suffix(platform))


def same_platform(one: str, other: str) -> bool:
    """`linux/arm64` and `linux/arm64/v8` are the same CPU (so is an engine's `linux/aarch64`)."""
    return cpu(one) == cpu(other)


def cpu(platform: str) -> tuple[str, str]:
    """(os, machine): `linux/arm64/v8` -> (`linux`, `aarch64`); a platform forkflow does not build keeps its name."""
    os_name, _, rest = platform.partition("/")
    architecture = rest.split("/", 1)[0]
    return os_name, MACHINES.get(f"{os_name}/{architecture}", architecture)


def lists_all(found: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return all(any(same_platform(name, platform) for name in found) for platform in wanted)


def base_content(digests: Mapping[str, str]) -> str:
    """The base's identity in the input hash: its image per platform, by registry digest."""
    return json.dumps(dict(sorted(digests.items())), sort_keys=True)
