"""Image plans, as data: which wheels go in, tags, the input hash and why a rebuild is due.

Nothing here touches Docker, files or doit. The stage module reads wheel.json,
the templates and the engine, hands the facts to these functions and acts on
what they return.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.values import sha256_hex

if TYPE_CHECKING:
    from packaging.requirements import Requirement

LABEL_PREFIX = "org.forkflow"
INPUT_HASH_LABEL = f"{LABEL_PREFIX}.input-hash"
VERSION_LABEL = "org.opencontainers.image.version"  # the image's PEP 440 version (its core package's)


@dataclass(frozen=True)
class Wheel:
    """One wheel file from the wheel stage's report."""

    name: str
    version: str
    kind: str
    file: str
    path: str
    sha256: str


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides what one image is: its inputs, tags and where it goes."""

    python: str
    flavor: str
    base_image: str
    version: str
    packages: tuple[Wheel, ...]
    extras: tuple[Wheel, ...]
    dependencies: tuple[str, ...]
    tags: tuple[str, ...]
    repository: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    wheelhouse: tuple[tuple[str, str], ...] = ()
    pins: tuple[str, ...] = ()  # the wheelhouse's resolution, as pip constraints (deps/constraints.txt)
    floating: tuple[str, ...] = ()  # the tags that move from build to build; every other tag names one build
    core_extras: tuple[str, ...] = ()  # the core's extras this flavor installs (`prefect[redis,client,otel]`)

    @property
    def scheme(self) -> dict[str, bool]:
        """tag -> whether it floats (see tasks.core.image_tags.tag_scheme)."""
        return {tag: tag in self.floating for tag in self.tags}

    @property
    def key(self) -> str:
        return image_key(self.python, self.flavor)

    @property
    def wheels(self) -> tuple[Wheel, ...]:
        return self.packages + self.extras

    def references(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]


def image_key(python: str, flavor: str) -> str:
    """The subtask name of an image: `3.12-base`, `3.12-kubernetes`."""
    return f"{python}-{flavor}"


# ---- wheels -------------------------------------------------------------------------------------


def wheels_from_report(report: Mapping[str, Any], source: str) -> list[Wheel]:
    """Every wheel file listed in wheel.json, or a ForkflowError naming what is malformed."""
    packages = report.get("packages")
    if not isinstance(packages, list):
        raise ForkflowError(f"{source}: no 'packages' list", where=source, fix="run `doit wheel` to write it again")
    found = []
    for package in packages:
        try:
            for item in package["files"]:
                if str(item["name"]).endswith(".whl"):
                    found.append(Wheel(package["name"], str(package["version"]), package.get("kind", "integration"),
                                       item["name"], item["path"], item["sha256"]))
        except (KeyError, TypeError) as err:
            raise ForkflowError(f"{source}: a package entry lacks {err}", where=source,
                                fix="run `doit wheel` to write it again") from None
    return found


def select_wheels(wheels: Sequence[Wheel], wanted: Sequence[str] | None, what: str, source: str) -> tuple[Wheel, ...]:
    """The wheels named in `wanted` (the core package's when None), in that order."""
    if wanted is None:
        return tuple(w for w in wheels if w.kind == "core")
    by_name = {canonical(w.name): w for w in wheels}
    missing = [name for name in wanted if canonical(name) not in by_name]
    if missing:
        available = ", ".join(sorted(w.name for w in wheels)) or "none"
        raise ForkflowError(
            f"{what}: {', '.join(missing)} not among the wheels in {source} (available: {available})",
            where=what, fix="name packages the wheel stage builds, or build them first with `doit wheel`",
        )
    return tuple(by_name[canonical(name)] for name in wanted)


def flavor_packages(wheels: Sequence[Wheel], flavor: str, configured: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The packages a flavor adds to those of every image: `[images] extra_packages.<flavor>` when set; for
    kubernetes, else, the core's kubernetes integration (`prefect-kubernetes`) when the wheel stage builds one."""
    if flavor in configured:
        return tuple(configured[flavor])
    core = next((w for w in wheels if w.kind == "core"), None)
    if flavor == "kubernetes" and core:
        name = canonical(f"{core.name}-kubernetes")
        return tuple(w.name for w in wheels if canonical(w.name) == name)[:1]
    return ()


def check_flavor_differs(flavor: str, extras: Sequence[Wheel], core_extras: Sequence[str], base_extras: Sequence[str],
                         core: str | None) -> None:
    """A kubernetes flavor holds what makes it one: a kubernetes image with exactly the base image's packages is
    refused, saying what to write."""
    if flavor != "kubernetes" or extras or set(core_extras) - set(base_extras):
        return
    raise ConfigError(
        "[images] flavors lists kubernetes, but its images would hold exactly what the base images hold: the wheel "
        f"stage builds no {core or '<core>'}-kubernetes and extra_packages.kubernetes is not set",
        where="[images] extra_packages.kubernetes",
        fix='name the packages the kubernetes images add, e.g. extra_packages = { kubernetes = ["prefect-kubernetes"] } '
            '(the demo: ["orbit-aws"]), or core_extras = { kubernetes = ["kubernetes"] }; or remove kubernetes from '
            "[images] flavors")


def core_version(wheels: Sequence[Wheel]) -> str:
    """The core package's version (what the image's version command must print), else the first package's."""
    for wheel in wheels:
        if wheel.kind == "core":
            return wheel.version
    if not wheels:
        raise ForkflowError("an image needs at least one package", fix="list packages in [images] packages")
    return wheels[0].version


MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}


def machine_of(platform: str) -> str:
    """`x86_64` for `linux/amd64`, `aarch64` for `linux/arm64`."""
    if platform not in MACHINES:
        raise ForkflowError(f"unsupported image platform {platform!r}", where="[images] platforms",
                            fix=f"use one of {', '.join(sorted(MACHINES))}")
    return MACHINES[platform]


def marker_environment(python: str, machine: str) -> dict[str, str]:
    """What environment markers see in an image: CPython `python` (patch release 0, as resolvers assume)
    on Linux for `machine` (`x86_64`, `aarch64`; see `machine_of`)."""
    full = f"{python}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": full,
        "python_version": python,
        "sys_platform": "linux",
        "extra": "",
    }


