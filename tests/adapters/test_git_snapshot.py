"""Build checkouts and working-tree commits on a real git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tasks.adapters.git import build_tree, cone_patterns, working_tree_commit

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(folder: Path) -> Path:
    repo = folder / "repo"
    (repo / "src" / "integrations" / "aws" / "aws").mkdir(parents=True)
    (repo / "src" / "core").mkdir(parents=True)
    (repo / "README.md").write_text("readme\n")
    (repo / "src" / "core" / "x.py").write_text("X = 1\n")
    (repo / "src" / "integrations" / "aws" / "aws" / "__init__.py").write_text("")
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", "-A")
    (repo / "compat-tests").mkdir()  # a submodule that is not checked out, as a clone leaves it
    git(repo, "update-index", "--add", "--cacheinfo", "160000,5b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c,compat-tests")
    git(repo, "commit", "-qm", "one")
    git(repo, "tag", "1.0.0")
    git(repo, "tag", "1.1.0.dev1")
    return repo


def test_working_tree_commit_leaves_branch_and_index_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    assert working_tree_commit(repo) == head, "a clean tree is HEAD itself"
    (repo / "src" / "core" / "x.py").write_text("X = 2\n")
    (repo / "src" / "core" / "new.py").write_text("NEW = 1\n")
    status = git(repo, "status", "--porcelain")
    snapshot = working_tree_commit(repo)
    assert snapshot != head and git(repo, "rev-parse", f"{snapshot}^") == head
    assert git(repo, "show", f"{snapshot}:src/core/x.py") == "X = 2"
    assert git(repo, "show", f"{snapshot}:src/core/new.py") == "NEW = 1"
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status
    assert working_tree_commit(repo) == snapshot, "the same tree gives the same commit"


def test_build_tree_has_only_the_version_tag_and_no_submodule_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    target = tmp_path / "build"
    build_tree(repo, git(repo, "rev-parse", "HEAD"), target, tag="1.0.0")
    assert git(target, "tag") == "1.0.0"
    assert git(target, "describe", "--tags", "--dirty") == "1.0.0"
    assert (target / "compat-tests").is_dir() and not any((target / "compat-tests").iterdir())
    assert (target / "src" / "core" / "x.py").read_text() == "X = 1\n"


def test_sparse_build_tree_holds_root_files_and_the_package(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    target = tmp_path / "build"
    build_tree(repo, git(repo, "rev-parse", "HEAD"), target, tag=None, sparse=["src/integrations/aws"])
    assert (target / "README.md").exists() and (target / "src" / "integrations" / "aws" / "aws" / "__init__.py").exists()
    assert not (target / "src" / "core").exists()
    assert "/src/integrations/aws/" in cone_patterns(["src/integrations/aws"])
