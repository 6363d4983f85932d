"""Stage `wheel`: sdist + wheel per package, rebuilt only when its own inputs changed.

Each package is built from a copy of its files in `<state>/build/<name>/src`
(never in the user's checkout), with the version the `version` stage chose
forced on its build backend: setuptools_scm and hatch-vcs through
SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>, versioningit through the PKG-INFO
it reads when the source is not a git checkout; static versions are left
alone. The client is the core tree trimmed by the recipe. Finished files are
verified (names, metadata, `twine check`) and moved to `<state>/dist/<name>/`.

A package's inputs: its files (blob ids from git, working-copy hashes for
uncommitted edits), its version, the client recipe, and the build tool
versions. They are hashed into a stamp; the subtask is up to date while the
hash and the files it lists are unchanged.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

from doit import create_after

from tasks.actions import guarded, missing_section_task
from tasks.adapters.build import build_dists, dist_metadata, requirements_met, sha256, tool_versions, twine_check
from tasks.adapters.git import Git, file_entries
from tasks.context import Settings, read_report, settings, write_report
from tasks.core.errors import ForkflowError
from tasks.core.packages import Package, canonical, check_dist_names, input_hash, staged_files
from tasks.core.versions import pretend_version_variable
from tasks.output import say
from tasks.version import checkout_path, find_packages, read_pyproject

STAMP = "build.json"


@create_after(executed="checkout")
def task_wheel() -> Any:
    """Build sdist + wheel for every package whose inputs changed."""
    current = settings()
    doc = "sdist + wheel per package (core, client, integrations, flows), only for packages whose inputs changed"
    if current.config.fork is None:
        yield missing_section_task("wheel", "fork", doc)
        return
    yield {"basename": "wheel", "name": None, "doc": doc, "uptodate": [True]}
    packages = packages_if_cloned(current)
    for package in packages:
        yield {
            "name": package.name,
            "doc": f"build {package.name} ({package.kind}, {package.backend}) into {dist_dir(current, package.name)}",
            "actions": [guarded(functools.partial(build_action, package))],
            "task_dep": ["version"],
            "uptodate": [functools.partial(is_built, package)],
            "targets": [str(stamp_file(current, package.name))],
            "clean": [functools.partial(clean_package, package.name)],
            "verbosity": 2,
        }
    yield {
        "name": "report",
        "doc": "gather every package's build into reports/wheel.json",
        "actions": [guarded(report_action)],
        "file_dep": [str(stamp_file(current, p.name)) for p in packages],
        "targets": [str(current.reports_dir / "wheel.json")],
        "verbosity": 2,
    }


def packages_if_cloned(current: Settings) -> list[Package]:
    """Packages in the checkout; none yet when it is not cloned (`doit list` on a fresh clone)."""
    if current.fork_path is None or not (current.fork_path / ".git").exists():
        return []
    return find_packages(current)


def dist_dir(current: Settings, name: str) -> Path:
    return current.state_dir / "dist" / name


def stamp_file(current: Settings, name: str) -> Path:
    return dist_dir(current, name) / STAMP


def version_of(current: Settings, name: str) -> str:
    report = read_report("version", current) or {}
    for entry in report.get("packages", []):
        if entry["name"] == name:
            return str(entry["version"])
    raise ForkflowError(f"no version known for {name}", fix="run `doit version` first")


@functools.cache
def cached_entries(repo: Path, index_mtime: int) -> dict[str, str]:
    return file_entries(repo)


def repo_entries(current: Settings) -> dict[str, str]:
    """The checkout's file listing, computed once per process while the index is unchanged."""
    root = checkout_path(current)
    index = root / ".git" / "index"
    return cached_entries(root, index.stat().st_mtime_ns if index.exists() else 0)


def current_hash(current: Settings, package: Package) -> str:
    extra = {"version": version_of(current, package.name), "remove": ",".join(package.client_remove),
             **{f"tool:{k}": v for k, v in tool_versions().items()}}
    return input_hash(package, repo_entries(current), extra)


def is_built(package: Package, *_: Any) -> bool:
    """Up to date when the stamp's input hash matches and the files it lists are there."""
    current = settings()
    stamp = read_stamp(current, package.name)
    if not stamp:
        return False
    if not all(Path(f["path"]).exists() for f in stamp["files"]):
        return False
    return bool(stamp["input_hash"] == current_hash(current, package))


def read_stamp(current: Settings, name: str) -> dict[str, Any] | None:
    file = stamp_file(current, name)
    if not file.exists():
        return None
    loaded: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return loaded


