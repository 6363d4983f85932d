"""Version rules: which tag gives a package its version, and the next version from commits.

Core versions come from tags like `1.2.3` (pattern `[versions] core_tag`),
package versions from tags like `prefect-aws-0.7.11` (`package_tag`). A tag
is clean when its version has no pre-release or dev part (`1.2.3`), unless
`allow_prerelease` is set. Next versions follow conventional commits through
python-semantic-release's parser: breaking -> major, feat -> minor,
fix/perf -> patch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

VERSION_RE = r"(?P<version>\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?)"


@dataclass(frozen=True)
class TagVersion:
    tag: str
    version: Version


def tag_pattern(kind: str, name: str, core_tag: str, package_tag: str) -> tuple[str, str]:
    """(tag pattern, name in it) for a package: core and client share the core's tags, others have their own."""
    if kind in ("core", "client"):
        return core_tag, ""
    return package_tag, name


def tag_for(pattern: str, name: str, version: str) -> str:
    """The tag of one version: `{name}-{version}` -> `prefect-aws-0.7.11`."""
    return pattern.replace("{name}", name).replace("{version}", version)


def tag_regex(pattern: str, name: str = "") -> re.Pattern[str]:
    """`{name}-{version}` -> a regex matching exactly such tags, capturing the version."""
    literal = re.escape(pattern.replace("{name}", name)).replace(re.escape("{version}"), VERSION_RE)
    return re.compile(f"^{literal}$")


def versions_from_tags(tags: Iterable[str], pattern: str, name: str = "") -> list[TagVersion]:
    regex = tag_regex(pattern, name)
    found = []
    for tag in tags:
        match = regex.match(tag)
        if not match:
            continue
        try:
            found.append(TagVersion(tag, Version(match.group("version"))))
        except InvalidVersion:
            continue
    return found


def is_clean(version: Version) -> bool:
    return not (version.is_prerelease or version.is_devrelease or version.is_postrelease or version.local)


def newest_tag(tags: Iterable[str], pattern: str, name: str = "", allow_prerelease: bool = False) -> TagVersion | None:
    """The newest matching tag; pre-release and dev tags only when allowed."""
    candidates = [
        found for found in versions_from_tags(tags, pattern, name)
        if allow_prerelease or is_clean(found.version)
    ]
    return max(candidates, key=lambda found: found.version, default=None)


BUMPS = {0: "none", 2: "patch", 3: "minor", 4: "major"}


def bump_of(message: str) -> str:
    """'major', 'minor', 'patch' or 'none' for one commit message (conventional commits)."""
    from semantic_release.commit_parser import ConventionalCommitParser

    parsed = ConventionalCommitParser().parse_message(message)
    if parsed is None:
        return "none"
    return BUMPS.get(int(parsed.bump), "none")


def strongest_bump(messages: Iterable[str]) -> str:
    order = ["none", "patch", "minor", "major"]
    return max((bump_of(message) for message in messages), key=order.index, default="none")


def next_version(current: str, bump: str) -> str:
    """Apply a bump to a release version; 0.x versions bump major changes as minor."""
    version = Version(current)
    major, minor, patch = (list(version.release) + [0, 0, 0])[:3]
    if bump == "major" and major == 0:
        bump = "minor"
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return str(version)


def pretend_version_variable(dist_name: str) -> str:
    """setuptools_scm's per-package override variable name."""
    return "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_" + re.sub(r"[^A-Za-z0-9]+", "_", dist_name).upper()


FORK_MARKER = re.compile(r"^[a-z][a-z0-9]*\.\d+(\.g[0-9a-f]{7,40})?$")


@dataclass(frozen=True)
class Change:
    """The newest commit since a base (a tag) that touched a package, and its distance from the base."""

    commit: str
    distance: int


def fork_version(base: str, label: str, change: Change | None) -> str:
    """The version of a build `change.distance` commits after its tag: `3.8.3` -> `3.8.3+acme.72.gdd51d1d`.

    PEP 440 local versions sort above their public version (the fork's build wins over upstream's 3.8.3 on
    any index) and still satisfy `==3.8.3` and `>=3.8`; the distance orders builds of one history, the
    commit names the content. No change since the tag: the tag's clean version.
    """
    if change is None:
        return base
    return f"{base}+{label}.{change.distance}.g{change.commit[:7]}"


def newest(changes: Iterable[Change | None]) -> Change | None:
    """The change furthest from the base (the newest, in one history); None when there is none."""
    found = [change for change in changes if change is not None]
    return max(found, key=lambda change: (change.distance, change.commit), default=None)


def label_of(project: str) -> str:
    """A project name as a local-version label: lowercase letters and digits (`acme-data` -> `acmedata`)."""
    label = re.sub(r"[^a-z0-9]", "", project.lower())
    return label if label[:1].isalpha() else f"fork{label}"


def is_fork_marker(local: str | None) -> bool:
    """True for a local version part like `acme.72.gdd51d1d` or `acme.12` (a fork's build), not
    `12.gabc1234` (an unlabelled distance build)."""
    return bool(local and FORK_MARKER.match(local))


def with_static_version(text: str, version: str) -> str:
    """A pyproject.toml's text with its `[project] version` set to `version`; nothing else changes."""
    lines = text.splitlines(keepends=True)
    table = ""
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.split("#", 1)[0].strip()
        elif table == "[project]" and re.match(r"version\s*=", stripped):
            lines[number] = re.sub(r"=\s*([\"']).*?\1", f'= "{version}"', line, count=1)
            return "".join(lines)
    raise ValueError("no `version = ...` line in its [project] table")


UNSHIPPABLE_FIX = ("fetch the version tags and full history: `git fetch --tags --unshallow origin` (in CI: "
                   "actions/checkout with `fetch-depth: 0`), or run `doit sync`, which pushes upstream's tags to origin")


def unshippable(packages: Iterable[Mapping[str, Any]]) -> list[str]:
    """`name version: why` for each package whose version cannot be trusted to name its content: taken from
    the fallback (no tag was found) or worked out in a shallow clone (tags and distances cut off)."""
    found = []
    for package in packages:
        if package.get("shallow"):
            found.append(f"{package['name']} {package['version']}: versioned in a shallow clone")
        elif package.get("version_source") == "fallback":
            found.append(f"{package['name']} {package['version']}: no version tag found (the fallback version)")
    return found