def canonical(name: str) -> str:
    """A package name as PEP 503 compares it (packaging is imported only by what compares names)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def applies(req: Requirement, environment: Mapping[str, str]) -> bool:
    """True when the requirement's marker holds in `environment`; with no extra chosen, extras-only ones do not."""
    return req.marker is None or req.marker.evaluate(dict(environment))


def third_party_requirements(requires: Mapping[str, Sequence[str]], project_names: Iterable[str],
                             environment: Mapping[str, str]) -> tuple[str, ...]:
    """Requirements of the image's wheels on packages outside the project that apply in the image's
    `environment` (see `marker_environment`); extras-only ones never do.

    `requires` maps a wheel's name to its Requires-Dist lines.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    ours = {canonical(name) for name in project_names}
    found: dict[str, str] = {}
    for lines in requires.values():
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonical(req.name) in ours or not applies(req, environment):
                continue
            found.setdefault(str(req), str(req))
    return tuple(sorted(found))


def without_marker(line: str) -> str:
    """`redis>=4` for `redis>=4; extra == "redis"`: a requirement of a chosen extra, installed as a plain one."""
    from packaging.requirements import Requirement

    req = Requirement(line)
    req.marker = None
    return str(req)


def requirement_names(requirements: Iterable[str]) -> list[str]:
    from packaging.requirements import Requirement

    return [canonical(Requirement(r).name) for r in requirements]


# ---- tags ---------------------------------------------------------------------------------------


# ---- inputs and reasons -------------------------------------------------------------------------


def build_inputs(spec: ImageSpec, dockerfile: str, base_image_content: str) -> dict[str, Any]:
    """What a build depends on; the image is rebuilt when any of it changes."""
    return {
        "dockerfile_sha256": sha256_hex(dockerfile),
        "wheels": {w.file: w.sha256 for w in spec.wheels},
        "base_image": spec.base_image,
        "base_image_content": base_image_content,
        "build_args": dict(sorted(spec.build_args.items())),
        "dependencies": list(spec.dependencies),
        "wheelhouse": dict(spec.wheelhouse),
        "pins": list(spec.pins),
    }


def input_hash(inputs: Mapping[str, Any]) -> str:
    return sha256_hex(json.dumps(inputs, sort_keys=True))


def push_target(spec: ImageSpec, push: bool) -> dict[str, Any]:
    """Where the image goes; a change means tag and push again, not rebuild."""
    return {"repository": spec.repository, "tags": list(spec.tags), "push": push}


def rebuild_reasons(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Why the inputs differ from the last successful build, in words; empty when they do not."""
    if not previous:
        return ["never built"]
    reasons = []
    if previous.get("dockerfile_sha256") != current["dockerfile_sha256"]:
        reasons.append("Dockerfile changed (template, packages or build args)")
    reasons += wheel_changes(previous.get("wheels", {}), current["wheels"])
    if previous.get("base_image") != current["base_image"]:
        reasons.append(f"base image is now {current['base_image']} (was {previous.get('base_image')})")
    elif previous.get("base_image_content") != current["base_image_content"]:
        reasons.append(f"base image {current['base_image']} changed ({short(previous.get('base_image_content'))} -> "
                       f"{short(current['base_image_content'])})")
    if previous.get("build_args") != current["build_args"]:
        reasons.append("build args changed")
    if previous.get("dependencies") != current["dependencies"]:
        reasons.append("third-party dependencies changed")
    if previous.get("wheelhouse") != current["wheelhouse"]:
        reasons.append("wheelhouse changed")
    elif previous.get("pins", []) != current.get("pins", []):
        reasons.append("the wheelhouse's pins changed")
    return reasons