def build_action(package: Package) -> dict[str, str]:
    current = settings()
    name = package.name
    version = version_of(current, name)
    started = time.monotonic()
    work = current.state_dir / "build" / name
    source = stage_source(current, package, work / "src")
    epoch = commit_time(current)
    set_mtimes(source, int(epoch))
    env = {**version_override(package, version, source), "SOURCE_DATE_EPOCH": epoch}
    isolated = not requirements_met(read_pyproject(source / "pyproject.toml").get("build-system", {}).get("requires", []))
    say(f"{name}: building {version} ({package.backend}{', isolated' if isolated else ''})")
    files = build_dists(source, work / "out", env, isolated)
    for file in files:
        normalize_sdist(file, int(epoch))
    verify(files, package.name, version)
    stamp = install_files(current, package, version, files)
    shutil.rmtree(work, ignore_errors=True)
    say(f"{name}: built {', '.join(f['name'] for f in stamp['files'])} in {time.monotonic() - started:.1f}s")
    return {"made": ", ".join(f["name"] for f in stamp["files"])}


def stage_source(current: Settings, package: Package, target: Path) -> Path:
    """Copy the package's input files (working-copy content) into a clean build folder."""
    root = checkout_path(current)
    shutil.rmtree(target, ignore_errors=True)
    entries = repo_entries(current)
    for destination, origin in staged_files(package, entries).items():
        if entries[origin] == "deleted":
            continue
        out = target / destination
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / origin, out)
    return target


def commit_time(current: Settings) -> str:
    """The checkout's HEAD commit time: builds of the same inputs give the same bytes."""
    return Git(checkout_path(current)).read("log", "-1", "--format=%ct")


def set_mtimes(folder: Path, epoch: int) -> None:
    """Same file times on every build, so archives that record them come out the same."""
    for path in folder.rglob("*"):
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def normalize_sdist(file: Path, epoch: int) -> None:
    """Rewrite an sdist so its bytes depend only on its contents (setuptools stamps the current
    time on the files it generates and in the gzip header)."""
    if not file.name.endswith(".tar.gz"):
        return
    members = []
    with tarfile.open(file, "r:gz") as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            members.append((member, data))
    temp = file.with_suffix(".normalized")
    with temp.open("wb") as raw, gzip.GzipFile(filename=file.name[:-3], mode="wb", fileobj=raw, mtime=epoch) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for member, data in sorted(members, key=lambda item: item[0].name):
                member.mtime = min(int(member.mtime), epoch)
                member.uid = member.gid = 0
                member.uname = member.gname = ""
                member.pax_headers = {}
                archive.addfile(member, io.BytesIO(data) if data is not None else None)
    temp.replace(file)


def version_override(package: Package, version: str, source: Path) -> dict[str, str]:
    """Make the backend produce exactly `version` instead of its own dirty/distance version."""
    if package.backend in ("setuptools_scm", "hatch-vcs"):
        return {pretend_version_variable(package.name): version}
    if package.backend == "versioningit":
        (source / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {package.name}\nVersion: {version}\n",
                                         encoding="utf-8")
    return {}


def verify(files: list[Path], name: str, version: str) -> None:
    """Names and metadata carry the expected name and version; `twine check` passes."""
    problems = check_dist_names([f.name for f in files], name, version)
    for file in files:
        found_name, found_version = dist_metadata(file)
        if canonical(found_name) != canonical(name) or found_version != version:
            problems.append(f"{file.name}: metadata says {found_name} {found_version}, expected {name} {version}")
    if problems:
        raise ForkflowError(f"{name}: built files are wrong:\n" + "\n".join(f"  - {p}" for p in problems),
                            fix="check the package's version configuration (see `doit version --print`)")
    twine_check(files)


def install_files(current: Settings, package: Package, version: str, files: list[Path]) -> dict[str, Any]:
    """Move the verified files into dist/<name>/, drop older ones, then write the stamp."""
    folder = dist_dir(current, package.name)
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for file in files:
        target = folder / file.name
        os.replace(file, target)
        placed.append({"name": target.name, "path": str(target), "sha256": sha256(target)})
    keep = {f["name"] for f in placed} | {STAMP}
    for old in folder.iterdir():
        if old.name not in keep:
            old.unlink()
    stamp = {"name": package.name, "kind": package.kind, "version": version, "files": placed,
             "input_hash": current_hash(current, package), "built_at": time.time()}
    temp = stamp_file(current, package.name).with_suffix(".tmp")
    temp.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    temp.replace(stamp_file(current, package.name))
    return stamp


def report_action(changed: list[str]) -> dict[str, str]:
    current = settings()
    changed_set = set(changed or [])
    entries = []
    for package in find_packages(current):
        file = stamp_file(current, package.name)
        stamp = read_stamp(current, package.name)
        if stamp is None:
            continue
        entries.append({"name": stamp["name"], "kind": stamp["kind"], "version": stamp["version"],
                        "files": stamp["files"], "status": "built" if str(file) in changed_set else "up-to-date"})
    write_report("wheel", {"packages": entries}, current)
    built = sum(1 for e in entries if e["status"] == "built")
    return {"made": f"wheel.json ({built} built, {len(entries) - built} up-to-date)"}


def clean_package(name: str) -> None:
    shutil.rmtree(dist_dir(settings(), name), ignore_errors=True)
