"""The packages of a fork: what each is, how its version is set, which files are its inputs.

Built from the `[packages]` config and each package's parsed pyproject.toml
(read by the caller). Kinds: `core` (the root package), `client` (the core
tree trimmed by a recipe), `integration` (one per folder matching the
integrations glob) and `flows` (the flows project).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tasks.core.errors import ConfigError


@dataclass(frozen=True)
class Package:
    name: str
    kind: str
    path: str
    backend: str
    static_version: str | None = None
    excludes: tuple[str, ...] = ()
    client_recipe: str | None = None
    client_remove: tuple[str, ...] = ()
    client_keep: tuple[str, ...] = ()

    @property
    def tag_based(self) -> bool:
        return self.backend in ("versioningit", "setuptools_scm", "hatch-vcs")


def detect_backend(pyproject: Mapping[str, Any]) -> str:
    """How the package gets its version: 'static', 'versioningit', 'setuptools_scm', 'hatch-vcs' or 'unknown'."""
    project = pyproject.get("project", {})
    tool = pyproject.get("tool", {})
    if "version" in project and "version" not in project.get("dynamic", []):
        return "static"
    source = tool.get("hatch", {}).get("version", {}).get("source")
    if source == "versioningit" or "versioningit" in tool:
        return "versioningit"
    if source == "vcs":
        return "hatch-vcs"
    requires = " ".join(pyproject.get("build-system", {}).get("requires", []))
    if "setuptools_scm" in tool or "setuptools_scm" in requires or "setuptools-scm" in requires:
        return "setuptools_scm"
    return "unknown"


def dist_name(pyproject: Mapping[str, Any], where: str) -> str:
    name = pyproject.get("project", {}).get("name")
    if not name:
        raise ConfigError(f"{where}: no [project] name", where=where, fix="give the package a PEP 621 [project] name")
    return str(name)


def make_package(kind: str, path: str, pyproject: Mapping[str, Any], where: str, **extra: Any) -> Package:
    backend = detect_backend(pyproject)
    static = pyproject.get("project", {}).get("version") if backend == "static" else None
    return Package(dist_name(pyproject, where), kind, path, backend, static, **extra)


def discover(
    core: tuple[str, Mapping[str, Any]],
    client: tuple[str, Mapping[str, Any]] | None,
    integrations: Iterable[tuple[str, Mapping[str, Any]]],
    flows: tuple[str, Mapping[str, Any]] | None,
    client_remove: tuple[str, ...],
    client_keep: tuple[str, ...] = (),
) -> list[Package]:
    """All packages, core first. Each argument is (relative path, parsed pyproject)."""
    nested = [path for path, _ in integrations] + [p for p in (client and client[0], flows and flows[0]) if p]
    core_path, core_data = core
    packages = [make_package("core", core_path, core_data, f"{core_path}/pyproject.toml",
                             excludes=tuple(excluded_under(core_path, nested)))]
    if client:
        packages.append(make_package(
            "client", core_path, client[1], f"{client[0]}/pyproject.toml",
            excludes=tuple(excluded_under(core_path, nested)),
            client_recipe=client[0], client_remove=client_remove, client_keep=client_keep,
        ))
    for path, data in sorted(integrations):
        packages.append(make_package("integration", path, data, f"{path}/pyproject.toml"))
    if flows:
        packages.append(make_package("flows", flows[0], flows[1], f"{flows[0]}/pyproject.toml"))
    check_unique(packages)
    return packages


def without_skipped(packages: list[Package], dependencies: Mapping[str, Iterable[str]],
                    skip: Iterable[str]) -> list[Package]:
    """`packages` without the names in `skip` ([packages] skip). `dependencies` maps a package name to its
    [project] dependencies. Refused: a name that is no package, the core or the flows project, and a
    kept package that needs a skipped one (it would come from an index instead of the fork)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    by_name: dict[str, Package] = {canonicalize_name(p.name): p for p in packages}
    wanted: dict[str, str] = {canonicalize_name(name): name for name in skip}
    check_skippable(wanted, by_name)
    kept = [p for p in packages if canonicalize_name(p.name) not in wanted]
    for package in kept:
        for line in dependencies.get(package.name, ()):
            try:
                needed = canonicalize_name(Requirement(line).name)
            except InvalidRequirement:
                continue
            if needed in wanted:
                raise ConfigError(f"{package.name} depends on {by_name[needed].name}, which [packages] skip leaves out: "
                                  "it would be installed from an index instead of the fork", where="[packages] skip",
                                  fix=f"skip {package.name} too, or ship {by_name[needed].name}")
    return kept


