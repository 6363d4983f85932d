"""Stage `version`: package versions from git tags, next versions from commits.

`doit version` works out every package's version in the fork checkout and
writes `.forkflow/reports/version.json`; `doit version --print` shows them.
`doit check-version` is a CI guard: it fails when a package changed since the
main branch but its version did not.
"""

from __future__ import annotations

import tomllib
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.console import say, warn
from tasks.adapters.git import Git
from tasks.core.errors import ForkflowError
from tasks.core.packages import Package, owns
from tasks.core.versions import newest_tag, next_version, strongest_bump, tag_pattern, with_fork_label
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, KeepFileDeps, Stale
from tasks.pipeline.parallel import together
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
        "task_dep": ["checkout"],
        "params": [{"name": "show", "long": "print", "type": bool, "default": False,
                    "help": "print the versions table even when nothing changed"}],
        "uptodate": [Check("the tags and commits the versions come from are unchanged", versions_unchanged)],
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
        "task_dep": ["checkout"],
        "uptodate": [False],
        "verbosity": 2,
    }


def compute_versions(current: Settings, ref: str = "HEAD", root: Path | None = None) -> list[dict[str, Any]]:
    """One entry per package: name, kind, version, tag it came from, commits since, next version."""
    root = root or checkout_path(current)
    git = Git(root)
    tags = git.read("tag", "--merged", ref).split()
    return [version_entry(current, git, package, tags, ref) for package in find_packages(current, root)]


def version_entry(current: Settings, git: Git, package: Package, tags: list[str], ref: str) -> dict[str, Any]:
    rules = current.config.versions
    entry: dict[str, Any] = {"name": package.name, "kind": package.kind, "path": package.path,
                             "backend": package.backend, "tag": None, "commits_since": None}
    if package.backend == "static" and package.static_version:
        entry["version"] = package.static_version
        entry["next_version"] = next_version_of(git, package, ref)
        return entry
    pattern, tag_name = tag_pattern(package.kind, package.name, rules.core_tag, rules.package_tag)
    found = newest_tag(tags, pattern, tag_name, rules.allow_prerelease)
    if found is None:
        entry["version"] = rules.fallback
        entry["warning"] = f"no tag matching {pattern.replace('{name}', tag_name)!r}; using fallback {rules.fallback}"
        return entry
    since = int(git.read("rev-list", "--count", f"{found.tag}..{ref}"))
    entry.update(version=with_fork_label(str(found.version), rules.fork_label, since), tag=found.tag, commits_since=since)
    return entry


def next_version_of(git: Git, package: Package, ref: str) -> str:
    """Next version from the conventional commits that touched the package since its last release tag."""
    assert package.static_version is not None
    last = git.read("describe", "--tags", "--abbrev=0", "--match", f"{package.name}-*", ref, check=False)
    span = f"{last}..{ref}" if last else ref
    messages = git.read("log", "--format=%B%x00", span, "--", package.path).split("\0")
    return next_version(package.static_version, strongest_bump(m.strip() for m in messages if m.strip()))


def version_report(current: Settings) -> dict[str, Any]:
    git = Git(checkout_path(current))
    return {
        "head": git.read("rev-parse", "HEAD"),
        "branch": git.read("rev-parse", "--abbrev-ref", "HEAD"),
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


def versions_unchanged(task: Any, values: dict[str, Any]) -> bool | Stale:
    if task.options and task.options.get("show"):
        return False
    current = settings()
    saved = read_report("version", current)
    if saved is None or not checkout_path(current).exists():
        return Stale("no version.json yet")
    try:
        return bool(saved.get("inputs") == version_inputs(current)) or Stale("new commits or tags in the checkout")
    except (ForkflowError, OSError) as err:
        return Stale(f"cannot read the checkout: {str(err).splitlines()[0]}")


def version_action(show: bool = False) -> dict[str, str]:
    current = settings()
    report = version_report(current)
    write_report("version", report, current)
    for entry in report["packages"]:
        if entry.get("warning"):
            warn(f"{entry['name']}: {entry['warning']}")
    print_versions(report["packages"])
    return {"made": f"{len(report['packages'])} versions"}


def print_versions(entries: list[dict[str, Any]]) -> None:
    width = max(len(e["name"]) for e in entries)
    say(f"{'package':<{width}}  {'version':<12} {'tag':<24} {'since':>5}  next")
    for e in entries:
        since = "" if e["commits_since"] is None else str(e["commits_since"])
        say(f"{e['name']:<{width}}  {e['version']:<12} {e['tag'] or '-':<24} {since:>5}  {e.get('next_version', '')}")


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
    for package, entry in zip(find_packages(current, root), compute_versions(current, "HEAD", root), strict=True):
        count = sum(1 for file in changed if owns(package, file))
        if count and version_at(current, git, package, tags_before, merge_base) == entry["version"]:
            stale.append((package.name, entry["version"], count))
    return stale


def version_at(current: Settings, git: Git, package: Package, tags: list[str], ref: str) -> str | None:
    """A package's version as of an older commit (static versions read from that commit's pyproject)."""
    if package.backend == "static":
        text = git.read("show", f"{ref}:{package.path}/pyproject.toml", check=False)
        return tomllib.loads(text).get("project", {}).get("version") if text else None
    return str(version_entry(current, git, package, tags, ref)["version"])

