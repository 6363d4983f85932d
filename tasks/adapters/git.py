"""Thin adapter over the git command line.

Reads go through `Git.read`; every write goes through `Git.write`, which in
dry-run mode reports "would run: git ..." and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tasks.adapters.run import run
from tasks.output import say

QUIET_CONFIG = (
    "-c", "advice.detachedHead=false",
    "-c", "commit.gpgsign=false",
    "-c", "tag.gpgsign=false",
    "-c", "init.defaultBranch=main",
)


class Git:
    """git commands in one repository."""

    def __init__(self, repo: Path, *, dry_run: bool = False, env: Mapping[str, str] | None = None):
        self.repo = Path(repo)
        self.dry_run = dry_run
        self.env = dict(env or {})

    def read(self, *args: str, check: bool = True) -> str:
        """Run a git command that changes nothing; return its stdout stripped."""
        return run(["git", *QUIET_CONFIG, *args], cwd=self.repo, env=self.env, check=check).stdout.strip()

    def ok(self, *args: str) -> bool:
        """True when a read-only git command exits 0."""
        return run(["git", *QUIET_CONFIG, *args], cwd=self.repo, env=self.env, check=False).returncode == 0

    def write(self, *args: str, fix: str | None = None) -> str:
        """Run a git command that changes something, unless dry-run."""
        if self.dry_run:
            say("would run: git " + " ".join(args))
            return ""
        return run(["git", *QUIET_CONFIG, *args], cwd=self.repo, env=self.env, fix=fix).stdout.strip()

    def attempt(self, *args: str) -> tuple[int, str]:
        """Run a changing git command that may fail; return (exit code, combined output)."""
        if self.dry_run:
            say("would run: git " + " ".join(args))
            return 0, ""
        proc = run(["git", *QUIET_CONFIG, *args], cwd=self.repo, env=self.env, check=False)
        return proc.returncode, (proc.stdout + proc.stderr).strip()


def init_repo(path: Path, *, bare: bool = False) -> Git:
    path.mkdir(parents=True, exist_ok=True)
    run(["git", *QUIET_CONFIG, "init", "-q", *(["--bare"] if bare else []), str(path)])
    return Git(path)


def file_entries(repo: Path) -> dict[str, str]:
    """Each tracked or untracked-but-not-ignored file -> an id of its content.

    Clean files use the blob id git already knows (no file is read); files
    that are modified, staged or untracked are hashed from the working tree,
    so uncommitted edits count. Two git calls, whatever the repository size.
    """
    git = Git(repo)
    entries = {}
    for record in git.read("ls-files", "-s", "-z").split("\0"):
        if "\t" in record:
            meta, path = record.split("\t", 1)
            entries[path] = meta.split()[1]
    status = run(["git", *QUIET_CONFIG, "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=repo).stdout
    for path in changed_paths(status):
        entries[path] = working_copy_id(repo / path)
    return entries


def changed_paths(status: str) -> list[str]:
    """Paths from `git status --porcelain -z` (the new name for renames)."""
    paths = []
    records = iter(status.split("\0"))
    for record in records:
        if len(record) < 4:
            continue
        paths.append(record[3:])
        if record[0] in "RC":
            next(records, None)
    return paths


def working_copy_id(file: Path) -> str:
    import hashlib

    if not file.is_file():
        return "deleted"
    return "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
