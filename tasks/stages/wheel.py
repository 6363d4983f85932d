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
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doit import create_after

from tasks.adapters.build import (
    build_dists,
    dist_metadata,
    requirements_met,
    sha256,
    tool_versions,
    twine_check,
    write_wheel_sbom,
)
from tasks.adapters.console import say
from tasks.adapters.git import Git, build_tree, hide_local_changes, tracked_files, working_tree_commit
from tasks.adapters.run import run
from tasks.core.errors import ForkflowError
from tasks.core.packages import (
    Package,
    canonical,
    check_dist_names,
    input_changes,
    input_hash,
    input_listing,
    missing_modules,
    owns,
    staged_files,
)
from tasks.core.versions import (
    UNSHIPPABLE_FIX,
    pretend_version_variable,
    tag_for,
    tag_pattern,
    unshippable,
    with_static_version,
)
from tasks.pipeline.actions import creation_errors_as_task, guarded, missing_section_task
from tasks.pipeline.checks import Check, Cleaner, Stale, report_intact
from tasks.pipeline.runmode import run_mode
from tasks.pipeline.settings import Settings, look_at_report, read_json, settings, write_json, write_report
from tasks.pipeline.ui import bundle_env, bundle_extras, check_wheel_bundles, core_bundles, place_bundles
from tasks.pipeline.workspace import (
    STAMP,
    checkout_entries,
    checkout_path,
    dist_dir,
    find_packages,
    packages_if_cloned,
    read_pyproject,
    read_stamp,
    stamp_file,
)


@create_after(executed="checkout")
@creation_errors_as_task
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
            "task_dep": ["version", *(["ui"] if core_bundles(current, package) else [])],  # the core's dashboards
            "uptodate": [Check(f"the files in dist/{package.name} were built from the current inputs", is_built, package)],
            "targets": [str(stamp_file(current, package.name))],
            "clean": [Cleaner(f"remove dist/{package.name}", clean_package, package.name)],
            "verbosity": 2,
        }
    yield {
        "name": "report",
        "doc": "gather every package's build into reports/wheel.json",
        "actions": [guarded(report_action)],
        "file_dep": [str(stamp_file(current, p.name)) for p in packages],
        "targets": [str(current.reports_dir / "wheel.json")],
        "uptodate": [report_intact("wheel", "packages")],
        "verbosity": 2,
    }


def inputs_file(current: Settings, name: str) -> Path:
    """The inputs of the last build, file by file: read only to say what changed."""
    return current.state_dir / "build" / f"{name}.inputs.json"


def version_of(current: Settings, name: str) -> str:
    return str(version_facts(current, name)["version"])


def version_facts(current: Settings, name: str) -> dict[str, Any]:
    """A package's entry in version.json, with the clone's shallowness: what its build's trust rests on."""
    report = look_at_report("version", current) or {}
    for entry in report.get("packages", []):
        if entry["name"] == name:
            return {"version": entry["version"], "version_source": entry.get("source"),
                    "shallow": bool(report.get("shallow")), "build_commit": entry.get("build_commit")}
    raise ForkflowError(f"no version known for {name}", fix="run `doit version` first")


def refuse_unshippable_in_ci(current: Settings, name: str) -> dict[str, Any]:
    """In CI (CI=true) a version that does not name its content stops the build: it would be shipped."""
    facts = version_facts(current, name)
    problems = unshippable([{"name": name, **facts}])
    if problems and os.environ.get("CI") == "true":
        raise ForkflowError(f"not building in CI: {problems[0]}", where=str(checkout_path(current)),
                            fix=UNSHIPPABLE_FIX)
    return facts


def repo_entries(current: Settings) -> dict[str, str]:
    """The checkout's file listing, computed once per process while the index is unchanged."""
    return checkout_entries(checkout_path(current))


def current_hash(current: Settings, package: Package) -> str:
    return input_hash(package, repo_entries(current), hash_extras(current, package))


