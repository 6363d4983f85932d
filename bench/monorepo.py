"""A generated monorepo shaped like Prefect: core, client recipe, 18 integrations, a flows project.

Used by the benchmarks. Built from the demo's sources: the demo's three
integrations become eighteen, each with its own tag, and the fork is a bare
repository that the pipeline clones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.common import sized

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo" / "upstream"
INTEGRATIONS = sized((
    "aws", "azure", "bitbucket", "dask", "databricks", "dbt", "docker", "email", "gcp", "github",
    "gitlab", "kubernetes", "ray", "redis", "shell", "slack", "snowflake", "sqlalchemy",
), ("aws", "kubernetes", "redis"))
ENV = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "Bench",
       "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
       "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00", "PATH": "/usr/bin:/bin:/usr/local/bin"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args], cwd=repo,
                          env=ENV, capture_output=True, text=True, check=True).stdout.strip()


def make_tree(work: Path, names: tuple[str, ...] = INTEGRATIONS) -> None:
    shutil.copytree(DEMO, work, ignore=shutil.ignore_patterns("integrations", "__pycache__"))
    template = DEMO / "src" / "integrations" / "orbit-aws"
    for name in names:
        target = work / "src" / "integrations" / f"orbit-{name}"
        shutil.copytree(template, target, ignore=shutil.ignore_patterns("__pycache__"))
        (target / "orbit_aws").rename(target / f"orbit_{name}")
        for file in target.rglob("*"):
            if file.is_file():
                file.write_text(file.read_text().replace("aws", name))
        for index in range(sized(40, 4)):
            (target / f"orbit_{name}" / f"module_{index}.py").write_text(f"VALUE = {index}\n")
    for index in range(sized(200, 5)):
        module = work / "src" / "orbit" / "extras" / f"part_{index}.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(f"PART = {index}\n")


def generate(folder: Path, names: tuple[str, ...] = INTEGRATIONS) -> Path:
    """Create <folder>/work (source), <folder>/origin.git and <folder>/pipeline.toml; return the config."""
    work = folder / "work"
    make_tree(work, names)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "feat: monorepo")
    git(work, "tag", "3.1.0")
    for name in names:
        git(work, "tag", f"orbit-{name}-0.4.0")
    git(work, "branch", "release")
    git(folder, "clone", "-q", "--bare", str(work), str(folder / "origin.git"))
    config = folder / "pipeline.toml"
    config.write_text("""state_dir = ".forkflow"
default_writes = ["sync", "publish", "image", "deploy"]
[project]
name = "bench"
[fork]
path = "fork"
upstream = "origin.git"
origin = "origin.git"
[packages]
client_remove = ["src/orbit/cli", "src/orbit/server", "src/orbit/testing"]
""")
    return config


def package_dirs(fork: Path) -> list[Path]:
    """Where a release script would run `python -m build` (the client needs its recipe first)."""
    return [fork] + sorted((fork / "src" / "integrations").iterdir())
