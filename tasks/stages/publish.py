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

The pins wheel (`<project>-pins`, stage `pins`) is uploaded beside the core's
files, and the install check runs the command the docs give users, in a fresh
environment with none of this machine's state (no constraints files, no local
wheels, no installer config or cache): `uv pip install --index <url>/simple/
"<project>-pins==V" "<core>==V" ...`. It must get the built files, exactly the
pinned versions, import the core and run its version command.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from tasks.adapters import index
from tasks.adapters.build import metadata_text, wheel_info
from tasks.adapters.console import say
from tasks.adapters.run import run
from tasks.core import smoke
from tasks.core.errors import ForkflowError
from tasks.core.publish import Decision, LocalFile, conflict_message, decide
from tasks.core.secrets import Credentials
from tasks.core.text import first_few
from tasks.core.versions import UNSHIPPABLE_FIX, unshippable
from tasks.pipeline import prefetch
from tasks.pipeline.actions import (
    dry_run_param,
    guarded,
    is_dry_run,
    missing_section_task,
    not_after_dry_run,
    note_dry_run,
    plan_only,
)
from tasks.pipeline.checks import Check, Stale, report_intact
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
    deps = ["wheel", "verify", "pins"]
    if is_local_index(current):
        deps.append("services:index")
    return {
        "doc": doc,
        "actions": [guarded(publish_action)],
        "task_dep": deps,
        "file_dep": [str(current.reports_dir / "wheel.json"), str(current.reports_dir / "pins.json")],
        "targets": [str(current.reports_dir / "publish.json")],
        "uptodate": [Check("the index URL is the one of the last upload", config_changed(current.config.index.url)),
                     Check("the last run was not a dry run", not_after_dry_run("publish")), report_intact("publish", "files"),
                     Check("the index still lists every file the last run uploaded or found there", index_holds_files)],
        "params": [dry_run_param()],
        "verbosity": 2,
    }


PUBLISHED = ("uploaded", "up-to-date")


def index_holds_files(task: Any = None, values: Any = None) -> bool | Stale:
    """The files publish.json says are on the index are still listed there (one question per index, sent as the
    run starts); a file deleted from the index makes publish run again, which uploads it again."""
    data = read_report("publish", settings()) or {}
    url, names = published(data)
    if not url or not names:
        return True  # nothing on the index to look for: the other checks decide
    try:
        listed = prefetch.answer(index_key(url), partial(index.listed_files, url, projects_of(data)))
    except ForkflowError as err:
        return Stale(f"cannot check the index: {err.what.splitlines()[0]}")
    missing = [name for name in names if name not in listed]
    if missing:
        return Stale(f"{len(missing)} file(s) publish.json lists are no longer on the index ({first_few(missing)})")
    return True


def ask_index_early(current: Settings) -> None:
    """Send the index's question of `index_holds_files` as the run starts (see tasks.pipeline.prefetch)."""
    data = read_report("publish", current) or {}
    url, names = published(data)
    if url and names:
        prefetch.send(index_key(url), partial(index.listed_files, url, projects_of(data)))


def published(data: dict[str, Any]) -> tuple[str, list[str]]:
    """The index publish.json names, and the files it says are there."""
    files = data.get("files")
    files = files if isinstance(files, list) else []
    names = [str(f["name"]) for f in files if isinstance(f, dict) and f.get("status") in PUBLISHED and f.get("name")]
    return str(data.get("index") or ""), names


def projects_of(data: dict[str, Any]) -> list[str]:
    return sorted({str(f["package"]) for f in data.get("files", []) if isinstance(f, dict) and f.get("package")})


def index_key(url: str) -> str:
    return f"index-files:{url}"