def check_skippable(wanted: Mapping[str, str], by_name: Mapping[str, Package]) -> None:
    unknown = [name for key, name in wanted.items() if key not in by_name]
    if unknown:
        available = ", ".join(p.name for p in by_name.values() if p.kind in ("client", "integration"))
        raise ConfigError(f"no package named {', '.join(unknown)} in the fork", where="[packages] skip",
                          fix=f"name integrations or the client: {available}")
    fixed = [by_name[key].name for key in wanted if by_name[key].kind in ("core", "flows")]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} cannot be skipped: the core and the flows project are always built",
                          where="[packages] skip", fix="skip only integrations or the client")


def excluded_under(root: str, others: Iterable[str]) -> list[str]:
    """Folders of other packages that sit inside root (their files are not root's inputs)."""
    base = PurePosixPath(root)
    return sorted(o for o in others if base == PurePosixPath(".") or base in PurePosixPath(o).parents)


def check_unique(packages: list[Package]) -> None:
    seen: dict[str, str] = {}
    for package in packages:
        if package.name in seen:
            raise ConfigError(
                f"two packages are named {package.name!r}: {seen[package.name]} and {package.path}",
                fix="give each package its own [project] name",
            )
        seen[package.name] = package.path


def owns(package: Package, file: str) -> bool:
    """True when a repository file (posix, relative) is one of the package's inputs."""
    if package.client_recipe and is_inside(file, package.client_recipe):
        return True
    if not is_inside(file, package.path):
        return False
    return not (file in package.excludes or file.startswith(folder_prefixes(package.excludes)))


def change_paths(package: Package, packages: list[Package]) -> list[list[str]]:
    """Git pathspecs of a package's inputs, in groups (a commit touching any group changes the package).

    Core and client share one version, so both include the client recipe's folder."""
    own = [package.path or "."] + [f":(exclude){folder}" for folder in package.excludes]
    if package.kind not in ("core", "client"):
        return [own]
    recipes = [p.client_recipe for p in packages if p.client_recipe]
    return [own] + [[recipe] for recipe in recipes]


@functools.lru_cache(maxsize=256)
def folder_prefixes(folders: tuple[str, ...]) -> tuple[str, ...]:
    """`a/b` -> `a/b/`, for one `str.startswith` over many folders (called per file)."""
    return tuple(folder.strip("/") + "/" for folder in folders)


def is_inside(path: str, folder: str) -> bool:
    """True when a relative posix path is the folder or lies under it (string checks: called per file)."""
    folder = folder.strip("/")
    return folder in (".", "") or path == folder or path.startswith(folder + "/")


def owned_files(package: Package, files: Iterable[str]) -> list[str]:
    """The package's input files among `files`; a plain prefix test for a folder with nothing excluded."""
    folder = package.path.strip("/")
    if package.excludes or package.client_recipe or folder in (".", ""):
        return [f for f in files if owns(package, f)]
    prefix = folder + "/"
    return [f for f in files if f.startswith(prefix) or f == folder]


def owned_entries(package: Package, entries: Mapping[str, str]) -> list[str]:
    """`owned_files` of a checkout's listing, sorted, found by bisection: a package of a plain folder takes its run
    of the sorted paths, so a monorepo's up-to-date checks cost each package its own files, not the whole
    listing."""
    keys = sorted_paths(entries)
    folder = package.path.strip("/")
    if package.excludes or package.client_recipe or folder in (".", ""):
        return owned_by_runs(package, keys)
    return [key for start, end in inside(keys, folder) for key in keys[start:end]]


def owned_by_runs(package: Package, keys: list[str]) -> list[str]:
    """`owns` over sorted `keys` by runs found by bisection: the package's folder, less its excluded files and
    folders, plus the client recipe's folder (a core's listing is most of the checkout, less 100 integrations)."""
    chosen = bytearray(len(keys))
    mark(chosen, inside(keys, package.path), 1)
    excluded = [exact(keys, path) for path in package.excludes]
    mark(chosen, excluded + [run_of(keys, prefix) for prefix in folder_prefixes(package.excludes)], 0)
    if package.client_recipe:
        mark(chosen, inside(keys, package.client_recipe), 1)
    return list(itertools.compress(keys, chosen))


def inside(keys: list[str], folder: str) -> list[tuple[int, int]]:
    """Where the sorted `keys` that `is_inside(key, folder)` are."""
    folder = folder.strip("/")
    if folder in (".", ""):
        return [(0, len(keys))]
    return [exact(keys, folder), run_of(keys, folder + "/")]


def exact(keys: list[str], path: str) -> tuple[int, int]:
    start = bisect.bisect_left(keys, path)
    return start, start + (start < len(keys) and keys[start] == path)


def run_of(keys: list[str], prefix: str) -> tuple[int, int]:
    """Where the sorted `keys` that start with `prefix` (a folder's, ending in "/") are: up to the first key
    from `prefix` with its "/" made "0", the character after it."""
    return bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, prefix[:-1] + "0")


def mark(chosen: bytearray, runs: list[tuple[int, int]], value: int) -> None:
    for start, end in runs:
        chosen[start:end] = bytes([value]) * (end - start)


