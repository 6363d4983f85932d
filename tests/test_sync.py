"""Stage `sync` on real repositories: the demo workspace, changed by each test with plain git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks.core.errors import ForkflowError
from tasks.pipeline.settings import Settings, load_settings
from tasks.stages.sync.plan import fetch_action
from tasks.stages.sync.setup import sync_setup
from tasks.stages.sync.steps import main_action, push_action, release_action
from tests.helpers import REPO, run_doit
from tests.test_doit_commands import status_of

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Person", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test Person", "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


def refs(repo: Path) -> dict[str, str]:
    """Every ref of a repository (branches, tags, remote-tracking refs, HEAD) and what it points at."""
    lines = git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    found = dict(line.split(" ", 1) for line in lines)
    found["HEAD"] = git(repo, "symbolic-ref", "-q", "HEAD") if git_ok(repo, "symbolic-ref", "-q", "HEAD") \
        else git(repo, "rev-parse", "HEAD")
    return found


def git_ok(repo: Path, *args: str) -> bool:
    return subprocess.run(["git", *args], check=False, cwd=repo, capture_output=True).returncode == 0


def add_commit(bare: Path, branch: str, files: dict[str, str], message: str, parent: str | None = None) -> str:
    """Commit files on top of a branch of a bare repository, without a checkout; returns the sha."""
    base = parent or git(bare, "rev-parse", f"refs/heads/{branch}")
    index = {"GIT_INDEX_FILE": str(bare / f"index-{os.getpid()}")}
    git(bare, "read-tree", base, env=index)
    for name, text in files.items():
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=bare, input=text, capture_output=True,
                              text=True, check=True).stdout.strip()
        git(bare, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=index)
    tree = git(bare, "write-tree", env=index)
    Path(index["GIT_INDEX_FILE"]).unlink()
    sha = git(bare, "commit-tree", tree, "-p", base, "-m", message)
    if parent is None:
        git(bare, "update-ref", f"refs/heads/{branch}", sha)
    return sha


@dataclass
class Fork:
    """A config naming the demo repositories, with the fork clone at tmp/fork."""

    config: Path
    settings: Settings
    upstream: Path
    origin: Path

    @property
    def path(self) -> Path:
        return self.config.parent / "fork"

    def sync(self, *, dry_run: bool = False, keep_backups: int = -1) -> None:
        """The four sync tasks in order, in this process (doit itself is run by other tests)."""
        setup = sync_setup(self.settings, dry_run, keep_backups)
        for action in (fetch_action, main_action, release_action, push_action):
            action(setup)

    def failure(self, **kwargs: bool) -> str:
        with pytest.raises(ForkflowError) as caught:
            self.sync(**kwargs)
        return str(caught.value)

    def clone(self) -> None:
        git(self.config.parent, "clone", "-q", str(self.origin), str(self.path))
        git(self.path, "remote", "add", "upstream", str(self.upstream))

    def report(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.config.parent / ".forkflow" / "reports" / "sync.json").read_text())
        return loaded

    def all_refs(self) -> dict[str, dict[str, str]]:
        found = {"upstream": refs(self.upstream), "origin": refs(self.origin)}
        if self.path.exists():
            found["fork"] = refs(self.path)
        return found

    def subjects(self, repo: Path, revisions: str) -> list[str]:
        return git(repo, "log", "--reverse", "--format=%s", revisions).splitlines()


def write_config(folder: Path, upstream: Path, origin: Path, extra: str = "") -> Path:
    config = folder / "pipeline.toml"
    config.write_text(
        f'[project]\nname = "orbit"\n\n[fork]\npath = "fork"\nupstream = "{upstream}"\norigin = "{origin}"\n'
        f"keep_backups = 3\n{extra}",
        encoding="utf-8",
    )
    return config


@pytest.fixture(autouse=True)
def identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FORKFLOW_DRY_RUN", raising=False)


@pytest.fixture
def fork(demo_workspace: Path, tmp_path: Path) -> Fork:
    upstream, origin = demo_workspace / "upstream.git", demo_workspace / "origin.git"
    config = write_config(tmp_path, upstream, origin)
    return Fork(config, load_settings(config), upstream, origin)


def test_rebase_of_several_custom_commits(fork: Fork) -> None:
    old_release = git(fork.origin, "rev-parse", "release")
    custom = fork.subjects(fork.origin, "main..release")
    fork.sync()

    upstream_main = git(fork.upstream, "rev-parse", "main")
    assert git(fork.origin, "rev-parse", "main") == upstream_main
    assert git(fork.origin, "merge-base", "--is-ancestor", upstream_main, "release") == ""
    assert fork.subjects(fork.origin, f"{upstream_main}..release") == custom
    assert git(fork.path, "rev-parse", "release") == git(fork.origin, "rev-parse", "release")
    assert "1.1.0.dev1" in git(fork.path, "tag").split(), "upstream tags are fetched"

    report = fork.report()
    assert report["status"] == "updated"
    assert report["main"]["count"] == 3 and len(report["main"]["upstream_commits"]) == 3
    assert [r["subject"] for r in report["release"]["rebased"]] == custom
    assert all(r["new"] for r in report["release"]["rebased"])
    assert report["release"]["old"] == old_release and report["release"]["new"] == git(fork.origin, "rev-parse", "release")
    assert report["pushed"] == ["refs/heads/main", "refs/heads/release"]
    backup = report["backup"]
    assert backup.startswith("backup-before-sync-") and report["backups"] == [backup]
    assert git(fork.path, "rev-parse", backup) == old_release


def test_fast_forward_only_when_release_has_no_custom_commits(fork: Fork) -> None:
    git(fork.origin, "update-ref", "refs/heads/release", git(fork.origin, "rev-parse", "main"))
    fork.sync()

    upstream_main = git(fork.upstream, "rev-parse", "main")
    assert git(fork.origin, "rev-parse", "main") == git(fork.origin, "rev-parse", "release") == upstream_main
    report = fork.report()
    assert report["main"]["action"] == "fast-forward" and report["release"]["action"] == "fast-forward"
    assert report["backup"] is None and report["release"]["rebased"] == []
    assert git(fork.path, "branch", "--list", "backup-before-sync-*") == ""


def test_release_already_on_top_of_upstream_is_left_alone(fork: Fork) -> None:
    fork.sync()
    release = git(fork.origin, "rev-parse", "release")
    upstream_main = git(fork.upstream, "rev-parse", "main")
    git(fork.origin, "update-ref", "refs/heads/main", git(fork.origin, "rev-parse", f"{upstream_main}~2"))
    git(fork.path, "update-ref", "refs/heads/main", git(fork.origin, "rev-parse", "main"))

    fork.sync()
    report = fork.report()
    assert report["main"]["action"] == "fast-forward" and report["main"]["count"] == 2
    assert report["release"]["action"] == "up-to-date" and report["backup"] is None
    assert report["pushed"] == ["refs/heads/main"]
    assert git(fork.origin, "rev-parse", "release") == release


def test_conflict_aborts_restores_the_branch_and_explains(fork: Fork) -> None:
    add_commit(fork.upstream, "main", {"src/orbit/_fork.py": "DEFAULT_NAME = 'upstream'\n"}, "feat: upstream takes _fork.py")
    git(fork.origin, "tag", "orbit-aws-0.2.1", "release~1")
    fork.clone()
    git(fork.path, "checkout", "-q", "-b", "topic")
    before = fork.all_refs()

    message = fork.failure()

    assert "git tag -f orbit-aws-0.2.1 <rebased commit>" in message, "finishing by hand, the fork's tags move too"
    assert git(fork.path, "rev-parse", "orbit-aws-0.2.1") == git(fork.origin, "rev-parse", "release~1")
    assert "src/orbit/_fork.py" in message
    assert "feat(core): fork-wide default greeting name" in message
    assert "git rebase --continue" in message and "git checkout release" in message
    assert "--force-with-lease=refs/heads/release:" in message
    after = fork.all_refs()
    assert after["origin"] == before["origin"], "origin is untouched"
    assert git(fork.path, "symbolic-ref", "--short", "HEAD") == "topic"
    assert git(fork.path, "status", "--porcelain") == ""
    assert not (fork.path / ".git" / "rebase-merge").exists()
    assert after["fork"].get("refs/heads/release", before["origin"]["refs/heads/release"]) == before["origin"]["refs/heads/release"]
    backups = [ref for ref in after["fork"] if "backup-before-sync-" in ref]
    assert len(backups) == 1 and after["fork"][backups[0]] == before["origin"]["refs/heads/release"]
    report = fork.report()
    assert report["status"] == "failed" and "src/orbit/_fork.py" in report["error"]
    assert report["backup"] == backups[0].removeprefix("refs/heads/")


def test_origin_moved_between_fetch_and_push_is_refused_by_the_lease(fork: Fork) -> None:
    fork.clone()
    theirs = add_commit(fork.origin, "release", {"THEIRS.md": "pushed by someone else\n"}, "docs: someone else's commit",
                        parent=git(fork.origin, "rev-parse", "release"))
    hook = fork.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
                    f"git --git-dir='{fork.origin}' update-ref refs/heads/release {theirs}\n")
    hook.chmod(0o755)
    origin_main = git(fork.origin, "rev-parse", "main")

    message = fork.failure()

    assert "origin refused the push" in message and "nothing was pushed" in message
    assert git(fork.origin, "rev-parse", "release") == theirs, "their commit is still there"
    assert git(fork.origin, "rev-parse", "main") == origin_main, "the atomic push moved no ref"
    report = fork.report()
    assert report["status"] == "failed" and report["pushed"] == []
    assert git(fork.path, "rev-parse", report["backup"]) == git(fork.origin, "rev-parse", f"{theirs}~1")
    assert not (fork.config.parent / ".forkflow" / "sync" / "stamp.json").exists()


def test_origin_moved_after_the_fetch_is_seen_as_stale_by_the_lease(fork: Fork) -> None:
    fork.clone()
    setup = sync_setup(fork.settings)
    fetch_action(setup)
    theirs = add_commit(fork.origin, "release", {"THEIRS.md": "late\n"}, "docs: late commit")
    main_action(setup)
    release_action(setup)
    with pytest.raises(ForkflowError) as caught:
        push_action(setup)
    assert "stale info" in str(caught.value) and git(fork.origin, "rev-parse", "release") == theirs


@pytest.mark.parametrize("change", ["untracked", "modified", "staged"])
def test_dirty_tree_stops_before_anything_changes(fork: Fork, change: str) -> None:
    fork.clone()
    if change == "untracked":
        (fork.path / "notes.txt").write_text("mine\n")
    else:
        with (fork.path / "README.md").open("a") as handle:
            handle.write("edit\n")
        if change == "staged":
            git(fork.path, "add", "README.md")
    before = fork.all_refs()

    message = fork.failure()

    assert "not clean" in message and "git -C" in message and "stash push --include-untracked" in message
    assert fork.all_refs() == before


def test_ignored_files_do_not_make_the_tree_dirty(fork: Fork) -> None:
    fork.clone()
    (fork.path / ".git" / "info" / "exclude").write_text("build-output/\n")
    (fork.path / "build-output").mkdir()
    (fork.path / "build-output" / "x.whl").write_text("binary\n")
    fork.sync()
    assert fork.report()["status"] == "updated"


@pytest.mark.parametrize("operation", ["rebase", "merge"])
def test_operation_in_progress_stops_with_the_command_to_finish_it(fork: Fork, operation: str) -> None:
    fork.clone()
    if operation == "rebase":
        subprocess.run(["git", "rebase", "--exec", "false", "HEAD~1"], check=False, cwd=fork.path, capture_output=True)
    else:
        git(fork.path, "fetch", "-q", "origin", "release")
        git(fork.path, "merge", "--no-commit", "--no-ff", "FETCH_HEAD")
    before = fork.all_refs()

    message = fork.failure()

    assert f"a {operation} is in progress" in message and f"git {operation} --abort" in message
    assert fork.all_refs() == before


def test_missing_remote_is_added_from_the_config(fork: Fork) -> None:
    fork.clone()
    git(fork.path, "remote", "remove", "upstream")
    fork.sync()
    assert git(fork.path, "remote", "get-url", "upstream") == str(fork.upstream)
    assert fork.report()["status"] == "updated"
    assert git(fork.path, "symbolic-ref", "--short", "HEAD") == "main", "the clone had main checked out"
    assert git(fork.path, "rev-parse", "HEAD") == git(fork.upstream, "rev-parse", "main")
    assert git(fork.path, "status", "--porcelain") == "", "the checked-out main moved with its files"


def test_remote_that_does_not_answer_stops_before_anything_changes(fork: Fork, tmp_path: Path) -> None:
    fork.clone()
    git(fork.path, "remote", "remove", "upstream")
    (tmp_path / "not-a-repo").mkdir()
    config = write_config(tmp_path, tmp_path / "not-a-repo", fork.origin)
    broken = Fork(config, load_settings(config), fork.upstream, fork.origin)
    before = broken.all_refs()

    message = broken.failure()

    assert "the upstream remote does not answer" in message and "git ls-remote" in message
    assert broken.all_refs() == before
    assert not git_ok(fork.path, "remote", "get-url", "upstream"), "no remote was added"


def test_remote_pointing_elsewhere_is_reported_not_repointed(fork: Fork, tmp_path: Path) -> None:
    fork.clone()
    elsewhere = str(tmp_path / "elsewhere.git")
    git(fork.path, "remote", "set-url", "upstream", elsewhere)

    message = fork.failure()

    assert "points at" in message and f"remote set-url upstream {fork.upstream}" in message
    assert git(fork.path, "remote", "get-url", "upstream") == elsewhere


def test_missing_release_branch_is_reported(fork: Fork) -> None:
    fork.clone()
    git(fork.origin, "update-ref", "-d", "refs/heads/release")
    before = fork.all_refs()

    message = fork.failure()

    assert "'release' exists neither in the fork clone nor on origin" in message
    assert fork.all_refs()["origin"] == before["origin"]
    assert {k: v for k, v in fork.all_refs()["fork"].items() if k.startswith("refs/heads/")} == \
        {k: v for k, v in before["fork"].items() if k.startswith("refs/heads/")}


def test_main_with_its_own_commits_is_not_reset(fork: Fork) -> None:
    add_commit(fork.origin, "main", {"LOCAL.md": "fork-only change on main\n"}, "chore: fork-only commit on main")
    before = fork.all_refs()

    message = fork.failure()

    assert "cannot fast-forward" in message and "1 commit(s) upstream does not" in message
    assert "reset --hard upstream/main" in message
    assert fork.all_refs()["origin"] == before["origin"]
    branches = {k: v for k, v in fork.all_refs()["fork"].items() if k.startswith("refs/heads/")}
    assert branches == {"refs/heads/release": before["origin"]["refs/heads/release"]}, "fresh clone, no branch moved"


def test_shallow_clone_is_reported(fork: Fork) -> None:
    git(fork.config.parent, "clone", "-q", "--depth", "1", f"file://{fork.origin}", str(fork.path))
    assert "shallow clone" in fork.failure()


def test_dry_run_changes_no_ref_anywhere(fork: Fork) -> None:
    fork.clone()
    add_commit(fork.upstream, "main", {"NEW.md": "new upstream work\n"}, "feat: more upstream work")
    before = fork.all_refs()

    fork.sync(dry_run=True)

    assert fork.all_refs() == before
    report = fork.report()
    assert report["dry_run"] is True and report["status"] == "skipped" and report["pushed"] == []
    assert report["main"]["count"] == 4 and report["release"]["action"] == "rebase"
    assert git(fork.path, "status", "--porcelain") == ""


def test_dry_run_without_a_clone_creates_nothing(fork: Fork, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKFLOW_DRY_RUN", "1")
    before = fork.all_refs()
    fork.sync()
    assert not fork.path.exists()
    assert fork.all_refs() == before
    assert fork.report()["release"]["action"] == "rebase"


def test_returns_to_a_detached_head(fork: Fork) -> None:
    fork.clone()
    sha = git(fork.path, "rev-parse", "HEAD")
    git(fork.path, "checkout", "-q", "--detach", sha)
    fork.sync()
    assert not git_ok(fork.path, "symbolic-ref", "-q", "HEAD") and git(fork.path, "rev-parse", "HEAD") == sha


def test_old_backups_are_pruned_to_keep_backups(fork: Fork) -> None:
    fork.clone()
    tip = git(fork.path, "rev-parse", "origin/release~1")
    old = [f"backup-before-sync-2025010{day}-000000" for day in range(1, 5)]
    for name in old:
        git(fork.path, "branch", name, tip)

    fork.sync(keep_backups=2)

    report = fork.report()
    assert report["pruned"] == old[:3]
    assert sorted(report["backups"]) == sorted([old[3], report["backup"]])
    assert sorted(git(fork.path, "branch", "--format=%(refname:short)", "--list", "backup-*").split()) == sorted(report["backups"])


def test_doit_sync_on_the_demo_config_then_a_second_run_is_up_to_date(demo_config: Path) -> None:
    env = {**IDENTITY, "FORKFLOW_DRY_RUN": ""}
    first = run_doit(demo_config, "sync", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((demo_config.parent / ".forkflow" / "reports" / "sync.json").read_text())
    assert report["status"] == "updated" and report["main"]["count"] == 3 and len(report["release"]["rebased"]) == 3
    workspace = demo_config.parent / ".forkflow" / "demo"
    snapshot = {name: refs(workspace / name) for name in ("fork", "origin.git", "upstream.git")}

    second = run_doit(demo_config, "sync", env=env)

    assert second.returncode == 0, second.stdout + second.stderr
    for task in ("sync:main", "sync:release", "sync:push"):
        assert f"-- {task}" in second.stdout, second.stdout
    assert {name: refs(workspace / name) for name in snapshot} == snapshot
    assert json.loads((demo_config.parent / ".forkflow" / "reports" / "sync.json").read_text())["status"] == "up-to-date"


def test_doit_sync_conflict_exits_non_zero_with_the_message(fork: Fork) -> None:
    add_commit(fork.upstream, "main", {"src/orbit/_fork.py": "DEFAULT_NAME = 'upstream'\n"}, "feat: upstream takes _fork.py")
    result = run_doit(fork.config, "sync", "--keep-backups", "1", env={**IDENTITY, "FORKFLOW_DRY_RUN": ""})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "conflicting files" in output and "src/orbit/_fork.py" in output and "git rebase --continue" in output
    assert "Traceback" not in output


def origin_backups(fork: Fork) -> dict[str, str]:
    return {ref.removeprefix("refs/heads/"): sha for ref, sha in refs(fork.origin).items() if "backup-before-sync-" in ref}


def test_the_backup_reaches_origin_with_the_rewritten_release(fork: Fork) -> None:
    old_release = git(fork.origin, "rev-parse", "release")
    fork.sync()
    report = fork.report()
    assert origin_backups(fork) == {report["backup"]: old_release}, "a CI runner's clone can be thrown away"
    assert report["origin_backups"] == [report["backup"]]


def test_push_backups_false_keeps_the_backup_in_the_clone_only(fork: Fork, tmp_path: Path) -> None:
    config = write_config(tmp_path, fork.upstream, fork.origin, "push_backups = false\n")
    quiet = Fork(config, load_settings(config), fork.upstream, fork.origin)
    quiet.sync()
    assert origin_backups(quiet) == {} and quiet.report()["backup"]


def test_a_retried_failed_sync_keeps_one_backup(fork: Fork) -> None:
    add_commit(fork.upstream, "main", {"src/orbit/_fork.py": "DEFAULT_NAME = 'upstream'\n"}, "feat: upstream takes _fork.py")
    fork.clone()
    for _ in range(3):
        assert "src/orbit/_fork.py" in fork.failure()
    backups = [ref for ref in refs(fork.path) if "backup-before-sync-" in ref]
    assert len(backups) == 1, backups
    assert fork.report()["backup"] == backups[0].removeprefix("refs/heads/")
    assert origin_backups(fork) == {}, "nothing was pushed: origin's release still has the old tip"


def test_a_fresh_clone_reuses_origins_backup_and_prunes_origins_old_ones(fork: Fork, tmp_path: Path) -> None:
    tip = git(fork.origin, "rev-parse", "release")
    older = git(fork.origin, "rev-parse", "release~1")
    old = [f"backup-before-sync-2025010{day}-000000" for day in range(1, 5)]
    for name in old:
        git(fork.origin, "update-ref", f"refs/heads/{name}", older)
    git(fork.origin, "update-ref", "refs/heads/backup-before-sync-20250105-000000", tip)
    config = write_config(tmp_path, fork.upstream, fork.origin)
    config.write_text(config.read_text().replace("keep_backups = 3", "keep_backups = 2"))
    runner = Fork(config, load_settings(config), fork.upstream, fork.origin)
    runner.sync()
    report = runner.report()
    assert report["backup"] == "backup-before-sync-20250105-000000", "origin already holds a backup of this tip"
    assert report["pruned_on_origin"] == old[:3]
    assert origin_backups(runner) == {old[3]: older, "backup-before-sync-20250105-000000": tip}


def test_a_missing_origin_reports_all_git_said(fork: Fork, tmp_path: Path) -> None:
    gone = tmp_path / "gone.git"
    gone.mkdir()  # the repository was deleted, its folder left behind
    config = write_config(tmp_path, fork.upstream, gone)
    broken = Fork(config, load_settings(config), fork.upstream, gone)
    message = broken.failure()
    assert "the origin remote does not answer" in message
    assert "does not appear to be a git repository" in message and "Could not read from remote repository" in message


def test_credentials_in_a_remote_url_are_never_shown(fork: Fork, tmp_path: Path) -> None:
    from tests.helpers import free_port

    secret = "Sekrit-9f1c"
    config = write_config(tmp_path, fork.upstream, f"http://forkuser:{secret}@127.0.0.1:{free_port()}/o.git")  # type: ignore[arg-type]
    result = run_doit(config, "sync")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "the origin remote does not answer: http://forkuser:********@127.0.0.1:" in output
    assert secret not in output
    report = (tmp_path / ".forkflow" / "reports" / "sync.json").read_text()
    assert '"status": "failed"' in report and secret not in report
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[project]\nname = "orbit"\n[environments.dev]\nprefect_api_url = "http://u:{secret}@127.0.0 .1/api"\n')
    refused = run_doit(bad, "list")
    assert refused.returncode == 2 and "a URL cannot contain spaces" in refused.stderr
    assert secret not in refused.stderr + refused.stdout


# -- sync:fetch is up to date only while the remotes and the clone show nothing new (doit sync) --


def sync(fork: Fork, *args: str, options: tuple[str, ...] = ()) -> str:
    result = run_doit(fork.config, *options, "sync", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def settle(fork: Fork) -> None:
    """A real sync, then a fetch that finds nothing moved (it records what it saw)."""
    sync(fork)
    assert "nothing moved since the last sync" in sync(fork)


def why(output: str, task: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(task + " "))
    return line.rsplit("(", 1)[-1].rstrip(")")


def test_fetch_is_up_to_date_until_upstream_gains_a_tag(fork: Fork) -> None:
    settle(fork)
    quiet = sync(fork)
    assert status_of(quiet, "sync:fetch") == "up-to-date" and status_of(quiet, "sync:push") == "up-to-date"

    git(fork.upstream, "tag", "-a", "-m", "release 9.9.9", "9.9.9", "main")
    tagged = sync(fork)
    assert status_of(tagged, "sync:fetch") == "ran" and why(tagged, "sync:fetch") == "upstream's main or tags moved"
    assert "9.9.9" in git(fork.path, "tag").split(), "the new tag is fetched although main did not move"
    assert status_of(tagged, "sync:push") == "ran", "the new version tag goes to origin"
    assert git(fork.origin, "rev-parse", "9.9.9") == git(fork.upstream, "rev-parse", "9.9.9")
    looked = sync(fork)
    assert status_of(looked, "sync:fetch") == "ran" and status_of(looked, "sync:push") == "up-to-date"
    assert status_of(sync(fork), "sync:fetch") == "up-to-date"


def test_a_new_upstream_commit_is_fetched_and_synced(fork: Fork) -> None:
    settle(fork)
    new = add_commit(fork.upstream, "main", {"NEWS.md": "news\n"}, "upstream: news")
    moved = sync(fork)
    assert status_of(moved, "sync:fetch") == "ran" and status_of(moved, "sync:main") == "ran"
    assert git(fork.origin, "rev-parse", "main") == new


def test_origin_moved_by_someone_else_runs_the_fetch(fork: Fork) -> None:
    settle(fork)
    add_commit(fork.origin, "release", {"fork-only.txt": "x\n"}, "fork: a teammate's commit")
    moved = sync(fork)
    assert status_of(moved, "sync:fetch") == "ran" and why(moved, "sync:fetch") == "origin's branches moved"


def test_a_dirty_clone_still_stops_the_sync(fork: Fork) -> None:
    settle(fork)
    stray = fork.path / "scratch.txt"
    stray.write_text("not committed\n")
    stopped = run_doit(fork.config, "sync")
    assert stopped.returncode != 0 and "is not clean" in stopped.stdout + stopped.stderr
    stray.unlink()
    again = sync(fork)
    assert status_of(again, "sync:fetch") == "ran", "a failed fetch leaves no record behind"
    assert status_of(sync(fork), "sync:fetch") == "up-to-date"


def test_a_changed_fork_config_and_dry_run_look_again(fork: Fork) -> None:
    settle(fork)
    assert why(sync(fork, "--dry-run"), "sync:fetch") == "dry run"
    text = fork.config.read_text()
    fork.config.write_text(text.replace("keep_backups = 3", "keep_backups = 4"))
    changed = sync(fork)
    assert status_of(changed, "sync:fetch") == "ran" and why(changed, "sync:fetch") == "the [fork] config changed"


def test_several_worker_processes_give_the_same_answer(fork: Fork) -> None:
    settle(fork)
    assert status_of(sync(fork, options=("-n", "2")), "sync:fetch") == "up-to-date"
    add_commit(fork.upstream, "main", {"NEWS.md": "more\n"}, "upstream: more news")
    assert status_of(sync(fork, options=("-n", "2")), "sync:fetch") == "ran"


def test_no_record_means_the_fetch_runs(fork: Fork, tmp_path: Path) -> None:
    settle(fork)
    (tmp_path / ".forkflow" / "sync" / "fetched.json").unlink()
    assert why(sync(fork), "sync:fetch") == "no fetch since the last change found everything in place"


@pytest.mark.parametrize("module", ["tasks.stages.sync", "tasks.sync"])  # the second: workflows rendered earlier
def test_the_job_summary_entry_point(tmp_path: Path, module: str) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text('[project]\nname = "orbit"\n')
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    missing = subprocess.run([sys.executable, "-m", module, "summary"], check=False, capture_output=True, text=True,
                             env=env, cwd=REPO)
    assert missing.returncode == 1 and missing.stdout.startswith("## Sync: no report"), missing.stderr
    (tmp_path / ".forkflow" / "reports").mkdir(parents=True)
    report = {"status": "ok", "dry_run": False, "fork": "/f", "main": None, "release": None, "backup": None,
              "backups": [], "pushed": [], "plan": []}
    (tmp_path / ".forkflow" / "reports" / "sync.json").write_text(json.dumps(report))
    found = subprocess.run([sys.executable, "-m", module, "summary"], check=False, capture_output=True, text=True,
                           env=env, cwd=REPO)
    assert found.returncode == 0 and found.stdout.startswith("## Sync"), found.stderr
    wrong = subprocess.run([sys.executable, "-m", module, "other"], check=False, capture_output=True, text=True,
                           env=env, cwd=REPO)
    assert wrong.returncode == 2 and "usage: python -m tasks.stages.sync summary" in wrong.stderr


# -- version tags travel to origin, and the fork's own tags follow a rebase --------------------------

UPSTREAM_VERSION_TAGS = ["1.0.0", "1.0.1", "1.1.0.dev1", "orbit-aws-0.1.0", "orbit-aws-0.2.0", "orbit-gcp-0.1.0",
                         "orbit-gcp-0.2.0rc1", "orbit-slack-0.1.0", "orbit-slack-0.1.1"]


def drop_tags(bare: Path) -> None:
    for name in git(bare, "tag").split():
        git(bare, "update-ref", "-d", f"refs/tags/{name}")


def fresh_clone_tags(fork: Fork, tmp_path: Path) -> list[str]:
    runner = tmp_path / "runner"
    git(tmp_path, "clone", "-q", str(fork.origin), str(runner))
    return sorted(git(runner, "tag").split())


def commit_with_subject(repo: Path, revision: str, subject: str) -> str:
    return git(repo, "log", "--format=%H", "--fixed-strings", f"--grep={subject}", revision).splitlines()[0]


def tags_of(repo: Path) -> dict[str, str]:
    return {ref: sha for ref, sha in refs(repo).items() if ref.startswith("refs/tags/")}


def test_upstream_version_tags_reach_origin_and_a_second_sync_pushes_nothing(fork: Fork, tmp_path: Path) -> None:
    drop_tags(fork.origin)  # what a fork made on a hosting site has: no tags
    side = add_commit(fork.upstream, "main", {"OLD.md": "maintenance\n"}, "chore: on an old branch",
                      parent=git(fork.upstream, "rev-parse", "main~7"))
    git(fork.upstream, "tag", "0.9.9", side)  # a version tag off main's history
    git(fork.upstream, "tag", "nightly", "main")  # not a version tag
    (tmp_path / "before").mkdir()
    assert fresh_clone_tags(fork, tmp_path / "before") == []

    fork.sync()

    assert fresh_clone_tags(fork, tmp_path) == sorted(UPSTREAM_VERSION_TAGS)
    for name in UPSTREAM_VERSION_TAGS:
        assert git(fork.origin, "rev-parse", f"refs/tags/{name}") == git(fork.upstream, "rev-parse", f"refs/tags/{name}")
    report = fork.report()
    assert sorted(report["tags"]["pushed"]) == sorted(UPSTREAM_VERSION_TAGS)
    assert report["pushed"] == ["refs/heads/main", "refs/heads/release"] and report["tags"]["moved"] == []
    before = fork.all_refs()

    fork.sync()

    assert fork.all_refs()["origin"] == before["origin"]
    again = fork.report()
    assert again["status"] == "up-to-date" and again["tags"]["pushed"] == [] and again["tags"]["to_push"] == []


def test_a_fork_tag_moves_with_its_rebased_commit_here_and_on_origin(fork: Fork, tmp_path: Path) -> None:
    fix = "fix(aws): use the internal S3 endpoint"
    tagged = commit_with_subject(fork.origin, "release", fix)
    git(fork.origin, "tag", "orbit-aws-0.2.1", tagged)
    fork.clone()
    tip = git(fork.origin, "rev-parse", "release")
    git(fork.origin, "tag", "-a", "-m", "flows 0.3.0", "orbit-gcp-0.3.0", tip)  # annotated, only on origin so far
    old_object = git(fork.origin, "rev-parse", "refs/tags/orbit-gcp-0.3.0")

    fork.sync()

    rebased = commit_with_subject(fork.origin, "release", fix)
    assert rebased != tagged and git(fork.origin, "merge-base", "--is-ancestor", "main", "release") == ""
    new_tip = git(fork.origin, "rev-parse", "release")
    for repo in (fork.origin, fork.path):
        assert git(repo, "rev-parse", "orbit-aws-0.2.1^{commit}") == rebased
        assert git(repo, "rev-parse", "orbit-gcp-0.3.0^{commit}") == new_tip
        assert git(repo, "cat-file", "-t", "orbit-gcp-0.3.0") == "tag", "an annotated tag stays annotated"
    assert git(fork.path, "cat-file", "tag", "orbit-gcp-0.3.0").endswith("flows 0.3.0")
    assert git(fork.origin, "rev-parse", "refs/tags/orbit-gcp-0.3.0") != old_object
    report = fork.report()
    assert {(t["name"], t["old"], t["new"]) for t in report["tags"]["moved"]} == {
        ("orbit-aws-0.2.1", tagged, rebased), ("orbit-gcp-0.3.0", tip, new_tip)}
    assert git(fork.path, "rev-parse", report["backup"]) == tip, "the backup keeps the old commits"
    assert git(fork.path, "symbolic-ref", "--short", "HEAD") == "main" and git(fork.path, "status", "--porcelain") == ""
    runner = tmp_path / "runner"
    git(tmp_path, "clone", "-q", "--branch", "release", str(fork.origin), str(runner))
    assert git(runner, "describe", "--tags", "--abbrev=0", "--match", "orbit-aws-*[0-9]*") == "orbit-aws-0.2.1"

    before = fork.all_refs()
    fork.sync()
    assert fork.all_refs()["origin"] == before["origin"] and fork.report()["tags"]["moved"] == []


def test_a_fork_tag_on_a_commit_upstream_absorbed_refuses_and_changes_nothing(fork: Fork) -> None:
    fix = "fix(aws): use the internal S3 endpoint"
    tagged = commit_with_subject(fork.origin, "release", fix)
    git(fork.origin, "tag", "orbit-aws-0.2.1", tagged)
    add_commit(fork.upstream, "main", {"src/integrations/orbit-aws/orbit_aws/_endpoint.py":
                                       "ENDPOINT = \"https://s3.internal.example\"\n"}, "fix(aws): internal endpoint (upstreamed)")
    fork.clone()
    git(fork.path, "fetch", "-q", "--tags", "upstream")  # a sync fetches first: compare with what that fetch brings
    git(fork.path, "checkout", "-q", "release")
    before = fork.all_refs()

    message = fork.failure()

    assert f"tag orbit-aws-0.2.1: on the 'release' commit {tagged[:10]} {fix}" in message
    assert "upstream already has its change" in message
    assert f"git -C {fork.path} tag -f orbit-aws-0.2.1 <commit>" in message
    assert f"git -C {fork.path} tag -d orbit-aws-0.2.1" in message
    after = fork.all_refs()
    assert after["origin"] == before["origin"], "nothing was pushed"
    local = {ref: sha for ref, sha in after["fork"].items() if not ref.startswith("refs/remotes/")}
    assert local == {ref: sha for ref, sha in before["fork"].items() if not ref.startswith("refs/remotes/")}
    assert fork.report()["status"] == "failed"


def test_a_tagged_commit_the_rebase_empties_is_caught_before_the_branch_moves(fork: Fork) -> None:
    fix = "fix(aws): use the internal S3 endpoint"
    tagged = commit_with_subject(fork.origin, "release", fix)
    git(fork.origin, "tag", "orbit-aws-0.2.1", tagged)
    add_commit(fork.upstream, "main", {"src/integrations/orbit-aws/orbit_aws/_endpoint.py":
                                       "ENDPOINT = \"https://s3.internal.example\"\n", "NEWS.md": "endpoint\n"},
               "feat(aws): endpoint and news")  # another patch, so only the rebase itself finds the commit empty
    fork.clone()
    git(fork.path, "checkout", "-q", "release")
    release = git(fork.path, "rev-parse", "release")
    origin_before = refs(fork.origin)

    message = fork.failure()

    assert "so it was not applied" in message and "orbit-aws-0.2.1" in message and tagged[:10] in message
    assert git(fork.path, "rev-parse", "release") == release and git(fork.path, "rev-parse", "orbit-aws-0.2.1") == tagged
    assert git(fork.path, "symbolic-ref", "--short", "HEAD") == "release" and git(fork.path, "status", "--porcelain") == ""
    assert refs(fork.origin) == origin_before


@pytest.mark.parametrize("clone", ["before the tag", "by the sync"])
def test_a_tag_origin_has_on_another_commit_refuses_before_anything_is_pushed(fork: Fork, clone: str) -> None:
    if clone == "before the tag":
        fork.clone()
    elsewhere = git(fork.origin, "rev-parse", "main")
    git(fork.origin, "tag", "orbit-slack-0.1.1", elsewhere)
    upstream_commit = git(fork.upstream, "rev-parse", "orbit-slack-0.1.1")
    before = refs(fork.origin)

    message = fork.failure()

    if clone == "before the tag":
        assert (f"tag orbit-slack-0.1.1: upstream has it on commit {upstream_commit[:10]}, "
                f"origin on commit {elsewhere[:10]}") in message
        assert f"--force-with-lease=refs/tags/orbit-slack-0.1.1:{elsewhere} origin refs/tags/orbit-slack-0.1.1" in message
    else:  # the clone has origin's copy of the tag: the fetch of upstream's tags would overwrite it
        assert (f"tag orbit-slack-0.1.1: on commit {elsewhere[:10]} here (origin has it on commit {elsewhere[:10]} too), "
                f"upstream has it on commit {upstream_commit[:10]}") in message
        assert "nothing was fetched or changed" in message
        assert f"git -C {fork.path} fetch upstream refs/tags/orbit-slack-0.1.1:refs/tags/orbit-slack-0.1.1" in message
        assert git(fork.path, "rev-parse", "orbit-slack-0.1.1") == elsewhere
    assert refs(fork.origin) == before
    assert refs(fork.path).get("refs/heads/release", before["refs/heads/release"]) == before["refs/heads/release"]
    assert not [ref for ref in refs(fork.path) if "backup-before-sync-" in ref], "the release was not rebased"


def test_dry_run_reports_the_tags_and_changes_nothing(fork: Fork) -> None:
    drop_tags(fork.origin)
    git(fork.origin, "tag", "orbit-aws-0.2.1", commit_with_subject(fork.origin, "release", "fix(aws): use the internal"))
    fork.clone()
    before = fork.all_refs()

    output = sync(fork, "--dry-run")

    assert "would push 9 tag(s) to origin: 1.0.0, 1.0.1" in output and "would move tag orbit-aws-0.2.1" in output
    assert fork.all_refs() == before
    report = fork.report()
    assert report["status"] == "skipped" and report["tags"]["pushed"] == [] and len(report["tags"]["to_push"]) == 9
    assert [t["name"] for t in report["tags"]["to_move"]] == ["orbit-aws-0.2.1"]


def test_a_version_tag_deleted_on_origin_is_pushed_again(fork: Fork) -> None:
    settle(fork)
    assert status_of(sync(fork), "sync:fetch") == "up-to-date"
    tagged = git(fork.origin, "rev-parse", "refs/tags/1.0.1")
    git(fork.origin, "update-ref", "-d", "refs/tags/1.0.1")
    again = sync(fork)
    assert status_of(again, "sync:fetch") == "ran" and why(again, "sync:fetch") == "origin's tags changed"
    assert status_of(again, "sync:push") == "ran" and git(fork.origin, "rev-parse", "refs/tags/1.0.1") == tagged


def test_a_parallel_run_versions_the_release_branch_as_the_sync_leaves_it(fork: Fork) -> None:
    """doit's workers (`-n 2`) do not keep the command line's order: the version still waits for the sync, so it is
    made from the rebased release branch, never from the branch as it was before the sync moved it."""
    settle(fork)
    add_commit(fork.upstream, "main", {"NEWS.md": "news\n"}, "upstream: news")
    result = run_doit(fork.config, "-n", "2", "sync", "version")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    head = git(fork.path, "rev-parse", "release")
    report = json.loads((fork.config.parent / ".forkflow" / "reports" / "version.json").read_text())
    core = next(entry["version"] for entry in report["packages"] if entry["name"] == "orbit")
    assert head.startswith(core.rsplit(".g", 1)[1]), (head, core)  # the core's version names the commit it is made from
    # a run that does not name the sync does not sync
    before = git(fork.origin, "rev-parse", "main")
    add_commit(fork.upstream, "main", {"NEWS.md": "more news\n"}, "upstream: more news")
    assert run_doit(fork.config, "-n", "2", "version").returncode == 0
    assert git(fork.origin, "rev-parse", "main") == before
