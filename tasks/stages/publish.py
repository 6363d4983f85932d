"""Stage `publish`: upload the built sdists and wheels to `[index] url`, idempotently.

Before uploading, the index's simple API is read: a file already there with
the same sha256 is skipped, the same name with another sha256 stops the
stage before anything is uploaded (it is never overwritten). A 5xx answer or
a dropped connection is retried after re-checking the index, so a rerun after
a partial upload sends only what is missing.

Nothing is uploaded that was not verified (`verify` installed and imported
exactly these wheels) or that was built from uncommitted changes. After
uploading, the packages are installed from the index into fresh virtual
environments and their versions compared: with uv's first-index strategy the
private index comes first, so a package it holds is never taken from the
upstream index (`[index] upstream`, else PyPI), which serves only the
third-party dependencies.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from tasks.adapters import index
from tasks.adapters.console import say
from tasks.adapters.run import run
from tasks.core.errors import ForkflowError
from tasks.core.publish import Decision, LocalFile, conflict_message, decide
from tasks.core.secrets import Credentials
from tasks.core.versions import UNSHIPPABLE_FIX, unshippable
from tasks.pipeline.actions import (
    dry_run_param,
    guarded,
    is_dry_run,
    missing_section_task,
    not_after_dry_run,
    note_dry_run,
    plan_only,
)
from tasks.pipeline.checks import Check
from tasks.pipeline.credentials import index_credentials, is_local_index
from tasks.pipeline.settings import Settings, read_report, settings, write_failed_report, write_report

ATTEMPTS = 4
READ_INSTALLED = """
import hashlib, importlib.metadata as m, json, sys
found = {}
for name in sys.argv[1:]:
    dist = m.distribution(name)
    found[name] = [dist.version, hashlib.sha256((dist.read_text("METADATA") or "").encode()).hexdigest()]
print(json.dumps(found))
"""


def task_publish() -> dict[str, Any]:
    """Upload the built distributions to the package index."""
    current = settings()
    doc = "upload verified sdists and wheels to [index] url (skip identical, refuse different or uncommitted), then install-check them"
    if current.config.index is None:
        return missing_section_task("publish", "index", doc)
    deps = ["wheel", "verify"]
    if is_local_index(current):
        deps.append("services:index")
    return {
        "doc": doc,
        "actions": [guarded(publish_action)],
        "task_dep": deps,
        "file_dep": [str(current.reports_dir / "wheel.json")],
        "targets": [str(current.reports_dir / "publish.json")],
        "uptodate": [Check("the index URL is the one of the last upload", config_changed(current.config.index.url)),
                     Check("the last run was not a dry run", not_after_dry_run("publish"))],
        "params": [dry_run_param()],
        "verbosity": 2,
    }


def local_files(current: Settings) -> list[LocalFile]:
    report = read_report("wheel", current)
    if not report:
        raise ForkflowError("no wheel report: nothing has been built", fix="run `doit wheel` first")
    return [
        LocalFile(f["name"], f["path"], f["sha256"], package["name"], package["version"])
        for package in report["packages"] for f in package["files"]
    ]


def check_publishable(current: Settings, files: list[LocalFile]) -> None:
    """Refuse, before anything is uploaded, files built from uncommitted changes or not verified as they are."""
    report = read_report("wheel", current) or {}
    dirty = sorted(p["name"] for p in report.get("packages", []) if p.get("dirty"))
    if dirty:
        raise ForkflowError(f"not publishing: {', '.join(dirty)} built from uncommitted changes in the checkout",
                            where=str(current.fork_path),
                            fix="commit (or discard) the changes, then `doit wheel publish`; a release is built from a commit")
    untrusted = unshippable(report.get("packages", []))
    if untrusted:
        raise ForkflowError("not publishing: these versions do not name their content:\n"
                            + "\n".join(f"  - {line}" for line in untrusted),
                            where=str(current.fork_path), fix=UNSHIPPABLE_FIX + "; then `doit publish`")
    unverified = [f.name for f in files if f.name.endswith(".whl") and not verified(current, f)]
    if unverified:
        raise ForkflowError("not publishing: these wheels did not pass verification as built:\n"
                            + "\n".join(f"  - {name}" for name in unverified),
                            fix="run `doit verify` and fix what it reports; only verified wheels are uploaded")


def verified(current: Settings, file: LocalFile) -> bool:
    from tasks.pipeline.workspace import read_result

    result = read_result(current, file.package) or {}
    wheel = result.get("wheel") or {}
    return bool(result.get("ok")) and wheel.get("name") == file.name and wheel.get("sha256") == file.sha256


def plan(url: str, files: list[LocalFile]) -> list[Decision]:
    remote: dict[str, dict[str, str | None]] = {}
    for file in files:
        if file.package not in remote:
            remote[file.package] = index.remote_files(url, file.package)
    return [decide(file, remote[file.package]) for file in files]


def publish_action(dry_run: bool) -> dict[str, str] | None:
    current = settings()
    assert current.config.index is not None
    url = current.config.index.url
    files = local_files(current)
    statuses = {f.name: "failed" for f in files}
    dry = is_dry_run(dry_run) or plan_only("publish")
    try:
        return publish_files(current, url, files, statuses, dry)
    except ForkflowError as err:
        if not dry:
            write_failed_report("publish", err, {"index": url, "files": file_entries(files, statuses)}, current)
        raise


def publish_files(current: Settings, url: str, files: list[LocalFile], statuses: dict[str, str],
                  dry_run: bool) -> dict[str, str] | None:
    """Refuse, plan, upload what is missing and install-check; `statuses` says how far it got."""
    check_publishable(current, files)
    decisions = plan(url, files)
    if any(d.action == "conflict" for d in decisions):
        raise ForkflowError(conflict_message(decisions), where=url,
                            fix="give the package a new version (new tag) and rebuild; never re-upload a version")
    note_dry_run("publish", dry_run)
    if dry_run:
        for decision in decisions:
            say(f"would {'upload' if decision.action == 'upload' else 'skip (already there)'}: {decision.file.name}")
        return None
    upload_missing(url, decisions, index_credentials(current), statuses)
    check = install_check(current, url, files)
    write_report("publish", {"index": url, "files": file_entries(files, statuses), "install_check": check,
                             "status": "ok"}, current)
    uploaded = sum(1 for s in statuses.values() if s == "uploaded")
    return {"made": f"{uploaded} uploaded, {len(files) - uploaded} already there"}


def file_entries(files: list[LocalFile], statuses: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": f.name, "sha256": f.sha256, "package": f.package, "version": f.version,
             "status": statuses[f.name]} for f in files]


def upload_missing(url: str, decisions: list[Decision], credentials: Credentials | None,
                   statuses: dict[str, str]) -> None:
    """Upload what the index lacks, recording each file's outcome in `statuses` as it happens."""
    for decision in decisions:
        if decision.action == "skip":
            statuses[decision.file.name] = "up-to-date"
    for decision in decisions:
        if decision.action == "upload":
            statuses[decision.file.name] = upload_with_retry(url, decision.file, credentials)


