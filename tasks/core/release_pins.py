"""The pins a release ships: the third-party versions its core was verified with, as a wheel.

Prefect allows wide ranges (`fastapi>=0.139,<1`); the newest release in a range can
break the server. What `verify` installed next to the core is the one set known to
work, so it ships as a metadata-only wheel, `<project>-pins`, whose version is the
core's and whose `Requires-Dist` lines pin each third-party distribution exactly
(per Python, with a `python_version` marker, where the Pythons resolved differently).
One command then installs the fork's core with exactly that set:

    pip install --index-url <index>/simple/ "<project>-pins==<version>" "<core>==<version>"

Its bytes depend only on its name, version and pins (fixed order, fixed times), so an
unchanged set is the same file and publishing it again uploads nothing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PythonPins = Mapping[str, Mapping[str, str]]  # Python ("3.12") -> canonical name -> version


@dataclass(frozen=True)
class ReleasePins:
    """What the pins wheel says: its name and version, the core it goes with, its requirement lines."""

    name: str
    version: str
    core: str
    requires: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{wheel_name(self.name)}-{self.version}-py3-none-any.whl"


def default_name(project: str) -> str:
    return f"{canonicalize_name(project)}-pins"


def wheel_name(name: str) -> str:
    """A distribution name as wheel file names and .dist-info folders spell it (`acme-pins` -> `acme_pins`)."""
    return canonicalize_name(name).replace("-", "_")


def pin_set(installed: PythonPins, fork: Iterable[str]) -> dict[str, dict[str, str]]:
    """Python -> canonical name -> version of what was installed, without the fork's own packages."""
    ours = {canonicalize_name(name) for name in fork}
    return {python: dict(sorted((canonicalize_name(name), version) for name, version in names.items()
                                if canonicalize_name(name) not in ours))
            for python, names in sorted(installed.items(), key=lambda item: python_key(item[0]))}


def python_key(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split(".") if part.isdigit())


def requirement_lines(pins: PythonPins) -> tuple[str, ...]:
    """`name==version` for each pinned name; where the Pythons differ (another version, or the name is
    installed on some only), one line per Python with a `python_version` marker instead."""
    pythons = sorted(pins, key=python_key)
    names = sorted({name for python in pythons for name in pins[python]})
    lines: list[str] = []
    for name in names:
        versions = {python: pins[python][name] for python in pythons if name in pins[python]}
        if len(versions) == len(pythons) and len(set(versions.values())) == 1:
            lines.append(f"{name}=={next(iter(versions.values()))}")
        else:
            lines += [f'{name}=={version} ; python_version == "{python}"' for python, version in versions.items()]
    return tuple(lines)


def release_pins(name: str, core: str, core_version: str, pins: PythonPins) -> ReleasePins:
    """The pins of one core release; the version is the core's, normalized as installers print it."""
    return ReleasePins(canonicalize_name(name), str(Version(core_version)), canonicalize_name(core),
                       requirement_lines(pin_set(pins, ())))


def metadata(release: ReleasePins) -> str:
    body = (f"The third-party versions {release.core} {release.version} was verified with.\n\n"
            f"Install them with it, in one command:\n\n"
            f"    pip install --index-url <index>/simple/ \"{release.name}=={release.version}\" "
            f"\"{release.core}=={release.version}\"\n")
    headers = ["Metadata-Version: 2.1", f"Name: {release.name}", f"Version: {release.version}",
               f"Summary: pins of the third-party versions {release.core} {release.version} was verified with",
               "Description-Content-Type: text/markdown",
               *(f"Requires-Dist: {line}" for line in release.requires)]
    return "\n".join(headers) + "\n\n" + body


WHEEL = "Wheel-Version: 1.0\nGenerator: forkflow\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def wheel_files(release: ReleasePins) -> list[tuple[str, bytes]]:
    """The wheel's members in order, RECORD last: a dist-info folder and nothing to import."""
    info = f"{wheel_name(release.name)}-{release.version}.dist-info"
    files = [(f"{info}/METADATA", metadata(release).encode()), (f"{info}/WHEEL", WHEEL.encode())]
    record = "".join(f"{path},sha256={digest(data)},{len(data)}\n" for path, data in files) + f"{info}/RECORD,,\n"
    return [*files, (f"{info}/RECORD", record.encode())]


def digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def requires_from_metadata(text: str) -> tuple[str, ...]:
    """The Requires-Dist lines of a METADATA text (to compare a published pins wheel with a new one)."""
    prefix = "Requires-Dist: "
    return tuple(line[len(prefix):].strip() for line in text.split("\n\n", 1)[0].splitlines() if line.startswith(prefix))


def changed_pins(published: Sequence[str], built: Sequence[str]) -> list[str]:
    """One line per requirement that is only in one of two sets: `- old` and `+ new`."""
    old, new = set(published), set(built)
    return [f"- {line}" for line in sorted(old - new)] + [f"+ {line}" for line in sorted(new - old)]


def applicable(requires: Iterable[str], python: str) -> dict[str, str]:
    """Canonical name -> pinned version among the lines whose marker holds on `python` ("3.11")."""
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    found: dict[str, str] = {}
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        pinned = next((spec.version for spec in requirement.specifier if spec.operator == "=="), None)
        if pinned:
            found[canonicalize_name(requirement.name)] = pinned
    return found


def unmet_pins(requires: Iterable[str], installed: Mapping[str, str], python: str) -> list[str]:
    """The pins an environment on `python` did not get: `name: pinned X, installed Y` (or `missing`)."""
    have: dict[str, str] = {canonicalize_name(name): version for name, version in installed.items()}
    return [f"{name}: pinned {version}, installed {have.get(name, 'nothing')}"
            for name, version in sorted(applicable(requires, python).items())
            if name not in have or Version(have[name]) != Version(version)]


def install_command(installer: str, index_url: str, requirements: Sequence[str], upstream: str | None = None) -> list[str]:
    """The documented install command: pip with one index URL (which falls back to upstream for what it lacks),
    or uv with the private index first (uv takes a package only from the first index that has it)."""
    simple = index_url.rstrip("/") + "/simple/"
    if installer == "pip":
        return ["pip", "install", "--index-url", simple, *requirements]
    default = ["--default-index", upstream] if upstream else []
    return ["uv", "pip", "install", "--index", simple, *default, *requirements]
