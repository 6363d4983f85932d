"""Constraints taken from the fork's lock file: which of its pins apply next to the user's own.

A fork of Prefect carries upstream's `uv.lock`, the versions upstream tests with.
Exported as requirement lines, those pins become a second constraints file. Pins
the user's own constraints file names win: the lock's lines for that name and for
what it depends on in the lock are left out (pydantic 2.8 needs another
pydantic-core than the lock's), so the two files never conflict. The fork's own
packages are never pinned: they are installed from the wheels just built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def requirement_name(line: str) -> str | None:
    """The canonical name a requirement line pins; None for comments, options and what does not parse."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("#", "-")):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def pinned_names(text: str) -> set[str]:
    names = {requirement_name(line) for line in text.splitlines()}
    return {name for name in names if name}


def lock_dependencies(lock: Mapping[str, Any], names: Iterable[str]) -> set[str]:
    """`names` and everything they depend on, directly or not, by the [[package]] entries of a uv.lock."""
    needs: dict[str, set[str]] = {}
    for package in lock.get("package", []):
        wanted = needs.setdefault(canonicalize_name(package["name"]), set())
        wanted.update(canonicalize_name(dependency["name"]) for dependency in package.get("dependencies", []))
    found: set[str] = {canonicalize_name(name) for name in names}
    todo = list(found)
    while todo:
        for dependency in needs.get(todo.pop(), set()) - found:
            found.add(dependency)
            todo.append(dependency)
    return found


def lock_constraints(exported: str, own: str, fork_names: Iterable[str], lock: Mapping[str, Any]) -> str:
    """The lock's requirement lines minus what the user's constraints (`own`) pin, with what those need
    in the lock, and minus the fork's packages."""
    skip = lock_dependencies(lock, pinned_names(own)) | {canonicalize_name(name) for name in fork_names}
    kept = []
    for line in exported.splitlines():
        name = requirement_name(line)
        if name and name not in skip:
            kept.append(line.split(" #", 1)[0].strip())
    return "".join(line + "\n" for line in kept)
