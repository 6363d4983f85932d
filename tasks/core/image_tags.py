"""Image tags from versions: the tag scheme's fields and rules, as data."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from tasks.core.errors import ForkflowError
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
    return tuple(tag_scheme(rules, version, python, flavor, default_python, revision))


def tag_scheme(rules: TagRules, version: str, python: str, flavor: str, default_python: str | None,
               revision: str) -> dict[str, bool]:
    """tag -> whether it floats, in `tags_for`'s order. A tag floats unless an `always` or `dev` template that
    names the build (`{version}`, `{sha}` or `{sha7}`) makes it: such a tag is one build's, immutable."""
    kind = version_kind(version)
    templates = [(template, not names_the_build(template)) for template in rules.always]
    if kind == "release":
        templates += [(template, True) for template in rules.release]
        if python == default_python:
            templates += [(template, True) for template in rules.release_default_python]
    if kind == "dev" and revision:
        templates += [(template, not names_the_build(template)) for template in rules.dev]
    values = tag_fields(version, python, flavor, revision)
    tags: dict[str, bool] = {}
    for template, floating in templates:
        tag = sanitize_tag(template.format(**values))
        tags[tag] = tags.get(tag, True) and floating  # made immutable once, immutable
    return tags


def names_the_build(template: str) -> bool:
    """A template with the full version or the revision in it makes a tag no other build may take."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return bool(fields & {"version", "sha", "sha7"})


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


# ---- what a push may do to the tags already in the registry ---------------------------------------


@dataclass(frozen=True)
class Pointed:
    """What a tag points at in the registry: the manifest's digest and what its image's labels say."""

    digest: str
    input_hash: str | None
    version: str | None
    platforms: tuple[str, ...] = ()  # an index's platforms; () for a single image


@dataclass(frozen=True)
class TagPlan:
    """What a push of one cell does to each of its tags, given what the registry holds."""

    push: tuple[str, ...]  # tags put on this build (new ones, floating ones moving forward, ours again)
    current: Mapping[str, str]  # tag -> digest: already on an image of these inputs (every wanted platform)
    kept: Mapping[str, str]  # floating tag -> the newer version it stays on
    refused: Mapping[str, Pointed]  # immutable tag -> the other content it already names

    @property
    def up_to_date(self) -> bool:
        """Every tag is on an image of these inputs, or is a floating tag kept on a newer version."""
        return not self.refused and all(tag in self.current for tag in self.push)


def is_newer(theirs: str | None, ours: str) -> bool:
    """True when the version `theirs` (an image's version label) is a newer PEP 440 version than `ours`;
    a missing or unreadable one is not newer."""
    try:
        return theirs is not None and Version(theirs) > Version(ours)
    except InvalidVersion:
        return False


def tag_decision(floating: bool, there: Pointed | None, input_hash: str, version: str) -> str:
    """`push`, `refuse` (an immutable tag that names other content) or `keep` (a floating tag on a newer
    version). The same input hash is the same content; a floating tag moves forward or sideways, never back."""
    if there is None or there.input_hash == input_hash:
        return "push"
    if not floating:
        return "refuse"
    return "keep" if is_newer(there.version, version) else "push"


def plan_tags(scheme: Mapping[str, bool], there: Mapping[str, Pointed | None], input_hash: str, version: str,
              wanted: tuple[str, ...] = ()) -> TagPlan:
    """The tag plan of one cell: `scheme` is tag -> floating (see `tag_scheme`), `there` what the registry
    has under each tag, `wanted` the platforms an index must list to count as this build (() for one image)."""
    push, current, kept, refused = [], {}, {}, {}
    for tag, floating in scheme.items():
        found = there.get(tag)
        decision = tag_decision(floating, found, input_hash, version)
        if decision == "refuse" and found is not None:
            refused[tag] = found
        elif decision == "keep" and found is not None:
            kept[tag] = str(found.version)
        else:
            push.append(tag)
            if found is not None and found.input_hash == input_hash and lists_all(found.platforms, wanted):
                current[tag] = found.digest
    return TagPlan(tuple(push), current, kept, refused)


def refusal(key: str, repository: str, refused: Mapping[str, Pointed], input_hash: str, version: str) -> ForkflowError:
    """The error of a cell whose immutable tags already name other content: which tags, what the registry has
    under them, what this build is, and the ways out."""
    lines = [f"image:{key}: refused, nothing pushed: the registry already has "
             f"{'this tag' if len(refused) == 1 else 'these tags'} on other content, and a tag that carries a full "
             "version is never overwritten"]
    for tag, there in refused.items():
        lines.append(f"  {repository}:{tag}: registry digest {there.digest}, version {there.version or 'unknown'}, "
                     f"input hash {there.input_hash or 'none (not built by forkflow)'}")
    lines.append(f"  this build: version {version}, input hash {input_hash}")
    return ForkflowError("\n".join(lines), where=f"{repository}:{next(iter(refused))}",
                         fix="build the change under a new version: tag a new release, or build from a commit "
                             "whose version names it (X.Y.Z+<label>.<n>.g<sha>, as the version stage gives a commit "
                             "past a release); or, to replace the image on purpose, delete the tag from the "
                             "registry (DELETE /v2/<repository>/manifests/<digest>) and run `doit image` again")