def local_files(current: Settings) -> list[LocalFile]:
    report = read_report("wheel", current)
    if not report:
        raise ForkflowError("no wheel report: nothing has been built", fix="run `doit wheel` first")
    built = [LocalFile(f["name"], f["path"], f["sha256"], package["name"], package["version"])
             for package in report["packages"] for f in package["files"]]
    pins = read_report("pins", current) or {}
    return built + [LocalFile(f["name"], f["path"], f["sha256"], pins["name"], pins["version"])
                    for f in pins.get("files", [])]


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
    check_pins(current, files)
    pins = (read_report("pins", current) or {}).get("name")
    unverified = [f.name for f in files if f.name.endswith(".whl") and f.package != pins and not verified(current, f)]
    if unverified:
        raise ForkflowError("not publishing: these wheels did not pass verification as built:\n"
                            + "\n".join(f"  - {name}" for name in unverified),
                            fix="run `doit verify` and fix what it reports; only verified wheels are uploaded")


def check_pins(current: Settings, files: list[LocalFile]) -> None:
    """The pins wheel must hold what the core's verification of exactly these wheels installed."""
    from tasks.pipeline.release_pins import desired_pins  # the pins' rules (packaging): on use

    wanted = desired_pins(current)
    report = read_report("pins", current) or {}
    if wanted is None:
        return
    release = wanted[0]
    current_file = any(f.name == release.filename and f.package == release.name for f in files)
    if not current_file or tuple(report.get("requires") or ()) != release.requires:
        raise ForkflowError(f"not publishing: the pins wheel is not the one of {release.core} {release.version}'s "
                            "verification", fix="run `doit pins publish` (publish runs pins first unless told not to)")


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
    pins = (read_report("pins", current) or {}).get("name")
    conflicts = [d for d in decisions if d.action == "conflict"]
    if conflicts and all(d.file.package == pins for d in conflicts):
        refuse_changed_pins(url, conflicts)
    if conflicts:
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


def refuse_changed_pins(url: str, conflicts: list[Decision]) -> None:
    """Pins that changed while the core's version did not: say which pins, and the two ways on."""
    if not conflicts:
        return
    from tasks.core.release_pins import changed_pins, requires_from_metadata

    file = conflicts[0].file
    published = index.download(url, file.package, file.name)
    changed = changed_pins(requires_from_metadata(metadata_of(published)) if published else (),
                           requires_from_metadata(metadata_text(Path(file.path))))
    raise ForkflowError(
        f"not publishing: {file.package} {file.version} is on the index with other pins than this verification "
        f"installed; the core's version is unchanged, and two files with other content never share a version:\n"
        + "\n".join(f"  {line}" for line in changed or ["(the index's file could not be read)"]),
        where=url,
        fix=("keep the released pins: put the `-` versions above in [packages] constraints (verification then "
             "installs them again), or ship the new ones with a new core version (commit a change to the core), "
             "then `doit publish`"))


