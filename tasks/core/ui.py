"""The core package's UI bundles (Prefect's dashboard): which they are, what they are built from, where they go.

A bundle is an npm project in the fork (`ui/`, `ui-v2/`) whose `npm run build` output (`dist/`) is
copied into the core's tree before its wheel is built (`src/prefect/server/ui`), as upstream's
`prefect dev build-ui --include-v2` does. Its inputs are its git-tracked files (blob ids, or
working-copy hashes for uncommitted edits), the lockfile among them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tasks.core.errors import ConfigError

LOCKFILE = "package-lock.json"
BUILD = ("npm", "run", "build")
INSTALL = ("npm", "ci", "--no-audit", "--no-fund")
INSTALL_FIX = "run ./scripts/setup (or `apt-get install nodejs npm`), then run the task again"


@dataclass(frozen=True)
class Bundle:
    """`source`: the npm project's folder in the repository; `target`: its dist's place, relative to the core folder."""

    name: str
    source: str
    target: str

    @property
    def index_in_wheel(self) -> str:
        """Where the bundle's index.html lands in the wheel (`src/` is the package root, as hatch's `packages`)."""
        return f"{self.target.strip('/').removeprefix('src/')}/index.html"


def join(folder: str, path: str) -> str:
    joined = PurePosixPath(folder) / path
    return joined.as_posix().removeprefix("./") if folder not in (".", "") else PurePosixPath(path).as_posix()


def configured_bundles(core_path: str, entries: Sequence[Any]) -> list[Bundle]:
    """Bundles from `[[packages.ui]]` entries (objects with source, target and an optional name)."""
    bundles = [Bundle(entry.name or PurePosixPath(entry.source).name, join(core_path, entry.source),
                      PurePosixPath(entry.target).as_posix()) for entry in entries]
    names = [bundle.name for bundle in bundles]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ConfigError(f"two UI bundles are named {', '.join(doubled)}", where="[packages] ui",
                          fix="give each [[packages.ui]] entry its own name")
    return bundles


def detected_bundles(core_path: str, core_name: str, files: Iterable[str]) -> list[Bundle]:
    """Prefect's layout: each `ui`/`ui-*` folder of the core with a package.json, when the core has a server
    package (`src/<module>/server/`); it goes to `src/<module>/server/<folder>`."""
    module = re.sub(r"[-.]+", "_", core_name).lower()
    server = join(core_path, f"src/{module}/server") + "/"
    listed = list(files)
    if not any(file.startswith(server) for file in listed):
        return []
    found = []
    for file in sorted({file for file in listed if file.endswith("/package.json")}):
        parts = PurePosixPath(file).relative_to(core_path).parts if core_path not in (".", "") else PurePosixPath(file).parts
        if len(parts) == 2 and parts[1] == "package.json" and (parts[0] == "ui" or parts[0].startswith("ui-")):
            found.append(Bundle(parts[0], join(core_path, parts[0]), f"src/{module}/server/{parts[0]}"))
    return sorted(found, key=lambda bundle: bundle.name)


def bundle_files(bundle: Bundle, entries: Mapping[str, str]) -> dict[str, str]:
    """The bundle's files (relative to its folder) -> content id."""
    prefix = bundle.source.strip("/") + "/"
    return {file[len(prefix):]: entry for file, entry in entries.items()
            if file.startswith(prefix) and entry != "deleted"}


def bundle_hash(bundle: Bundle, entries: Mapping[str, str]) -> str:
    """sha256 over the bundle's files, its target and the build commands: what its dist is made from."""
    digest = hashlib.sha256(f"{bundle.target}\n{' '.join(INSTALL)}\n{' '.join(BUILD)}\n".encode())
    for file, entry in sorted(bundle_files(bundle, entries).items()):
        digest.update(f"{file}\0{entry}\n".encode())
    return digest.hexdigest()


def lock_id(bundle: Bundle, entries: Mapping[str, str]) -> str | None:
    """The lockfile's content id: node_modules is reused while it is the same."""
    return bundle_files(bundle, entries).get(LOCKFILE)


def is_dirty(bundle: Bundle, entries: Mapping[str, str]) -> bool:
    """True when one of the bundle's files differs from HEAD (a working-copy hash instead of a blob id)."""
    prefix = bundle.source.strip("/") + "/"
    return any(file.startswith(prefix) and (entry == "deleted" or entry.startswith("sha256:"))
               for file, entry in entries.items())


def node_mismatch(nvmrc: str, node_version: str) -> str | None:
    """A warning when `.nvmrc` asks for another major version of node than the one found (`lts/*` is not checked)."""
    wanted = re.match(r"v?(\d+)", nvmrc.strip())
    found = re.match(r"v?(\d+)", node_version.strip())
    if not wanted or not found or wanted.group(1) == found.group(1):
        return None
    return (f".nvmrc asks for node {nvmrc.strip()} but node {node_version.strip()} is on PATH; "
            f"the build may differ from upstream's (install node {wanted.group(1)}, e.g. with nvm)")


def missing_in_wheel(names: Iterable[str], bundles: Iterable[Bundle]) -> list[Bundle]:
    """Bundles whose index.html the built wheel does not hold."""
    contents = set(names)
    return [bundle for bundle in bundles if bundle.index_in_wheel not in contents]