def hash_extras(current: Settings, package: Package) -> dict[str, Any]:
    facts = version_facts(current, package.name)
    return {"version": facts["version"], "version_source": f"{facts['version_source']}{'/shallow' * facts['shallow']}",
            "build_commit": facts["build_commit"] or "HEAD", "remove": ",".join(package.client_remove),
            "keep": ",".join(package.client_keep), "recipe": recipe_config(current),
            **bundle_extras(current, core_bundles(current, package)), **{f"tool:{k}": v for k, v in tool_versions().items()}}


def current_listing(current: Settings, package: Package) -> dict[str, Any]:
    return input_listing(package, repo_entries(current), hash_extras(current, package))


def recipe_config(current: Settings) -> str:
    config = current.config.packages
    return f"{config.client_recipe}:{config.client_script}"


def is_built(package: Package, *_: Any) -> bool | Stale:
    """Up to date when the stamp's input hash matches and the files it lists are there."""
    current = settings()
    stamp = read_stamp(current, package.name)
    if not stamp:
        return Stale("first build (no build.json yet)")
    missing = [Path(f["path"]).name for f in stamp["files"] if not Path(f["path"]).exists()]
    if missing:
        return Stale(f"{', '.join(missing)} missing from dist")
    if stamp["input_hash"] == current_hash(current, package):
        return True
    before = read_json(inputs_file(current, package.name))
    return Stale(input_changes(before, current_listing(current, package)) if before else "inputs changed")


def build_action(package: Package) -> dict[str, str]:
    current = settings()
    name = package.name
    facts = refuse_unshippable_in_ci(current, name)
    version = str(facts["version"])
    started = time.monotonic()
    work = current.state_dir / "build" / name
    source = prepare_source(current, package, version, work, facts.get("build_commit"))
    bundles = core_bundles(current, package)
    place_bundles(current, bundles, source.folder)
    epoch = commit_time(current, source.commit)
    set_mtimes(source.folder, int(epoch))
    env = {**version_override(package, version), **bundle_env(bundles), "SOURCE_DATE_EPOCH": epoch}
    isolated = not requirements_met(read_pyproject(source.folder / "pyproject.toml").get("build-system", {}).get("requires", []))
    edits = ", from uncommitted changes" if source.dirty else ""
    say(f"{name}: building {version} ({package.backend}{', isolated' if isolated else ''}{edits})")
    files = build_dists(source.folder, work / "out", env, isolated)
    for file in files:
        normalize_sdist(file, int(epoch))
    verify(files, package.name, version)
    check_contents(files, source.folder, bundles)
    stamp = install_files(current, package, facts, files, source)
    shutil.rmtree(work, ignore_errors=True)
    say(f"{name}: built {', '.join(f['name'] for f in stamp['files'])} in {time.monotonic() - started:.1f}s")
    return {"made": ", ".join(f["name"] for f in stamp["files"])}


@dataclass(frozen=True)
class Source:
    """Where a package is built from: a git work tree of `commit`, trimmed for the client."""

    folder: Path
    commit: str
    dirty: bool


def prepare_source(current: Settings, package: Package, version: str, work: Path, named: str | None = None) -> Source:
    """A throwaway git checkout of the commit to build, with the version's tag on it.

    Packages with uncommitted edits are built from a commit of the working tree (the user's
    branch and index stay as they are); the others from the commit their version names (`named`:
    their files there are HEAD's, and the build, its commit time and build info are the same in any
    clone), else HEAD.
    """
    root = checkout_path(current)
    dirty = has_local_edits(package, repo_entries(current))
    commit = working_tree_commit(root) if dirty else named or Git(root).read("rev-parse", "HEAD")
    tree = work / "tree"
    try:
        build_tree(root, commit, tree, tag=build_tag(current, package, version), sparse=sparse_folders(package))
        folder = make_client_tree(current, package, tree, work / "client") if package.kind == "client" else tree / package.path
    except OSError as err:
        raise ForkflowError(f"{package.name}: cannot lay out its build tree: {err}", where=str(work),
                            fix="check free disk space and permissions under the state folder") from None
    if not (folder / "pyproject.toml").is_file():
        raise ForkflowError(f"{package.name}: no pyproject.toml in its build tree at {folder}", where=package.path,
                            fix="check [packages] (for the client: the recipe must leave a pyproject.toml at the root)")
    if package.backend == "static" and version != package.static_version:
        mark_static_version(package, folder / "pyproject.toml", version)
    return Source(folder.resolve(), commit, dirty)


