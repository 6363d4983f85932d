"""Thin adapter over PyPA `build` and `twine check`: build, inspect and verify distributions."""

from __future__ import annotations

import email.parser
import functools
import hashlib
import shutil
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tasks.adapters.run import run
from tasks.core.errors import ForkflowError

TOOLS = ("build", "hatchling", "versioningit", "setuptools", "setuptools_scm", "hatch-vcs", "wheel", "twine")


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of the build tools in this environment (part of every package's build inputs)."""
    found = {"python": sys.version.split()[0]}
    for name in TOOLS:
        try:
            found[name] = installed_version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def installed_version(name: str) -> str:
    """`importlib.metadata.version(name)`, read from the Version line of the distribution's METADATA header
    instead of through the email parser (a no-op run asks for eight tools' versions); the parser only when the
    header has no such line."""
    found = metadata.distribution(name)
    for line in (found.read_text("METADATA") or found.read_text("PKG-INFO") or "").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == "version":
            return value.strip()
    return metadata.version(name)


def requirements_met(requires: list[str]) -> bool:
    """True when every build requirement is installed here, so the build can skip its isolated env."""
    from packaging.requirements import InvalidRequirement, Requirement

    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            return False
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            return False
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            return False
    return True


def build_dists(source: Path, outdir: Path, env: Mapping[str, str], isolated: bool) -> list[Path]:
    """sdist, then a wheel built from that sdist; returns both files."""
    shutil.rmtree(outdir, ignore_errors=True)
    argv = [sys.executable, "-m", "build", "--outdir", str(outdir)]
    if not isolated:
        argv.append("--no-isolation")
    elif shutil.which("uv"):
        argv += ["--installer", "uv"]
    run([*argv, str(source)], env=dict(env), cwd=source,
        fix="read the build output above; the package's own build configuration failed")
    return sorted(outdir.iterdir())


def metadata_text(wheel: Path) -> str:
    """The wheel's .dist-info/METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ForkflowError(f"{wheel}: no METADATA inside", fix="rebuild the wheel (`doit wheel`)")
        return archive.read(name).decode("utf-8")


def wheel_metadata(wheel: Path) -> tuple[str, str]:
    return name_and_version(metadata_text(wheel))


def sdist_metadata(sdist: Path) -> tuple[str, str]:
    import tarfile

    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        handle = archive.extractfile(member)
        assert handle is not None
        return name_and_version(handle.read().decode("utf-8"))


def name_and_version(text: str) -> tuple[str, str]:
    message = email.parser.Parser().parsestr(text, headersonly=True)
    return str(message["Name"]), str(message["Version"])


def write_wheel_sbom(wheel: Path, digest: str) -> Path:
    """`<wheel>.cdx.json` next to the wheel: its SBOM from its own METADATA (tasks.core.sbom.wheel_document)."""
    from tasks.core import sbom

    message = email.parser.Parser().parsestr(metadata_text(wheel), headersonly=True)
    fields = {"name": message["Name"], "version": message["Version"], "summary": message.get("Summary"),
              "license_expression": message.get("License-Expression"), "license": message.get("License"),
              "requires_dist": message.get_all("Requires-Dist") or ()}
    target = wheel.with_name(wheel.name + SBOM_SUFFIX)
    target.write_bytes(sbom.dumps(sbom.wheel_document(fields, wheel.name, digest)))
    return target


SBOM_SUFFIX = ".cdx.json"


def dist_metadata(file: Path) -> tuple[str, str]:
    return wheel_metadata(file) if file.suffix == ".whl" else sdist_metadata(file)


def twine_check(files: list[Path]) -> None:
    proc = run([sys.executable, "-m", "twine", "check", *map(str, files)], check=False)
    if proc.returncode != 0:
        raise ForkflowError(
            f"twine check failed:\n{proc.stdout}{proc.stderr}".rstrip(),
            where=", ".join(f.name for f in files),
            fix="fix the package metadata (README, classifiers, long_description) it names",
        )


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WheelInfo:
    """What a wheel's dist-info says about installing it."""

    requires: tuple[str, ...]
    requires_python: str | None
    scripts: tuple[str, ...]


def wheel_info(wheel: Path) -> WheelInfo:
    """From a wheel's dist-info: Requires-Dist lines, Requires-Python and console script names.

    Read once per file version in a process: up-to-date checks ask for the same wheels again and again."""
    stat = wheel.stat()
    return read_wheel_info(str(wheel), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def read_wheel_info(path: str, mtime_ns: int, size: int) -> WheelInfo:
    import configparser

    message = email.parser.Parser().parsestr(metadata_text(Path(path)), headersonly=True)
    scripts: list[str] = []
    with zipfile.ZipFile(path) as archive:
        points = next((n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")), None)
        if points:
            parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
            parser.optionxform = str  # type: ignore[assignment, method-assign]  # keep script names as written
            parser.read_string(archive.read(points).decode("utf-8"))
            scripts = list(parser["console_scripts"]) if parser.has_section("console_scripts") else []
    return WheelInfo(tuple(message.get_all("Requires-Dist") or ()), message.get("Requires-Python"), tuple(scripts))


def write_reproducible_zip(target: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip (a wheel) whose bytes depend only on its members: given order, fixed times and modes, stored
    uncompressed (deflate's output may differ between zlib versions, so between machines)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    temp.replace(target)