def sorted_paths(entries: Mapping[str, str]) -> list[str]:
    """The listing's paths, sorted once per listing (a checkout's listing is made once and never changed)."""
    listing, keys = SORTED[0]
    if listing is not entries or len(keys) != len(entries):
        keys = sorted(entries)
        SORTED[0] = (entries, keys)
    return keys


SORTED: list[tuple[Any, list[str]]] = [(None, [])]  # the last listing and its sorted paths, replaced as one


def input_hash(package: Package, entries: Mapping[str, str], extra: Mapping[str, Any]) -> str:
    """sha256 over the package's files (path -> content id) and extra inputs (version, tools...)."""
    digest = hashlib.sha256()
    for file in owned_entries(package, entries):
        digest.update(f"{file}\0{entries[file]}\n".encode())
    for key in sorted(extra):
        digest.update(f"{key}={extra[key]}\n".encode())
    return digest.hexdigest()


def input_listing(package: Package, entries: Mapping[str, str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What input_hash covers, kept in the build stamp so a rebuild can say what changed."""
    return {"files": {file: entries[file] for file in owned_entries(package, entries)},
            "extra": {key: str(value) for key, value in sorted(extra.items())}}


def input_changes(before: Mapping[str, Any], now: Mapping[str, Any], shown: int = 3) -> str:
    """`src/x.py changed, y.py added, version 1.0.1 -> 1.0.2` between two input listings."""
    old_files, new_files = before.get("files", {}), now.get("files", {})
    parts = [f"{f} changed" for f in sorted(new_files) if f in old_files and old_files[f] != new_files[f]]
    parts += [f"{f} added" for f in sorted(new_files) if f not in old_files]
    parts += [f"{f} removed" for f in sorted(old_files) if f not in new_files]
    old_extra, new_extra = before.get("extra", {}), now.get("extra", {})
    parts += [f"{key} {old_extra.get(key, '(none)')} -> {new_extra.get(key, '(none)')}"
              for key in sorted({*old_extra, *new_extra}) if old_extra.get(key) != new_extra.get(key)]
    if len(parts) > shown:
        parts = [*parts[:shown], f"{len(parts) - shown} more"]
    return ", ".join(parts) or "inputs changed"


def staged_files(package: Package, files: Iterable[str]) -> dict[str, str]:
    """Where each input file goes in the package's build folder: destination -> repository path.

    The client recipe takes the core tree, drops `client_remove` paths and
    lays the recipe folder (its pyproject.toml, README...) over the root.
    """
    staged: dict[str, str] = {}
    overlay: dict[str, str] = {}
    for file in sorted(files):
        if package.client_recipe and is_inside(file, package.client_recipe):
            overlay[relative(file, package.client_recipe)] = file
        elif owns(package, file) and not removed(package, file):
            staged[relative(file, package.path)] = file
    staged.update(overlay)
    return staged


def removed(package: Package, file: str) -> bool:
    """True when the client recipe drops the file: inside a client_remove path and no client_keep path."""
    if any(is_inside(file, path) for path in package.client_keep):
        return False
    return any(is_inside(file, path) for path in package.client_remove)


def relative(file: str, folder: str) -> str:
    if folder in (".", ""):
        return file
    return PurePosixPath(file).relative_to(folder).as_posix()


def canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def check_dist_names(files: Iterable[str], name: str, version: str) -> list[str]:
    """Problems with built file names: each must carry the package's name and exact version."""
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
    from packaging.version import Version

    problems = []
    kinds = set()
    for file in files:
        try:
            if file.endswith(".whl"):
                found_name, found_version = parse_wheel_filename(file)[:2]
                kinds.add("wheel")
            else:
                found_name, found_version = parse_sdist_filename(file)
                kinds.add("sdist")
        except (InvalidWheelFilename, InvalidSdistFilename) as err:
            problems.append(f"{file}: {err}")
            continue
        if found_name != canonical(name) or found_version != Version(version):
            problems.append(f"{file}: expected {name} {version}, file says {found_name} {found_version}")
    for kind in {"wheel", "sdist"} - kinds:
        problems.append(f"no {kind} was built")
    return problems


def missing_modules(wheel_files: Iterable[str], tracked: Iterable[str]) -> list[str]:
    """Git-tracked Python files of the wheel's top-level packages that the wheel lacks.

    `tracked` are paths relative to the package's folder; a package `pkg` in the wheel is
    matched with `pkg/...` or `src/pkg/...` there. Catches a build that silently lost
    subpackages (a file finder that found no git, a packages list that names only the top).
    """
    contents = set(wheel_files)
    tops = {name.split("/", 1)[0] for name in contents
            if "/" in name and not name.split("/", 1)[0].endswith((".dist-info", ".data"))}
    missing = []
    for file in sorted(tracked):
        if not file.endswith(".py"):
            continue
        inside = file.removeprefix("src/")
        if inside.split("/", 1)[0] in tops and inside not in contents:
            missing.append(inside)
    return missing
