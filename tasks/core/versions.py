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
from collections.abc import Iterable
from dataclasses import dataclass

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


FORK_MARKER = re.compile(r"^[a-z][a-z0-9]*\.\d+$")


def with_fork_label(version: str, label: str | None, commits_since: int) -> str:
    """`3.8.3` -> `3.8.3+acme.12` when the fork marks its versions; unchanged otherwise."""
    return f"{version}+{label}.{commits_since}" if label else version


def is_fork_marker(local: str | None) -> bool:
    """True for a local version part like `acme.12` (a fork's marker), not `12.gabc1234` (a distance build)."""
    return bool(local and FORK_MARKER.match(local))
