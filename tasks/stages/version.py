"""Stage `version`: package versions from git tags, next versions from commits.

`doit version` works out every package's version in the fork checkout and
writes `.forkflow/reports/version.json`; `doit version --print` shows them.
`doit check-version` is a CI guard: it fails when a package changed since the
main branch but its version did not.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.console import say, warn
from tasks.adapters.git import Git
from tasks.core.errors import ForkflowError
from tasks.core.packages import Package, change_paths, owns
from tasks.core.versions import (
    UNSHIPPABLE_FIX,
    Change,
    fork_version,
    label_of,
    newest,
    newest_tag,
    next_version,
    strongest_bump,
    tag_pattern,
)
from tasks.pipeline import prefetch
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, KeepFileDeps, Stale, report_intact
from tasks.pipeline.parallel import together
from tasks.pipeline.runmode import after_sync
from tasks.pipeline.settings import Settings, read_report, settings, write_report
from tasks.pipeline.workspace import checkout_path, find_packages, matching


def task_version() -> dict[str, Any]:
    """Work out each package's version from the tags reachable from the checkout."""
    current = settings()
    doc = "versions from git tags (core X.Y.Z, packages <name>-X.Y.Z) and next versions from commits; --print shows them"
    if current.config.fork is None:
        return missing_section_task("version", "fork", doc)
    return {
        "doc": doc,
        "actions": [guarded(version_action), KeepFileDeps(partial(pyproject_files, current))],
        "task_dep": ["checkout", *after_sync(current.config)],
        "params": [{"name": "show", "long": "print", "type": bool, "default": False,
                    "help": "print the versions table even when nothing changed"}],
        "uptodate": [Check("the tags and commits the versions come from are unchanged", versions_unchanged),
                     report_intact("version", "packages")],
        "file_dep": [str(file) for file in pyproject_files(current) if file.is_file()],
        "targets": [str(current.reports_dir / "version.json")],
        "verbosity": 2,
    }


def task_check_version() -> dict[str, Any]:
    """CI guard: a package that changed since main must have a new version."""
    current = settings()
    doc = "fail when a package changed since the main branch but its version did not (CI guard)"
    if current.config.fork is None:
        return missing_section_task("check-version", "fork", doc)
    return {
        "basename": "check-version",
        "doc": doc,
        "actions": [guarded(check_version_action)],
        "task_dep": ["checkout", *after_sync(current.config)],
        "uptodate": [False],
        "verbosity": 2,
    }


def compute_versions(current: Settings, ref: str = "HEAD", root: Path | None = None) -> list[dict[str, Any]]:
    """One entry per package: name, kind, version, the tag it came from, its newest change since, next version."""
    root = root or checkout_path(current)
    git = Git(root)
    tags = git.read("tag", "--merged", ref).split()
    packages = find_packages(current, root)
    core_tag = core_base_tag(current, tags)
    return [version_entry(current, git, package, tags, ref, packages, core_tag) for package in packages]


def core_base_tag(current: Settings, tags: list[str]) -> str | None:
    """The core's newest tag: images measure every package they hold from it."""
    rules = current.config.versions
    found = newest_tag(tags, rules.core_tag, "", rules.allow_prerelease)
    return found.tag if found else None


def version_entry(current: Settings, git: Git, package: Package, tags: list[str], ref: str,
                  packages: list[Package] | None = None, core_tag: str | None = None) -> dict[str, Any]:
    """A package's version: its tag's (or its static) version, marked with its newest change since (scheme commit).

    `build_commit` is the commit the version names (its newest change, or its tag's commit), where the package is
    built from: its files there are HEAD's, so any clone builds the same bytes under that version. None: HEAD."""
    rules = current.config.versions
    groups = change_paths(package, packages or [package])
    entry: dict[str, Any] = {"name": package.name, "kind": package.kind, "path": package.path,
                             "backend": package.backend, "tag": None, "commits_since": None}
    since_core = newest_change(git, core_tag, ref, groups) if core_tag is not None else None
    if core_tag is not None:
        entry["since_core_tag"] = asdict(since_core) if since_core else None
    if package.backend == "static" and package.static_version:
        base, source = static_base(git, package, ref), "static"
        entry["next_version"] = next_version_of(git, package, ref)
        version = package.static_version
    else:
        pattern, tag_name = tag_pattern(package.kind, package.name, rules.core_tag, rules.package_tag)
        found = newest_tag(tags, pattern, tag_name, rules.allow_prerelease)
        if found is None:
            entry.update(version=rules.fallback, source="fallback", warning=(
                f"no tag matching {pattern.replace('{name}', tag_name)!r} in the checkout; using the fallback "
                f"{rules.fallback}, which publish and image push refuse"))
            return entry
        base, source, version = found.tag, "tag", str(found.version)
        entry.update(tag=found.tag, commits_since=int(git.read("rev-list", "--count", f"{found.tag}..{ref}")))
    change = since_core if base is not None and base == core_tag else newest_change(git, base, ref, groups) if base else None
    entry.update(base_version=version, change=asdict(change) if change else None, source=source)
    if change is not None and rules.scheme == "commit":
        entry.update(version=fork_version(version, label(current), change), source="commit", build_commit=change.commit)
    else:
        named = git.read("rev-parse", f"{base}^{{commit}}") if base and change is None else None
        entry.update(version=version, build_commit=named)
    return entry


