"""The dependency wheelhouse of the images, as rules: what to resolve, for which platform, and when again.

For each Python version x platform, the third-party dependencies of the
image's project wheels are resolved (`uv pip compile`) with the project
wheels given as file paths, so an index's release of the same name can never
stand in for the fork's; then exactly the resolved pins are downloaded as
wheels. The result is kept under `<state>/wheelhouse/<python>-<machine>/`
with a stamp naming the requirement set it was made for (`requirement_key`):
while that key is unchanged the folder is reused and nothing is asked of an
index.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tasks.core.errors import ForkflowError

GLIBC_MINOR = 28
"""Wheels are chosen for manylinux_2_28: glibc 2.28 or newer, what python:<v>-slim (Debian) and a local base have."""
OLDEST_MINOR = {"x86_64": 5, "aarch64": 17}
LEGACY_ALIASES = {"x86_64": {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}, "aarch64": {17: "manylinux2014"}}
STAMP = "stamp.json"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def folder_name(python: str, machine: str) -> str:
    return f"{python}-{machine}"


def uv_platform(machine: str) -> str:
    """uv's --python-platform value: `x86_64-manylinux_2_28`."""
    return f"{machine}-manylinux_2_{GLIBC_MINOR}"


def pip_platforms(machine: str) -> list[str]:
    """pip's --platform values for what runs on manylinux_2_28, newest first: pip does not expand
    `manylinux_2_28_x86_64` to the older tags itself."""
    tags = []
    for minor in range(GLIBC_MINOR, OLDEST_MINOR.get(machine, 17) - 1, -1):
        tags.append(f"manylinux_2_{minor}_{machine}")
        alias = LEGACY_ALIASES.get(machine, {}).get(minor)
        if alias:
            tags.append(f"{alias}_{machine}")
    return tags


def requirement_key(python: str, machine: str, index: str | None, requires: Mapping[str, Sequence[str]],
                    extra_wheels: Iterable[str], constraints: str = "", core_extras: Sequence[str] = ()) -> str:
    """What the resolution depends on: the Python, the platform, the index, each project wheel's
    Requires-Dist lines (not its version or code: a changed module needs no new resolution) and the
    names of the wheels in [images] wheelhouse, the text of [packages] constraints and the core's extras."""
    data: dict[str, object] = {
        "python": python, "machine": machine, "glibc": GLIBC_MINOR, "index": index or "",
        "requires": {canonicalize_name(name): sorted(lines) for name, lines in sorted(requires.items())},
        "extra_wheels": sorted(extra_wheels), "constraints": constraints}
    if core_extras:  # only when set, so the key of a wheelhouse made before extras existed still holds
        data["core_extras"] = sorted(core_extras)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def parse_pins(compiled: str, project_names: Iterable[str]) -> list[Pin]:
    """`name==version` lines of `uv pip compile` output, without the project's own packages (given as paths)."""
    ours = {canonicalize_name(name) for name in project_names}
    pins = []
    for raw in compiled.splitlines():
        line = raw.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if not match or canonicalize_name(match.group(1)) in ours:
            continue
        pins.append(Pin(canonicalize_name(match.group(1)), match.group(2)))
    return sorted(pins, key=lambda pin: pin.name)


def wheel_pin(filename: str) -> Pin | None:
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return Pin(str(name), str(version))


def split_present(pins: Sequence[Pin], filenames: Iterable[str]) -> tuple[dict[Pin, str], list[Pin], list[str]]:
    """(pin -> wheel already in the folder, pins still to download, files no pin wants)."""
    wanted = {(pin.name, Version(pin.version)): pin for pin in pins}
    present: dict[Pin, str] = {}
    unwanted = []
    for filename in sorted(filenames):
        found = wheel_pin(filename)
        pin = wanted.get((found.name, Version(found.version))) if found else None
        if pin is None or pin in present:
            unwanted.append(filename)
        else:
            present[pin] = filename
    return present, [pin for pin in pins if pin not in present], unwanted


CONSTRAINTS = "constraints.txt"


def prerelease_note(pins: Sequence[Pin]) -> str | None:
    """What to say when the resolution took pre-releases (a wheels-only resolution takes one when no release
    fits); None when it took none."""
    taken = [str(pin) for pin in pins if Version(pin.version).is_prerelease]
    if not taken:
        return None
    return (f"the resolution took pre-releases: {', '.join(taken)} (the package has no final release, none fits "
            "with wheels only, or one was asked for); the smoke test shows whether they work; to choose, pin a "
            "version in [packages] constraints or put the wheels you want in [images] wheelhouse")


def constraint_lines(pins_by_machine: Mapping[str, Sequence[str]]) -> list[str]:
    """The wheelhouse's pins as pip constraints for the installs inside an image, so pip installs what the
    resolver chose (a pre-release it had to take included): a pin every platform shares stands alone, one that
    is not shared carries `platform_machine` markers."""
    machines_of: dict[str, list[str]] = {}
    for machine, pins in pins_by_machine.items():
        for pin in pins:
            machines_of.setdefault(pin, []).append(machine)
    lines = []
    for pin, machines in sorted(machines_of.items()):
        if len(machines) == len(pins_by_machine):
            lines.append(pin)
        else:
            lines += [f'{pin} ; platform_machine == "{machine}"' for machine in machines]
    return lines


def stamp_data(key: str, python: str, machine: str, pins: Sequence[Pin], files: Mapping[str, str]) -> dict[str, object]:
    return {"key": key, "python": python, "machine": machine, "pins": [str(pin) for pin in pins],
            "files": dict(sorted(files.items()))}


def stamp_is_current(stamp: Mapping[str, object] | None, key: str, filenames: Iterable[str]) -> bool:
    """The folder was made for this requirement set and still holds every file it was made with."""
    if not stamp or stamp.get("key") != key:
        return False
    files = stamp.get("files")
    return isinstance(files, dict) and set(files) <= set(filenames)


MISSING_WHEEL = re.compile(r"(?:Because |and |^)`?([A-Za-z0-9][A-Za-z0-9._-]*)(?:[=<>!~]=?[^\s`]*)?`? has no (?:usable )?wheels"
                           r"|Wheels are required for `([A-Za-z0-9][A-Za-z0-9._-]*)`"
                           r"|No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)", re.MULTILINE)


def packages_without_wheels(output: str) -> list[str]:
    """Package names a resolver or downloader said it found no wheel of."""
    names = {canonicalize_name(next(g for g in match.groups() if g)) for match in MISSING_WHEEL.finditer(output)}
    return sorted(names)


def missing_wheels_error(names: Sequence[str], python: str, machine: str, detail: str) -> ForkflowError:
    what = ", ".join(names) if names else "a requirement"
    return ForkflowError(
        f"no wheel of {what} for Python {python} on {uv_platform(machine)} (CPython, Linux): the images install "
        f"wheels only\n{detail}",
        where="[images] wheelhouse",
        fix=f"put a wheel of {what} built for Python {python} and {machine} into the folder [images] wheelhouse names "
            "(e.g. `pip wheel --no-deps -w <wheelhouse> <package>` on a matching machine), or pin a version that has "
            "wheels in the package's requirements",
    )