def metadata_of(wheel: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode("utf-8")


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
    """Install core + pins + one integration, and the client separately, from the index with the documented
    command: each must be the version built and carry the built wheel's METADATA (not a same-named release
    from upstream), the pinned versions must be the installed ones, the core must import and run its
    version command."""
    kinds = kinds_by_package()
    versions = {f.package: f.version for f in files}
    built = {f.package: built_metadata_sha(Path(f.path)) for f in files if f.name.endswith(".whl")}
    from tasks.pipeline.release_pins import checking_python

    pins = read_report("pins", current) or {}
    python = checking_python(current, pins)  # a Python the pins were verified on: every pin is checked
    results = []
    for group in install_groups(versions, kinds, pins.get("name")):
        command = documented_command(current, url, [f"{name}=={versions[name]}" for name in group])
        core = next(((name, versions[name]) for name in group if kinds.get(name) == "core"), None)
        found, problems = install_as_documented(current, command, group, core, pins, python)
        for name in group:
            version, metadata_sha = found.get(name, (None, None))
            ok = version == versions[name] and metadata_sha == built.get(name) and not problems.get(name)
            results.append({"package": name, "expected": versions[name], "installed": version,
                            "same_metadata": metadata_sha == built.get(name), "problems": problems.get(name, []),
                            "command": shlex.join(command), "python": python[0], "ok": ok})
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise ForkflowError("install check failed: " + "; ".join(describe_failure(r) for r in bad), where=url,
                            fix="inspect the index and [index] upstream: the installed files are not the ones built")
    say("install check: " + ", ".join(f"{r['package']}=={r['installed']}" for r in results))
    return results


def describe_failure(result: dict[str, Any]) -> str:
    text = f"{result['package']} expected {result['expected']} got {result['installed']}"
    if not result["same_metadata"]:
        text += " (not the wheel built here: its METADATA differs)"
    return text + "".join(f"; {problem}" for problem in result["problems"]) + f" (`{result['command']}`)"


def documented_command(current: Settings, url: str, requirements: list[str]) -> list[str]:
    """What docs/packages.md tells users to run: uv with the private index first, upstream for the rest."""
    assert current.config.index is not None
    from tasks.core.release_pins import install_command

    return install_command("uv", url, requirements, current.config.index.upstream)


def kinds_by_package() -> dict[str, str]:
    report = read_report("wheel", settings()) or {}
    return {p["name"]: p.get("kind", "") for p in report.get("packages", [])}


def install_groups(versions: dict[str, str], kinds: dict[str, str], pins: str | None = None) -> list[list[str]]:
    """The pins, core and one integration in one environment; the client (same import package as core) alone:
    the pins are the core's dependencies, the server's included, which a client install leaves out."""
    core = [n for n in versions if kinds.get(n) == "core"]
    integrations = [n for n in versions if kinds.get(n) == "integration"]
    client = [n for n in versions if kinds.get(n) == "client"]
    groups = []
    if core:
        groups.append(([pins] if pins in versions else []) + core + integrations[:1])
    if client:
        groups.append(client)
    return groups


def built_metadata_sha(wheel: Path) -> str:
    import hashlib

    return hashlib.sha256(metadata_text(wheel).encode()).hexdigest()


def install_as_documented(current: Settings, command: list[str], names: list[str], core: tuple[str, str] | None,
                          pins: dict[str, Any], using: tuple[str, Path]) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Run the command in a fresh environment of `using` ("3.12", its interpreter); name -> (version, METADATA
    sha256), and name -> problems."""
    import json

    from tasks.adapters import venv
    version, interpreter = using
    with tempfile.TemporaryDirectory(prefix="forkflow-install-") as folder:
        python = venv.make_venv(interpreter, Path(folder) / "venv")
        venv.run_as_user(python, command, Path(folder))
        out = run([str(python), "-I", "-c", READ_INSTALLED, *names], fix="the installed packages cannot be read").stdout
        problems: dict[str, list[str]] = {}
        from tasks.core.release_pins import unmet_pins

        if pins.get("name") in names:
            problems[pins["name"]] = unmet_pins(pins.get("requires", []), venv.installed(python), version)
        if core:
            problems[core[0]] = core_problems(current, python, core, Path(folder))
    loaded: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return {name: (values[0], values[1]) for name, values in loaded.items()}, problems


def core_problems(current: Settings, python: Path, core: tuple[str, str], home: Path) -> list[str]:
    """Every package the core ships imports, and its version command prints its version (as verify checks)."""
    from tasks.adapters import venv

    name, version = core
    found = venv.import_everything(python, name)
    failed = found.get("failed")
    problems = [f"{package}: {error}" for package, error in sorted(failed.items())] if isinstance(failed, dict) else []
    command = core_version_command(current, name)
    if command:
        code, output = venv.run_in(python, command, home)
        mismatch = f"exit {code}" if code != 0 else smoke.version_mismatch(output, version)
        if mismatch:
            problems.append(f"`{shlex.join(command)}`: {mismatch}: {output[-300:]}")
    return problems


def core_version_command(current: Settings, core: str) -> list[str] | None:
    if current.config.packages.version_command:
        return list(current.config.packages.version_command)
    packages: list[dict[str, Any]] = (read_report("wheel", current) or {}).get("packages", [])
    package = next((p for p in packages if p["name"] == core), {})
    wheel = next((f["path"] for f in package.get("files", []) if f["name"].endswith(".whl")), None)
    return smoke.version_command(core, wheel_info(Path(wheel)).scripts) if wheel else None