def label(current: Settings) -> str:
    return current.config.versions.fork_label or label_of(current.config.project.name)


def newest_change(git: Git, base: str, ref: str, groups: list[list[str]]) -> Change | None:
    """The newest commit in base..ref that touched any group of paths, and its distance from base."""
    found = []
    for paths in groups:
        commit = git.read("log", "-1", "--format=%H", f"{base}..{ref}", "--", *paths)
        if commit:
            found.append(Change(commit, int(git.read("rev-list", "--count", f"{base}..{commit}"))))
    return newest(found)


def static_base(git: Git, package: Package, ref: str) -> str | None:
    """The oldest commit, walking back from ref, whose pyproject.toml still has the current static version:
    where that version was set (changes after it mark the version). None when the file has no history."""
    file = f"{package.path}/pyproject.toml" if package.path not in ("", ".") else "pyproject.toml"
    base = None
    for commit in git.read("log", "--format=%H", ref, "--", file).split():
        text = git.read("show", f"{commit}:{file}", check=False)
        if not text or tomllib.loads(text).get("project", {}).get("version") != package.static_version:
            break
        base = commit
    return base


def next_version_of(git: Git, package: Package, ref: str) -> str:
    """Next version from the conventional commits that touched the package since its last release tag."""
    assert package.static_version is not None
    last = git.read("describe", "--tags", "--abbrev=0", "--match", f"{package.name}-*", ref, check=False)
    span = f"{last}..{ref}" if last else ref
    messages = git.read("log", "--format=%B%x00", span, "--", package.path).split("\0")
    return next_version(package.static_version, strongest_bump(m.strip() for m in messages if m.strip()))


def version_report(current: Settings) -> dict[str, Any]:
    git = Git(checkout_path(current))
    rules = current.config.versions
    return {
        "head": git.read("rev-parse", "HEAD"),
        "branch": git.read("rev-parse", "--abbrev-ref", "HEAD"),
        "scheme": rules.scheme,
        "label": label(current),
        "shallow": git.read("rev-parse", "--is-shallow-repository") == "true",
        "inputs": version_inputs(current),
        "packages": compute_versions(current),
    }


