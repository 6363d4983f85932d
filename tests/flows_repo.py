"""Real git repositories of flows and pipeline.toml files around them, for the flows/deploy tests."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from tasks.adapters.git import Git, init_repo
from tests.helpers import REPO

DEMO_FLOWS = REPO / "examples" / "demo" / "upstream" / "flows"
IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def flows_repo(root: Path, files: dict[str, str] | None = None, *, demo: bool = True, branch: str = "release") -> Path:
    """A git repository at root/repo whose flows/ folder holds the demo flows (and `files`), committed on `branch`."""
    repo = root / "repo"
    flows = repo / "flows"
    if demo:
        shutil.copytree(DEMO_FLOWS, flows, ignore=shutil.ignore_patterns("__pycache__"))
    flows.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        target = flows / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git = init_repo(repo)
    git.env.update(IDENTITY)
    git.write("checkout", "-q", "-b", branch)
    commit_all(repo, "flows")
    return flows


def commit_all(repo: Path, message: str) -> str:
    git = Git(repo, env=IDENTITY)
    git.write("add", "-A")
    git.write("commit", "-q", "--allow-empty", "-m", message)
    return git.read("rev-parse", "HEAD")


def unique_project() -> str:
    return "t" + uuid.uuid4().hex[:10]


def write_config(root: Path, api_url: str, *, project: str, pools: tuple[str, str] = ("ff-dev", "ff-prod"),
                 extra: str = "", prod_branch: str = "main", dev_branch: str = "*") -> Path:
    """pipeline.toml with [flows] on root/repo/flows and a dev and a prod environment on one server."""
    config = root / "pipeline.toml"
    config.write_text(f"""state_dir = ".forkflow"

[project]
name = "{project}"

[flows]
path = "repo/flows"
config = "repo/flows/deployments.yaml"
{extra}
[environments.dev]
prefect_api_url = "{api_url}"
work_pool = "{pools[0]}"
branch = "{dev_branch}"

[environments.prod]
prefect_api_url = "{api_url}"
work_pool = "{pools[1]}"
branch = "{prod_branch}"
schedules = true
""", encoding="utf-8")
    return config