def upload_with_retry(url: str, file: LocalFile, credentials: Credentials | None) -> str:
    """Upload; on a transient failure, re-check the index (the file may have landed) and retry."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            index.upload(url, Path(file.path), credentials)
            say(f"uploaded {file.name}")
            return "uploaded"
        except index.TransientIndexError as err:
            say(f"{err.what}; re-checking the index (attempt {attempt} of {ATTEMPTS})")
            time.sleep(min(2 ** attempt * 0.25, 4))
            landed = decide(file, index.remote_files(url, file.package))
            if landed.action == "skip":
                say(f"{file.name} is on the index after all")
                return "uploaded"
            if landed.action == "conflict":
                raise ForkflowError(conflict_message([landed]), where=url) from None
            if attempt == ATTEMPTS:
                raise
        except index.AuthError:
            raise
        except index.IndexError_:
            if decide(file, index.remote_files(url, file.package)).action != "skip":
                raise
            say(f"{file.name} was refused as already there: it landed in an earlier attempt with the same content")
            return "uploaded"
    raise AssertionError("unreachable")


def install_check(current: Settings, url: str, files: list[LocalFile]) -> list[dict[str, Any]]:
    """Install core + one integration, and the client separately, from the index: each must be the
    version built and carry the built wheel's METADATA (not a same-named release from upstream)."""
    kinds = kinds_by_package()
    versions = {f.package: f.version for f in files}
    built = {f.package: built_metadata_sha(Path(f.path)) for f in files if f.name.endswith(".whl")}
    results = []
    for group in install_groups(versions, kinds):
        found = install_and_read_versions(current, url, {name: versions[name] for name in group})
        for name in group:
            version, metadata_sha = found.get(name, (None, None))
            ok = version == versions[name] and metadata_sha == built.get(name)
            results.append({"package": name, "expected": versions[name], "installed": version,
                            "same_metadata": metadata_sha == built.get(name), "ok": ok})
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise ForkflowError(
            "install check failed: " + ", ".join(
                f"{r['package']} expected {r['expected']} got {r['installed']}"
                + ("" if r["same_metadata"] else " (not the wheel built here: its METADATA differs)") for r in bad),
            where=url, fix="inspect the index and [index] upstream: the installed files are not the ones built")
    say("install check: " + ", ".join(f"{r['package']}=={r['installed']}" for r in results))
    return results


def kinds_by_package() -> dict[str, str]:
    report = read_report("wheel", settings()) or {}
    return {p["name"]: p.get("kind", "") for p in report.get("packages", [])}


def install_groups(versions: dict[str, str], kinds: dict[str, str]) -> list[list[str]]:
    """Core with one integration in one environment; the client (same import package as core) alone."""
    core = [n for n in versions if kinds.get(n) == "core"]
    integrations = [n for n in versions if kinds.get(n) == "integration"]
    client = [n for n in versions if kinds.get(n) == "client"]
    groups = []
    if core:
        groups.append(core + integrations[:1])
    if client:
        groups.append(client)
    return groups


def built_metadata_sha(wheel: Path) -> str:
    import hashlib

    from tasks.adapters.build import metadata_text

    return hashlib.sha256(metadata_text(wheel).encode()).hexdigest()


def install_and_read_versions(current: Settings, url: str, pins: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Install `name==version` pins from the private index first (upstream only for what it lacks)."""
    import json

    from tasks.adapters import venv
    from tasks.pipeline.workspace import constraint_args

    assert current.config.index is not None
    upstream = current.config.index.upstream
    with tempfile.TemporaryDirectory(prefix="forkflow-install-") as folder:
        python = venv.make_venv(Path(sys.executable), Path(folder) / "venv")
        venv.install(python, [f"{name}=={version}" for name, version in pins.items()],
                     extra_args=index_args(url, upstream) + constraint_args(current))
        out = run([str(python), "-I", "-c", READ_INSTALLED, *pins], fix="the installed packages cannot be read").stdout
    loaded: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return {name: (values[0], values[1]) for name, values in loaded.items()}


def index_args(url: str, upstream: str | None) -> list[str]:
    """uv's first-index order: the private index, then upstream (or uv's default) for the rest."""
    args = ["--no-cache", "--index", url.rstrip("/") + "/simple/", "--index-strategy", "first-index"]
    return args + (["--default-index", upstream] if upstream else [])