def version_inputs(current: Settings) -> str:
    """A hash of everything versions depend on: HEAD, every tag, the pyproject files, the rules.

    Cheap (two git calls and a few small files), so a no-op run need not work the versions out again.
    """
    import hashlib

    root = checkout_path(current)
    git = Git(root)
    head, tags = (outcome.get() for outcome in together(
        partial(git.read, "rev-parse", "HEAD"), partial(git.read, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags")))
    digest = hashlib.sha256(head.encode())
    digest.update(tags.encode())
    digest.update(current.config.versions.model_dump_json().encode())
    digest.update(current.config.packages.model_dump_json().encode())
    for file in pyproject_files(current):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def pyproject_files(current: Settings) -> list[Path]:
    """The pyproject.toml files the versions are read from: core, client, each integration, the flows project."""
    root = checkout_path(current)
    patterns = ["pyproject.toml", "client/pyproject.toml", current.config.packages.integrations + "/pyproject.toml"]
    found = [file for pattern in patterns for file in matching(root / pattern)]
    flows = current.path(current.config.flows.path) if current.config.flows else None
    inside = flows is not None and root in flows.parents and (flows / "pyproject.toml").exists()
    return found + ([flows / "pyproject.toml"] if inside and flows else [])


def inputs_key(current: Settings) -> str:
    return f"version-inputs:{checkout_path(current)}"


def ask_inputs_early(current: Settings) -> None:
    """The version check's two git calls and file reads, while doit is still loading."""
    if checkout_path(current).exists():
        prefetch.send(inputs_key(current), partial(version_inputs, current))


def versions_unchanged(task: Any, values: dict[str, Any]) -> bool | Stale:
    if task.options and task.options.get("show"):
        return False
    current = settings()
    saved = read_report("version", current)
    if saved is None or not checkout_path(current).exists():
        return Stale("no version.json yet")
    try:
        inputs = prefetch.answer(inputs_key(current), partial(version_inputs, current))
        return bool(saved.get("inputs") == inputs) or Stale("new commits or tags in the checkout")
    except (ForkflowError, OSError) as err:
        return Stale(f"cannot read the checkout: {str(err).splitlines()[0]}")


def version_action(show: bool = False) -> dict[str, str]:
    current = settings()
    report = version_report(current)
    write_report("version", report, current)
    for entry in report["packages"]:
        if entry.get("warning"):
            warn(f"{entry['name']}: {entry['warning']}")
    for line in tag_scheme_warnings(current, report["packages"]):
        warn(line)
    if report["shallow"]:
        warn(f"{checkout_path(current)} is a shallow clone: tags and distances are cut off, so publish and image "
             f"push refuse these versions; {UNSHIPPABLE_FIX}")
    print_versions(report["packages"])
    return {"made": f"{len(report['packages'])} versions"}


def tag_scheme_warnings(current: Settings, entries: list[dict[str, Any]]) -> list[str]:
    """Scheme `tag`: a package changed since its tag keeps the tag's version; said now, not at publish."""
    changed = [e for e in entries if e.get("source") == "tag" and e.get("change")]
    index = current.config.index
    lines = []
    for entry in changed:
        change = entry["change"]
        published = index is not None and on_index(index.url, entry["name"], entry["version"])
        fate = (f"the index already has {entry['version']}: publish will refuse its new files" if published
                else f"publishing it now makes {entry['version']} differ from the tag's content")
        lines.append(f"{entry['name']}: commit {change['commit'][:7]} changed it since {entry['tag']} but scheme "
                     f"`tag` keeps version {entry['version']}; {fate}.\n  ways out: tag a new version on this "
                     f"commit (`git tag <new version>` and push it), or set [versions] scheme = \"commit\" "
                     "(a version per commit, e.g. X.Y.Z+<label>.<n>.g<commit>)")
    return lines


def on_index(url: str, name: str, version: str) -> bool:
    """True when the index holds a file of that version; False when it does not or cannot be asked."""
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
    from packaging.version import Version

    from tasks.adapters import index

    try:
        files = index.remote_files(url, name)
    except index.IndexError_:
        return False
    for file in files:
        try:
            found = parse_wheel_filename(file)[1] if file.endswith(".whl") else parse_sdist_filename(file)[1]
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if found == Version(version):
            return True
    return False


def print_versions(entries: list[dict[str, Any]]) -> None:
    width = max(len(e["name"]) for e in entries)
    wide = max(12, *(len(e["version"]) for e in entries))
    say(f"{'package':<{width}}  {'version':<{wide}} {'tag':<24} {'since':>5}  next")
    for e in entries:
        since = "" if e["commits_since"] is None else str(e["commits_since"])
        say(f"{e['name']:<{width}}  {e['version']:<{wide}} {e['tag'] or '-':<24} {since:>5}  {e.get('next_version', '')}")


def check_version_action() -> dict[str, str]:
    current = settings()
    assert current.config.fork is not None
    root = checkout_path(current)
    main = current.config.fork.main
    base = main_ref(Git(root), main)
    stale = stale_versions(current, root, base)
    if stale:
        raise ForkflowError(
            "packages changed since the main branch without a new version:\n"
            + "\n".join(f"  - {name}: still {version} ({count} files changed)" for name, version, count in stale),
            where=f"{root} (compared with {base})",
            fix="bump the version (new tag, or the static version in pyproject.toml) of each package listed",
        )
    say(f"every package that changed since {base} has a new version")
    return {"made": "versions ok"}


def main_ref(git: Git, main: str) -> str:
    for ref in (main, f"origin/{main}"):
        if git.ok("rev-parse", "--verify", "--quiet", ref):
            return ref
    raise ForkflowError(f"branch {main!r} not found in the checkout", where="[fork] main",
                        fix=f"run `git fetch origin {main}` in the checkout, or run `doit sync`")


def stale_versions(current: Settings, root: Path, base: str) -> list[tuple[str, str, int]]:
    git = Git(root)
    merge_base = git.read("merge-base", base, "HEAD")
    changed = git.read("diff", "--name-only", merge_base, "--").splitlines()
    changed += git.read("ls-files", "--others", "--exclude-standard").splitlines()
    tags_before = git.read("tag", "--merged", merge_base).split()
    stale = []
    packages = find_packages(current, root)
    for package, entry in zip(packages, compute_versions(current, "HEAD", root), strict=True):
        count = sum(1 for file in changed if owns(package, file))
        if count and version_at(current, git, package, tags_before, merge_base, packages) == entry["version"]:
            stale.append((package.name, entry["version"], count))
    return stale


def version_at(current: Settings, git: Git, package: Package, tags: list[str], ref: str,
               packages: list[Package]) -> str | None:
    """A package's version as of an older commit (static versions read from that commit's pyproject)."""
    if package.backend == "static":
        text = git.read("show", f"{ref}:{package.path}/pyproject.toml", check=False)
        return tomllib.loads(text).get("project", {}).get("version") if text else None
    return str(version_entry(current, git, package, tags, ref, packages)["version"])

