"""What verifying a wheel means, as rules: which of the fork's wheels it needs, on which Pythons.

Before anything is published, each wheel is installed with its dependencies into a fresh
virtual environment per target Python. The fork's own packages it depends on are given to
the installer as files, so an index can never substitute a same-named release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name


def fork_requirements(requires: Iterable[str], fork: Iterable[str]) -> list[str]:
    """Canonical names of the fork's packages among Requires-Dist lines (extras-only ones left out)."""
    ours = {canonicalize_name(name) for name in fork}
    found: list[str] = []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker and "extra" in str(requirement.marker):
            continue
        name = canonicalize_name(requirement.name)
        if name in ours and name not in found:
            found.append(name)
    return found


def fork_closure(name: str, requires: Mapping[str, Iterable[str]]) -> list[str]:
    """The package and every fork package it needs, directly or not; `requires` maps canonical
    fork names to their Requires-Dist lines."""
    order: list[str] = [canonicalize_name(name)]
    for current in order:
        for needed in fork_requirements(requires.get(current, ()), requires):
            if needed not in order:
                order.append(needed)
    return order


def supports_python(requires_python: str | None, python: str) -> bool:
    """True when a Requires-Python specifier admits `python` (3.12 is checked as 3.12.0 and up)."""
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    return any(spec.contains(f"{python}.{patch}", prereleases=True) for patch in (0, 99))


def changed_versions(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What differs between two installs (name -> version), one line each, sorted by name."""
    old = {canonicalize_name(name): version for name, version in before.items()}
    new = {canonicalize_name(name): version for name, version in after.items()}
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            lines.append(f"{name} {old[name]} (gone)")
        elif name not in old:
            lines.append(f"{name} {new[name]} (new)")
        elif old[name] != new[name]:
            lines.append(f"{name} {old[name]} -> {new[name]}")
    return lines