def mark_static_version(package: Package, pyproject: Path, version: str) -> None:
    """A static version changed since it was set gets the fork's mark in the build tree's pyproject.toml only."""
    try:
        pyproject.write_text(with_static_version(pyproject.read_text(encoding="utf-8"), version), encoding="utf-8")
    except ValueError as err:
        raise ForkflowError(f"{package.name}: cannot set version {version} in {pyproject.name}: {err}",
                            where=f"{package.path}/pyproject.toml",
                            fix='write the version as `version = "X.Y.Z"` in [project], or set [versions] scheme = "tag"') from None


def has_local_edits(package: Package, entries: dict[str, str]) -> bool:
    """True when one of the package's files differs from HEAD (edited, deleted or new)."""
    return any(not is_blob_id(entry) and owns(package, file) for file, entry in entries.items())


def is_blob_id(entry: str) -> bool:
    return not (entry == "deleted" or entry.startswith("sha256:"))


def build_tag(current: Settings, package: Package, version: str) -> str | None:
    """The tag a tag-based backend must find on the build commit to derive exactly `version`."""
    if not package.tag_based:
        return None
    rules = current.config.versions
    return tag_for(*tag_pattern(package.kind, package.name, rules.core_tag, rules.package_tag), version)


def sparse_folders(package: Package) -> list[str] | None:
    """Integrations and the flows project need only their own folder; core and client the whole tree."""
    if package.kind in ("core", "client") or package.path in (".", ""):
        return None
    return [package.path]


def make_client_tree(current: Settings, package: Package, tree: Path, target: Path) -> Path:
    """The client's build folder: the fork's own recipe script run over the tree, or the configured paths."""
    config = current.config.packages
    script = tree / config.client_script
    if config.client_recipe == "script" and not script.is_file():
        raise ForkflowError(f"{package.name}: the client recipe {config.client_script} is not in the fork",
                            where="[packages] client_script",
                            fix="point client_script at the fork's recipe, or set client_recipe = 'paths'")
    if config.client_recipe != "paths" and script.is_file():
        folder = run_client_script(package, script, tree, target)
    else:
        folder = trim_tree(package, tree)
    hidden = hide_local_changes(folder)
    say(f"{package.name}: client tree made by {recipe_name(config.client_recipe, script)} ({len(hidden)} files removed or replaced)")
    return folder


def recipe_name(recipe: str, script: Path) -> str:
    return script.name if recipe != "paths" and script.is_file() else "[packages] client_remove/client_keep"


def run_client_script(package: Package, script: Path, tree: Path, target: Path) -> Path:
    """Run the recipe as upstream's CI does: from the tree's root, with TMPDIR naming the folder it fills."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    run(["bash", str(script)], cwd=tree, env={"TMPDIR": str(target)},
        fix=f"{script.name} failed in a copy of the fork; run it by hand there to see why")
    return target


def trim_tree(package: Package, tree: Path) -> Path:
    """The path recipe in place: delete client_remove (but not client_keep), lay the recipe folder over the root."""
    files = tracked_files(tree)
    staged = staged_files(package, files)  # destination -> origin: what the client tree holds
    kept = set(staged.values())
    for file in files:
        if owns(package, file) and file not in kept:
            (tree / file).unlink()
    for destination, origin in staged.items():
        if destination != origin:
            (tree / destination).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / origin, tree / destination)
    return tree


def commit_time(current: Settings, commit: str) -> str:
    """The build commit's time: builds of the same inputs give the same bytes."""
    return Git(checkout_path(current)).read("log", "-1", "--format=%ct", commit)


def set_mtimes(folder: Path, epoch: int) -> None:
    """Same file times on every build, so archives that record them come out the same."""
    for current_dir, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs + names:
            os.utime(Path(current_dir) / name, (epoch, epoch), follow_symlinks=False)


