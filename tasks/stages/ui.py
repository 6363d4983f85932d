"""Stage `ui`: the core package's dashboard bundles, built with npm only when their files change.

`ui:<name>` copies the bundle folder's git-tracked files, at the commit the core's wheel is built
from, into `<state>/ui/<name>/work/` (never the user's checkout), runs `npm ci` there (skipped
while package-lock.json is unchanged and node_modules exists) and `npm run build`, and keeps the
built `dist/` in `<state>/ui/<name>/dist/`. The core's `wheel:` task depends on it and copies the
bundle into its build tree. Up to date while the bundle's files (git blob ids) are unchanged.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

from doit import create_after

from tasks.adapters import npm
from tasks.adapters.console import say, warn
from tasks.adapters.git import Git, export_folder, working_tree_commit
from tasks.core.errors import ForkflowError
from tasks.core.ui import BUILD, INSTALL, INSTALL_FIX, Bundle, is_dirty, lock_id, node_mismatch
from tasks.pipeline.actions import creation_errors_as_task, guarded
from tasks.pipeline.checks import Check, Cleaner, Stale
from tasks.pipeline.settings import Settings, read_report, settings, write_json
from tasks.pipeline.ui import built_dist, core_bundles, current_bundle_hash, read_ui_stamp, ui_dir, ui_stamp_file
from tasks.pipeline.workspace import checkout_entries, checkout_path, packages_if_cloned

DOC = "the core's dashboard bundles (npm ci + npm run build), rebuilt only when their files change"


@create_after(executed="checkout")
@creation_errors_as_task
def task_ui() -> Any:
    """Build the core package's UI bundles with npm."""
    current = settings()
    yield {"basename": "ui", "name": None, "doc": DOC, "uptodate": [True]}
    if current.config.fork is None:
        return
    core = next((p for p in packages_if_cloned(current) if p.kind == "core"), None)
    for bundle in core_bundles(current, core) if core else []:
        yield {
            "name": bundle.name,
            "doc": f"npm ci + npm run build in {bundle.source}, for {bundle.target} in {core.name if core else ''}'s wheel",
            "actions": [guarded(functools.partial(build_action, bundle))],
            "task_dep": ["version"],
            "uptodate": [Check(f"ui/{bundle.name}/dist was built from the current files of {bundle.source}", is_built, bundle)],
            "targets": [str(ui_stamp_file(current, bundle.name))],
            "clean": [Cleaner(f"remove ui/{bundle.name}", clean_bundle, bundle.name)],
            "verbosity": 2,
        }


def is_built(bundle: Bundle, *_: Any) -> bool | Stale:
    current = settings()
    stamp = read_ui_stamp(current, bundle.name)
    if not stamp:
        return Stale("first build (no build.json yet)")
    if not (built_dist(current, bundle.name) / "index.html").is_file():
        return Stale(f"ui/{bundle.name}/dist/index.html missing")
    if stamp.get("input_hash") != current_bundle_hash(current, bundle):
        return Stale(f"files of {bundle.source} changed")
    return True


def source_commit(current: Settings, bundle: Bundle) -> str:
    """The commit the core's wheel is built from: the working tree's when the bundle has uncommitted edits,
    else the commit the core's version names (its files there are HEAD's), else HEAD."""
    root = checkout_path(current)
    if is_dirty(bundle, checkout_entries(root)):
        return working_tree_commit(root)
    report = read_report("version", current) or {}
    core = next((e for e in report.get("packages", []) if e.get("kind") == "core"), None)
    return str(core.get("build_commit") if core and core.get("build_commit") else Git(root).read("rev-parse", "HEAD"))


def build_action(bundle: Bundle) -> dict[str, str]:
    npm.require_tools(f"ui:{bundle.name}", INSTALL_FIX)
    current = settings()
    started = time.monotonic()
    commit = source_commit(current, bundle)
    work = ui_dir(current, bundle.name) / "work"
    refresh_copy(current, bundle, commit, work)
    check_node(bundle, work)
    install(current, bundle, work)
    say(f"ui:{bundle.name}: {' '.join(BUILD)}")
    npm.npm(work, BUILD, fix=f"read the build output above; run `npm ci && npm run build` in {bundle.source} to see why")
    dist = work / "dist"
    if not (dist / "index.html").is_file():
        raise ForkflowError(f"ui:{bundle.name}: `npm run build` made no dist/index.html", where=bundle.source,
                            fix="make the bundle's build script write dist/ (as Prefect's vite build does)")
    target = built_dist(current, bundle.name)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(dist, target)
    files = sum(1 for f in target.rglob("*") if f.is_file())
    stamp = read_ui_stamp(current, bundle.name) or {}
    stamp.update(name=bundle.name, source=bundle.source, target=bundle.target, commit=commit, files=files,
                 input_hash=current_bundle_hash(current, bundle), node=npm.node_version(), built_at=time.time())
    write_json(ui_stamp_file(current, bundle.name), stamp)
    say(f"ui:{bundle.name}: built {files} files from {bundle.source} at {commit[:12]} in {time.monotonic() - started:.1f}s")
    return {"made": f"ui/{bundle.name}/dist ({files} files)"}


def refresh_copy(current: Settings, bundle: Bundle, commit: str, work: Path) -> None:
    """The bundle's tracked files at `commit` in `work`; node_modules from earlier runs stays."""
    work.mkdir(parents=True, exist_ok=True)
    for entry in work.iterdir():
        if entry.name == "node_modules":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    export_folder(checkout_path(current), commit, bundle.source, work)


def check_node(bundle: Bundle, work: Path) -> None:
    """Warn when the bundle's .nvmrc asks for another major version of node than the one found."""
    nvmrc = work / ".nvmrc"
    if nvmrc.is_file():
        problem = node_mismatch(nvmrc.read_text(encoding="utf-8"), npm.node_version())
        if problem:
            warn(f"ui:{bundle.name}: {problem}")


def install(current: Settings, bundle: Bundle, work: Path) -> None:
    """`npm ci`, unless the lockfile and node are those of the node_modules already there."""
    lock = lock_id(bundle, checkout_entries(checkout_path(current)))
    if lock is None:
        raise ForkflowError(f"ui:{bundle.name}: {bundle.source} has no package-lock.json in git", where=bundle.source,
                            fix="commit the lockfile (`npm install --package-lock-only`): `npm ci` installs from it")
    stamp = read_ui_stamp(current, bundle.name) or {}
    installed = {"lock": lock, "node": npm.node_version()}
    if (work / "node_modules").is_dir() and stamp.get("installed") == installed:
        say(f"ui:{bundle.name}: npm ci skipped: package-lock.json unchanged, reusing node_modules")
        return
    say(f"ui:{bundle.name}: {' '.join(INSTALL)}")
    npm.npm(work, INSTALL, fix=f"read the npm output above; check that {bundle.source}/package-lock.json matches package.json")
    write_json(ui_stamp_file(current, bundle.name), {**stamp, "installed": installed, "input_hash": None})


def clean_bundle(name: str) -> None:
    shutil.rmtree(ui_dir(settings(), name), ignore_errors=True)