def wheel_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    reasons = []
    for name in sorted(after):
        if name not in before:
            reasons.append(f"wheel added: {name}")
        elif before[name] != after[name]:
            reasons.append(f"wheel changed: {name} ({before[name][:8]} -> {after[name][:8]})")
    reasons += [f"wheel removed: {name}" for name in sorted(set(before) - set(after))]
    return reasons


def push_reasons(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    if not previous:
        return []
    reasons = []
    if previous.get("repository") != current["repository"]:
        reasons.append(f"repository is now {current['repository']}")
    new_tags = [t for t in current["tags"] if t not in previous.get("tags", [])]
    if new_tags:
        reasons.append("new tags: " + ", ".join(new_tags))
    if current["push"] and not previous.get("push"):
        reasons.append("push turned on")
    return reasons


def size_fields(size: int | None, base_size: int | None) -> dict[str, Any]:
    """image.json's sizes: the image's bytes, its base's, and what the image adds to the base."""
    if size is None:
        return {}
    found: dict[str, Any] = {"size": size, "size_mb": megabytes(size)}
    if base_size is not None:
        found.update(base_size=base_size, added_size=size - base_size)
    return found


def megabytes(size: int) -> float:
    return round(size / 1_000_000, 1)


def short(digest: Any) -> str:
    text = str(digest or "none")
    return text.split(":", 1)[-1][:12]


# ---- labels and smoke test ----------------------------------------------------------------------


def image_labels(spec: ImageSpec, digest_of_inputs: str, source: str, revision: str, created: str) -> dict[str, str]:
    """OCI annotations plus the input hash that lets a later run find this exact build."""
    return {
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.revision": revision,
        VERSION_LABEL: spec.version,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.title": f"{spec.repository.rsplit('/', 1)[-1]} {spec.flavor}",
        "org.opencontainers.image.base.name": spec.base_image,
        INPUT_HASH_LABEL: digest_of_inputs,
        f"{LABEL_PREFIX}.python": spec.python,
        f"{LABEL_PREFIX}.flavor": spec.flavor,
    }


def label_instruction(labels: Mapping[str, str]) -> str:
    """One LABEL instruction (one build step) for all labels, appended after the rendered Dockerfile."""
    pairs = " \\\n      ".join(f"{json.dumps(key)}={json.dumps(value)}" for key, value in sorted(labels.items()))
    return f"LABEL {pairs}\n"


@dataclass(frozen=True)
class CellSteps:
    """What a run of one image cell does: the one answer the up-to-date check, the dry run and the real run share."""

    stale: str | None  # why the cell runs; None when it is up to date
    build: bool  # no image with these inputs in the engine, so one is built
    rebuild_reasons: tuple[str, ...]
    push: bool
    push_reasons: tuple[str, ...]


def cell_steps(recorded: Mapping[str, Any] | None, previous: Mapping[str, Any] | None, inputs: Mapping[str, Any],
               target: Mapping[str, Any], *, built: bool, recorded_present: bool) -> CellSteps:
    """`recorded`: what the last real run returned (input hash, image id, hashed target); `previous`: its state
    file (inputs, target); `built`: an image with these inputs is in the engine; `recorded_present`: the image the
    last run made is still there."""
    digest = input_hash(inputs)
    stale = None
    if not recorded or "input_hash" not in recorded:
        stale = "first build (no build recorded)"
    elif recorded.get("input_hash") != digest:
        stale = "its inputs changed (wheels, base image, Dockerfile or build settings)"
    elif recorded.get("target") != input_hash(target):
        stale = "its tags or push target changed"
    elif not recorded_present:
        stale = "the built image is no longer in the engine"
    reasons = rebuild_reasons(previous.get("inputs") if previous else None, inputs) if not built else []
    return CellSteps(stale, not built, tuple(reasons),
                     bool(target["push"]), tuple(push_reasons(previous.get("target") if previous else None, target)))