def normalize_sdist(file: Path, epoch: int) -> None:
    """Rewrite an sdist so its bytes depend only on its contents (setuptools stamps the current
    time on the files it generates and in the gzip header)."""
    if not file.name.endswith(".tar.gz"):
        return
    members = []
    with tarfile.open(file, "r:gz") as archive:
        for member in archive.getmembers():
            source = archive.extractfile(member) if member.isfile() else None
            members.append((member, source.read() if source is not None else None))
    temp = file.with_suffix(".normalized")
    with (temp.open("wb") as raw,
          gzip.GzipFile(filename=file.name[:-3], mode="wb", fileobj=raw, mtime=epoch) as zipped,
          tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive):
        for member, data in sorted(members, key=lambda item: item[0].name):
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    temp.replace(file)


def version_override(package: Package, version: str) -> dict[str, str]:
    """setuptools_scm and hatch-vcs also take the version from their override variable (the tag on the
    build commit gives it to versioningit)."""
    if package.backend in ("setuptools_scm", "hatch-vcs"):
        return {pretend_version_variable(package.name): version}
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


def check_contents(files: list[Path], folder: Path, bundles: list[Any]) -> None:
    """The wheel holds every git-tracked module of the packages it ships, and the core's UI bundles."""
    import zipfile

    for wheel in (f for f in files if f.suffix == ".whl"):
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        check_wheel_bundles(names, bundles, wheel.name)
        missing = missing_modules(names, tracked_files(folder))
        if missing:
            shown = "\n".join(f"  - {m}" for m in missing[:20])
            more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise ForkflowError(f"{wheel.name} lacks {len(missing)} git-tracked modules of its own packages:\n{shown}{more}",
                                where=str(folder),
                                fix="list every subpackage in the build configuration (e.g. [tool.setuptools.packages.find]), "
                                    "or make sure the backend's file finder sees the files")


def install_files(current: Settings, package: Package, facts: dict[str, Any], files: list[Path],
                  source: Source) -> dict[str, Any]:
    """Move the verified files into dist/<name>/, drop older ones, then write the stamp."""
    folder = dist_dir(current, package.name)
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for file in files:
        target = folder / file.name
        file.replace(target)
        placed.append({"name": target.name, "path": str(target), "sha256": sha256(target)})
        if target.suffix == ".whl":
            placed[-1]["sbom"] = str(write_wheel_sbom(target, placed[-1]["sha256"]))
    keep = {f["name"] for f in placed} | {Path(f["sbom"]).name for f in placed if "sbom" in f} | {STAMP}
    for old in folder.iterdir():
        if old.name not in keep:
            old.unlink()
    stamp = {"name": package.name, "kind": package.kind, **facts, "files": placed,
             "commit": source.commit, "dirty": source.dirty,
             "input_hash": current_hash(current, package), "built_at": time.time()}
    write_json(inputs_file(current, package.name), current_listing(current, package))
    write_json(stamp_file(current, package.name), stamp)
    return stamp


def built_since(stamp: dict[str, Any], started: float) -> bool:
    return bool(started) and float(stamp.get("built_at") or 0) >= started


def report_action(changed: list[str]) -> dict[str, str]:
    current = settings()
    changed_set = set(changed or [])
    started = run_mode().started  # a build by a worker of `doit -n N` (any start method) is this run's too
    entries = []
    for package in find_packages(current):
        file = stamp_file(current, package.name)
        stamp = read_stamp(current, package.name)
        if stamp is None:
            continue
        entries.append({"name": stamp["name"], "kind": stamp["kind"], "version": stamp["version"],
                        "files": stamp["files"], "commit": stamp.get("commit"), "dirty": stamp.get("dirty", False),
                        "version_source": stamp.get("version_source"), "shallow": stamp.get("shallow", False),
                        "status": "built" if str(file) in changed_set or built_since(stamp, started) else "up-to-date"})
    write_report("wheel", {"packages": entries}, current)
    built = sum(1 for e in entries if e["status"] == "built")
    return {"made": f"wheel.json ({built} built, {len(entries) - built} up-to-date)"}


def clean_package(name: str) -> None:
    shutil.rmtree(dist_dir(settings(), name), ignore_errors=True)
