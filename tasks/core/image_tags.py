"""Image tags from versions: the tag scheme's fields and rules, as data."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

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
