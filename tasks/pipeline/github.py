"""Which GitHub repository the fork's pull requests and releases go to, shared by the GitHub stages."""

from __future__ import annotations

import os

from tasks.adapters.github import GitHubError
from tasks.core.github_text import choose_repository
from tasks.core.workflows import github_section
from tasks.pipeline.settings import Settings


def fork_repository(current: Settings) -> str:
    """`[github] repository`, else the owner/name in `[fork] origin`'s URL, else `$GITHUB_REPOSITORY`."""
    fork = current.config.fork
    repository = choose_repository(github_section(current.config).repository, fork.origin if fork else None,
                                   os.environ.get("GITHUB_REPOSITORY", "").strip())
    if repository is None:
        raise GitHubError("no GitHub repository for the fork", where=f"{current.config_file}: [github] repository",
                          fix="set [github] repository = \"owner/name\" (or run it in GitHub Actions)")
    return repository
