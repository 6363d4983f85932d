"""Thin adapter over the git command line.

Reads go through `Git.read`; every write goes through `Git.write`, which in
dry-run mode reports "would run: git ..." and changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.adapters.console import say
from tasks.adapters.git_remote import NO_PROMPT, REMOTE_COMMANDS, remote_of
from tasks.adapters.limits import limits, no_answer
from tasks.adapters.processes import kill_with_parent
from tasks.adapters.run import run
from tasks.core.errors import CommandTimedOut, ForkflowError
from tasks.core.values import sha256_hex

QUIET_CONFIG = (
    "-c", "advice.detachedHead=false",
    "-c", "commit.gpgsign=false",
    "-c", "tag.gpgsign=false",
    "-c", "init.defaultBranch=main",
)


@dataclass(frozen=True)
class Layout:
    """A clone as `git rev-parse` describes it."""

    toplevel: Path
    git_dir: Path
    shallow: bool
    branch: str | None
    head: str


class Git:
    """git commands in one repository."""

    def __init__(self, repo: Path, *, dry_run: bool = False, env: Mapping[str, str] | None = None):
        self.repo = Path(repo)
        self.dry_run = dry_run
        self.env = dict(env or {})

    def read(self, *args: str, check: bool = True) -> str:
        """Run a git command that changes nothing; return its stdout stripped."""
        return self.call(args, check=check).stdout.strip()

    def ok(self, *args: str) -> bool:
        """True when a read-only git command exits 0."""
        return self.call(args, check=False).returncode == 0

    def write(self, *args: str, fix: str | None = None) -> str:
        """Run a git command that changes something, unless dry-run."""
        if self.dry_run:
            say("would run: git " + " ".join(args))
            return ""
        return self.call(args, fix=fix).stdout.strip()

    def attempt(self, *args: str) -> tuple[int, str]:
        """Run a changing git command that may fail; return (exit code, combined output)."""
        if self.dry_run:
            say("would run: git " + " ".join(args))
            return 0, ""
        proc = self.call(args, check=False)
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def call(self, args: tuple[str, ...], *, check: bool = True, fix: str | None = None,
             input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run git; a command that talks to a remote is bounded by [timeouts] git and never waits for a prompt."""
        seconds = limits().git if args[:1] and args[0] in REMOTE_COMMANDS else None
        env = {**NO_PROMPT, **self.env} if seconds else self.env
        try:
            return run(["git", *QUIET_CONFIG, *args], cwd=self.repo, env=env, check=check, fix=fix,
                       input_text=input_text, timeout=seconds)
        except CommandTimedOut:
            raise no_answer(f"the remote {remote_of(args)} (git {args[0]})", "git", seconds or 0,
                            where=str(self.repo)) from None

    def rev(self, ref: str) -> str | None:
        """The commit a ref or sha names, or None when there is no such commit here."""
        return self.read("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False) or None

    def layout(self) -> Layout | None:
        """Where the work tree and git folder are, whether the clone is shallow, and HEAD; None outside a clone."""
        if not self.repo.is_dir():
            return None
        proc = run(["git", *QUIET_CONFIG, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--is-shallow-repository",
                    "HEAD", "--symbolic-full-name", "HEAD"], cwd=self.repo, env=self.env, check=False)
        lines = proc.stdout.splitlines()
        if proc.returncode != 0 or len(lines) != 5:
            return None
        top, git_dir, shallow, head, head_ref = lines
        branch = head_ref.removeprefix("refs/heads/") if head_ref.startswith("refs/heads/") else None
        return Layout(Path(top).resolve(), Path(git_dir), shallow == "true", branch, head)

    def refs(self, *patterns: str) -> dict[str, str]:
        """Full ref name -> sha for the refs matching for-each-ref patterns."""
        found = {}
        for line in self.read("for-each-ref", "--format=%(refname) %(objectname)", *patterns).splitlines():
            name, _, sha = line.partition(" ")
            found[name] = sha
        return found

    def remote_urls(self) -> dict[str, str]:
        """Remote name -> URL."""
        found = {}
        for line in self.read("config", "--get-regexp", r"^remote\..*\.url$", check=False).splitlines():
            key, _, url = line.partition(" ")
            found[key.removeprefix("remote.").removesuffix(".url")] = url
        return found

    def apart(self, left: str, right: str) -> tuple[int, int]:
        """(commits only reachable from left, commits only reachable from right)."""
        only_left, only_right = self.read("rev-list", "--left-right", "--count", f"{left}...{right}").split()
        return int(only_left), int(only_right)

    def sides(self, left: str, right: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(sha, subject) of the commits only on the left and only on the right, oldest first (one `git log`)."""
        only_left: list[tuple[str, str]] = []
        only_right: list[tuple[str, str]] = []
        for line in reversed(self.read("log", "--left-right", "--format=%m %H %s", f"{left}...{right}").splitlines()):
            side, _, rest = line.partition(" ")
            sha, _, subject = rest.partition(" ")
            (only_left if side == "<" else only_right).append((sha, subject))
        return only_left, only_right

    def commits(self, revisions: str) -> list[tuple[str, str]]:
        """(sha, subject) of each commit in a range such as `a..b`, oldest first."""
        found = []
        for line in self.read("log", "--reverse", "--format=%H %s", revisions).splitlines():
            sha, _, subject = line.partition(" ")
            found.append((sha, subject))
        return found

    def changes(self) -> list[str]:
        """`git status --porcelain` lines: staged, unstaged and untracked files that are not ignored."""
        status = run(["git", *QUIET_CONFIG, "status", "--porcelain", "--untracked-files=normal"], cwd=self.repo, env=self.env)
        return [line for line in status.stdout.splitlines() if line]

    @staticmethod
    def operation_in_progress(git_dir: Path) -> str | None:
        """The rebase, merge, cherry-pick, revert or bisect left unfinished in a git folder, if any."""
        markers = (("rebase-merge", "rebase"), ("rebase-apply", "rebase"), ("MERGE_HEAD", "merge"),
                   ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert"), ("BISECT_LOG", "bisect"))
        return next((name for marker, name in markers if (git_dir / marker).exists()), None)

    def conflicted_files(self) -> list[str]:
        return self.read("diff", "--name-only", "--diff-filter=U").splitlines()

    def remote_heads(self, url: str, *branches: str, prefix: str | None = None) -> dict[str, str]:
        """branch -> tip on a remote, for those of `branches` (and those starting with `prefix`) it has;
        raises CommandError when it does not answer."""
        wanted = {f"refs/heads/{name}": name for name in branches}
        patterns = [*wanted, *([f"refs/heads/{prefix}*"] if prefix else [])]
        heads = {}
        for line in self.read("ls-remote", url, *patterns).splitlines():
            sha, _, ref = line.partition("\t")
            name = ref.removeprefix("refs/heads/")
            if ref in wanted or (prefix and ref.startswith("refs/heads/" + prefix)):
                heads[name] = sha
        return heads

    def remote_refs(self, url: str, *patterns: str) -> dict[str, str]:
        """Full ref name -> sha on a remote for the refs matching `patterns` (tags as they are, not peeled);
        raises CommandError when it does not answer."""
        found = {}
        for line in self.read("ls-remote", url, *patterns).splitlines():
            sha, _, ref = line.partition("\t")
            if ref and not ref.endswith("^{}"):
                found[ref] = sha
        return found

    def remote_listing(self, url: str, *patterns: str) -> dict[str, tuple[str, str]]:
        """Full ref name -> (what it points at, the commit it peels to) on a remote, for the refs matching
        `patterns`; an annotated tag points at its tag object. Raises CommandError when it does not answer."""
        found: dict[str, tuple[str, str]] = {}
        for line in self.read("ls-remote", url, *patterns).splitlines():
            sha, _, ref = line.partition("\t")
            if ref.endswith("^{}"):
                ref = ref.removesuffix("^{}")
                found[ref] = (found.get(ref, (sha, sha))[0], sha)
            elif ref:
                found[ref] = (sha, found[ref][1] if ref in found else sha)
        return found

    def tags(self) -> dict[str, tuple[str, str]]:
        """Tag name -> (what it points at, the commit it peels to) in this repository."""
        return self.refs_and_tags()[1]

    def refs_and_tags(self, *patterns: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
        """The refs matching for-each-ref `patterns` outside refs/tags/ (full name -> sha) and every tag (as `tags`
        gives them), in one `git for-each-ref`."""
        refs: dict[str, str] = {}
        tags: dict[str, tuple[str, str]] = {}
        for line in self.read("for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", *patterns,
                              "refs/tags/").splitlines():
            name, _, rest = line.partition(" ")
            sha, _, peeled = rest.partition(" ")
            if name.startswith("refs/tags/"):
                tags[name.removeprefix("refs/tags/")] = (sha, peeled or sha)
            else:
                refs[name] = sha
        return refs, tags

    def history(self, *tips: str) -> set[str]:
        """Every commit reachable from `tips`."""
        return set(self.read("rev-list", *tips).split())

    def absorbed(self, upstream: str, branch: str) -> set[str]:
        """Commits of `branch` (not in `upstream`) whose change `upstream` already has; a rebase drops them."""
        return {line[2:] for line in self.read("cherry", upstream, branch).splitlines() if line.startswith("- ")}

    def tag_text(self, sha: str) -> str:
        """An annotated tag object's text (`git cat-file tag`)."""
        return run(["git", *QUIET_CONFIG, "cat-file", "tag", sha], cwd=self.repo, env=self.env).stdout

    def make_tag_object(self, text: str) -> str:
        """Write a tag object (`git mktag`, which checks it) and return its id; refs do not move."""
        if self.dry_run:
            say("would run: git mktag")
            return ""
        return run(["git", *QUIET_CONFIG, "mktag"], cwd=self.repo, env=self.env, input_text=text).stdout.strip()

    def update_branch(self, name: str, new: str, old: str | None, *, fix: str | None = None) -> None:
        """Point a branch that is not checked out at `new`, only if it is still at `old` (None: must not exist)."""
        self.write("update-ref", "-m", "forkflow: sync", f"refs/heads/{name}", new, old or "", fix=fix)

    def fast_forward_checked_out(self, new: str) -> None:
        """Fast-forward the checked-out branch (and its files) to `new`; refuses anything else."""
        self.write("merge", "--ff-only", "--quiet", new)

    def update_refs(self, commands: list[str], *, message: str, fix: str | None = None) -> None:
        """Apply `git update-ref --stdin` commands (create, update, delete, verify) all or none, unless dry-run."""
        if self.dry_run:
            say("would run: git update-ref --stdin: " + "; ".join(commands))
            return
        run(["git", *QUIET_CONFIG, "update-ref", "-m", message, "--stdin"], cwd=self.repo, env=self.env,
            input_text="".join(f"{line}\n" for line in commands), fix=fix)

    def delete_branch(self, name: str) -> None:
        self.write("branch", "--quiet", "-D", name)

    def attach_head(self, branch: str) -> None:
        """Point a detached HEAD at `branch`, which must be at the same commit (the files and index stay as
        they are, so no checkout is needed)."""
        self.write("symbolic-ref", "-m", "forkflow: sync", "HEAD", f"refs/heads/{branch}")

    def checkout(self, branch: str | None, sha: str | None = None) -> None:
        """Check out a branch, or detach HEAD at `sha` when branch is None."""
        self.write("checkout", "--quiet", *([branch] if branch else ["--detach", str(sha)]))

    def add_remote(self, name: str, url: str) -> None:
        self.write("remote", "add", name, url)

    def fetch_refs(self, remote: str, refspecs: list[str], *, tags: bool = False, fix: str | None = None) -> None:
        """Fetch refspecs from a remote (plus every tag when `tags`)."""
        self.write("fetch", "--quiet", *(["--tags"] if tags else ["--no-tags"]), remote, *refspecs, fix=fix)

    def fetch_objects(self, url: str, refs: list[str]) -> None:
        """Bring in the commits of remote refs without moving any ref, FETCH_HEAD included (dry runs plan with them)."""
        self.read("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--refmap=", url, *refs)

    def knows_committer(self) -> bool:
        """True when git has a committer identity (a rebase writes commits)."""
        return self.ok("var", "GIT_COMMITTER_IDENT")

    def rebase(self, onto: str, branch: str) -> tuple[int, str]:
        """Rebase `branch` onto `onto`; no autostash, and no other branch is moved along with it."""
        return self.attempt("-c", "rebase.autoStash=false", "-c", "rebase.updateRefs=false",
                            "rebase", "--no-autosquash", "--quiet", onto, branch)

    def abort_rebase(self) -> None:
        self.write("rebase", "--abort")

    def subject(self, sha: str) -> str:
        return self.read("log", "-1", "--format=%s", sha)

    def push(self, arguments: list[str]) -> tuple[int, str]:
        """Run `git push` with the given arguments; return (exit code, combined output)."""
        return self.attempt("push", *arguments)


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

    if not file.is_file():
        return "deleted"
    return "sha256:" + sha256_hex(file.read_bytes())


SNAPSHOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "forkflow", "GIT_AUTHOR_EMAIL": "forkflow@localhost",
    "GIT_COMMITTER_NAME": "forkflow", "GIT_COMMITTER_EMAIL": "forkflow@localhost",
}


def working_tree_commit(repo: Path) -> str:
    """A commit of the working tree as it is: tracked edits, deletions and untracked files that are not ignored.

    Written through a private copy of the index, so the user's branch, index and files are untouched.
    The commit's parent is HEAD and its dates are HEAD's, so the same tree gives the same commit id.
    Returns HEAD itself when the working tree matches it.
    """
    import tempfile

    git = Git(repo)
    head, head_tree, date = git.read("log", "-1", "--format=%H%n%T%n%cI", "HEAD").splitlines()
    user_index = Path(git.read("rev-parse", "--absolute-git-dir")) / "index"
    with tempfile.TemporaryDirectory(prefix="forkflow-index-") as folder:
        index = Path(folder) / "index"
        if user_index.exists():
            shutil.copy2(user_index, index)
        private = Git(repo, env={"GIT_INDEX_FILE": str(index)})
        private.read("add", "--all", "--", ".")
        tree = private.read("write-tree")
    if tree == head_tree:
        return head
    dated = Git(repo, env={**SNAPSHOT_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
    return dated.read("commit-tree", tree, "-p", head, "-m", "forkflow: snapshot of the working tree")


def objects_dir(repo: Path) -> Path:
    """The object folder a clone (or a worktree of one) keeps its objects in."""
    return Path(Git(repo).read("rev-parse", "--path-format=absolute", "--git-common-dir")) / "objects"


def build_tree(repo: Path, commit: str, target: Path, *, tag: str | None, sparse: list[str] | None = None) -> None:
    """A throwaway checkout of one commit at `target`, with git metadata, borrowing `repo`'s objects.

    Build backends see a real git work tree (versioningit and its write steps, setuptools_scm's
    file finder), whose only tag is `tag` on that commit, so they derive exactly that version.
    Submodules (gitlinks) stay empty folders. `sparse` limits the checkout to those folders
    (cone mode: files at the root are always there).
    """
    shutil.rmtree(target, ignore_errors=True)
    git = init_repo(target)
    info = target / ".git" / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    objects = objects_dir(repo)
    (info / "alternates").write_text(f"{objects}\n", encoding="utf-8")
    if (objects.parent / "shallow").is_file():  # a shallow clone's cut-off commits: their parents are not there
        shutil.copyfile(objects.parent / "shallow", target / ".git" / "shallow")
    git.write("update-ref", "refs/heads/build", commit)
    if tag:
        git.write("tag", tag, commit)
    if sparse:
        git.write("config", "core.sparseCheckout", "true")
        git.write("config", "core.sparseCheckoutCone", "true")
        (target / ".git" / "info" / "sparse-checkout").write_text(cone_patterns(sparse), encoding="utf-8")
    git.write("symbolic-ref", "HEAD", "refs/heads/build")
    git.write("read-tree", "-mu", "HEAD")


def export_folder(repo: Path, commit: str, folder: str, target: Path) -> None:
    """The files of `folder` at `commit`, written under `target` (paths relative to `folder`; no git metadata)."""
    import io
    import tarfile

    proc = subprocess.run(["git", *QUIET_CONFIG, "archive", "--format=tar", f"{commit}:{folder}"], cwd=repo,
                          capture_output=True, check=False, preexec_fn=kill_with_parent)  # noqa: PLW1509
    if proc.returncode != 0:
        raise ForkflowError(f"git archive {commit}:{folder} failed: {proc.stderr.decode(errors='replace').strip()}",
                            where=str(repo), fix=f"check that {folder} exists at {commit[:12]}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(target, filter="data")


def cone_patterns(folders: list[str]) -> str:
    """The sparse-checkout file for cone mode: root files, and each folder with its parents."""
    lines = ["/*", "!/*/"]
    seen: set[str] = set()
    for folder in sorted(folders):
        parts = folder.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in seen:
                seen.add(parent)
                lines += [f"/{parent}/", f"!/{parent}/*/"]
        lines.append(f"/{'/'.join(parts)}/")
    return "\n".join(lines) + "\n"


def hide_local_changes(tree: Path) -> list[str]:
    """Mark every file a recipe deleted or replaced in a build tree as skip-worktree; return them.

    The trimmed tree then reads as clean to `git describe --dirty`, so the version stays the tag's.
    """
    git = Git(tree)
    changed = [p for p in git.read("ls-files", "-z", "--deleted", "--modified").split("\0") if p]
    changed = sorted(set(changed))
    if changed:
        run(["git", *QUIET_CONFIG, "update-index", "--skip-worktree", "-z", "--stdin"], cwd=tree,
            input_text="\0".join(changed) + "\0")
    return changed


def tracked_files(tree: Path) -> list[str]:
    """Files git tracks in a work tree and that are there (no gitlinks, nothing skip-worktree)."""
    found = []
    for record in Git(tree).read("ls-files", "-z", "-s", "-t").split("\0"):
        if "\t" not in record:
            continue
        meta, path = record.split("\t", 1)
        status, mode = meta.split()[0], meta.split()[1]
        if status != "S" and mode != "160000" and (tree / path).is_file():
            found.append(path)
    return found
