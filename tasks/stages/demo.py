"""Stage `demo`: generate the demo workspace from examples/demo.

The workspace holds two bare repositories: `upstream.git`, laid out like
Prefect (core, client recipe, integrations, flows; release and dev tags,
commits after the last tag), and `origin.git`, the fork: its main behind
upstream and a `release` branch with custom commits. It is built in a
staging folder and swapped in whole, so an interrupted run leaves either the
old workspace or none, never half of one. Commit dates are fixed, so commit
ids are the same on every machine.

Whether the workspace is current is read from the workspace itself: its
stamp records a digest of the sources it was made from, so a lost or
rebuilt doit database costs a re-check, never a regeneration (which would
throw away what the pipeline did in it, or refuse and block every task).
Staging and retired folders that a failed or killed run left beside the
workspace are removed by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters.console import say
from tasks.adapters.git import Git, init_repo
from tasks.core.demo import Commit, DemoPlan, foreign_commits, parse_history
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, Cleaner
from tasks.pipeline.settings import read_json, settings

STAMP = "demo.json"
HERE = Path(__file__).resolve()


def task_demo() -> dict[str, Any]:
    """Generate the demo workspace (upstream and origin bare repositories)."""
    current = settings()
    doc = "generate the demo workspace: upstream.git and origin.git (the fork) from examples/demo"
    if current.config.demo is None or current.demo_workspace is None:
        return missing_section_task("demo", "demo", doc)
    source = current.path(current.config.demo.source)
    workspace = current.demo_workspace
    return {
        "doc": doc,
        "actions": [guarded(partial(generate_action, source, workspace))],
        "uptodate": [Check("the workspace was generated from the demo sources as they are now",
                           partial(workspace_current, source, workspace))],
        "targets": [str(workspace / STAMP)],
        "clean": [Cleaner(f"remove the demo workspace {workspace}", remove_workspace, workspace)],
        "verbosity": 2,
    }


def source_files(source: Path) -> list[str]:
    return sorted(str(p) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def sources_digest(source: Path) -> str:
    """What the workspace is made from: every source file (name and content) and the generator's own code."""
    digest = hashlib.sha256()
    generator = [HERE, HERE.parents[1] / "core" / "demo.py"]
    for file in [Path(name) for name in source_files(source)] + generator:
        name = file.relative_to(source).as_posix() if file.is_relative_to(source) else file.name
        digest.update(f"{name}\0".encode() + file.read_bytes() + b"\0")
    return digest.hexdigest()


def workspace_current(source: Path, workspace: Path, task: Any = None, values: Any = None) -> bool:
    """True when the workspace's stamp names the digest of the sources as they are now."""
    stamp = read_json(workspace / STAMP)
    return stamp is not None and stamp.get("sources") == sources_digest(source)


def generate_action(source: Path, workspace: Path) -> dict[str, str]:
    remove_leftovers(workspace)
    try:
        summary = generate(source, workspace)
    except OSError as err:
        raise ForkflowError(f"the demo workspace could not be written: {err.strerror or err}",
                            where=str(err.filename or workspace),
                            fix="free disk space (or fix the folder's permissions) and run again; "
                                "the workspace was left as it was") from None
    say(f"demo workspace ready at {workspace}: upstream {summary['upstream_main'][:7]}, "
        f"fork main {summary['origin_main'][:7]}, release {summary['origin_release'][:7]}")
    return {"made": str(workspace)}


def generate(source: Path, workspace: Path) -> dict[str, Any]:
    """Build the workspace in a staging folder, then swap it in; return the stamp data. A failed build (a full
    disk) removes its staging folder and leaves the workspace as it was."""
    plan = parse_history((source / "history.toml").read_text(encoding="utf-8"), str(source / "history.toml"))
    refuse_to_replace_work(workspace, plan)
    staging = workspace.parent / f".{workspace.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        stamp = build_staging(source, staging, plan, workspace)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, workspace)
    return stamp


def build_staging(source: Path, staging: Path, plan: DemoPlan, workspace: Path) -> dict[str, Any]:
    work = staging / "work"
    git = init_repo(work)
    shas = build_upstream(git, plan, source)
    run_clone_bare(work, staging / "upstream.git")
    release_tip = build_release(git, plan, shas[plan.main_at - 1])
    build_origin(git, staging / "origin.git", shas[plan.main_at - 1])
    shutil.rmtree(work)
    stamp = {
        "upstream_main": shas[-1],
        "origin_main": shas[plan.main_at - 1],
        "origin_release": release_tip,
        "upstream_tags": sorted(tag for commit in plan.upstream for tag in commit.tags),
        "origin": str(workspace / "origin.git"),
        "sources": sources_digest(source),
    }
    (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return stamp


def refuse_to_replace_work(workspace: Path, plan: DemoPlan) -> None:
    """Stop before regenerating when the workspace holds anything the demo (or the pipeline's own rebases) did not make."""
    found = work_in(workspace, plan) if workspace.exists() else []
    if found:
        raise ForkflowError(
            "the demo workspace holds work the demo did not make; regenerating it would delete it:\n"
            + "\n".join(f"  - {item}" for item in found),
            where=str(workspace),
            fix="keep it (push it elsewhere or move the folder away), or start over on purpose, deleting it: "
                "python3 -m doit clean demo && python3 -m doit demo",
        )


def work_in(workspace: Path, plan: DemoPlan) -> list[str]:
    found: list[str] = []
    for entry in sorted(workspace.iterdir()):
        if entry.name in (STAMP, STAMP + ".corrupt"):  # its stamp, or a corrupt one set aside
            continue
        if (entry / ".git").exists():
            found += uncommitted(entry)
        if (entry / ".git").exists() or is_bare_repository(entry):
            found += [f"{entry.name}: commit {line}" for line in commits_not_made(entry, plan)]
        else:
            found.append(f"{entry.name}: not made by the demo")
    return found


def is_bare_repository(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def uncommitted(clone: Path) -> list[str]:
    changes = Git(clone).read("status", "--porcelain", "--untracked-files=all").splitlines()
    shown = ", ".join(line.split(None, 1)[-1] for line in changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
    return [f"{clone.name}: {len(changes)} uncommitted change(s): {shown}"] if changes else []


def commits_not_made(repo: Path, plan: DemoPlan) -> list[str]:
    log = Git(repo).read("log", "--all", "--format=%h%x00%an%x00%ae%x00%at%x00%s")
    return foreign_commits(log, plan.signatures())


def build_upstream(git: Git, plan: DemoPlan, source: Path) -> list[str]:
    shas = []
    for index, commit in enumerate(plan.upstream):
        shas.append(make_commit(git, plan, index, commit, source))
    return shas


def build_release(git: Git, plan: DemoPlan, base: str) -> str:
    git.write("checkout", "-q", "-b", "release", base)
    tip = base
    for offset, commit in enumerate(plan.release):
        tip = make_commit(git, plan, len(plan.upstream) + offset, commit, git.repo)
    return tip


def build_origin(git: Git, origin: Path, main_sha: str) -> Path:
    init_repo(origin, bare=True)
    tags = git.read("tag", "--merged", main_sha).split()
    git.write("push", "-q", str(origin), f"{main_sha}:refs/heads/main", "release:refs/heads/release",
              *[f"refs/tags/{tag}:refs/tags/{tag}" for tag in tags])
    Git(origin).write("symbolic-ref", "HEAD", "refs/heads/main")
    return origin


def make_commit(git: Git, plan: DemoPlan, index: int, commit: Commit, source: Path) -> str:
    apply_changes(git.repo, commit, source)
    date = plan.date_of(index)
    git.env.update({
        "GIT_AUTHOR_NAME": plan.author_name, "GIT_AUTHOR_EMAIL": plan.author_email,
        "GIT_COMMITTER_NAME": plan.author_name, "GIT_COMMITTER_EMAIL": plan.author_email,
        "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
    })
    git.write("add", "-A")
    for path, sha in commit.gitlinks.items():
        (git.repo / path).mkdir(parents=True, exist_ok=True)  # an empty folder: a submodule not checked out
        git.write("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
    git.write("commit", "-q", "-m", commit.message)
    for tag in commit.tags:
        git.write("tag", tag)
    return git.read("rev-parse", "HEAD")


def apply_changes(tree: Path, commit: Commit, source: Path) -> None:
    if commit.copy:
        shutil.copytree(source / commit.copy, tree, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
    for name, text in commit.write.items():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for name, text in commit.append.items():
        with (tree / name).open("a", encoding="utf-8") as handle:
            handle.write(text)


def run_clone_bare(work: Path, target: Path) -> None:
    Git(work.parent).write("clone", "-q", "--bare", str(work), str(target))


def swap_in(staging: Path, workspace: Path) -> None:
    """Replace the workspace with the staged one; the old one is removed only after."""
    workspace.parent.mkdir(parents=True, exist_ok=True)
    retired = workspace.parent / f".{workspace.name}.old-{os.getpid()}"
    if workspace.exists():
        workspace.rename(retired)
    staging.rename(workspace)
    shutil.rmtree(retired, ignore_errors=True)


def remove_leftovers(workspace: Path) -> None:
    """Remove the staging (`.<name>.building-<pid>`) and retired (`.<name>.old-<pid>`) folders of runs whose
    process is gone: a run that failed (a full disk) or was killed leaves them behind."""
    if not workspace.parent.is_dir():
        return
    for kind in ("building", "old"):
        for folder in workspace.parent.glob(f".{workspace.name}.{kind}-*"):
            pid = folder.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                say(f"removed {folder.name}, left by an earlier run that did not finish")


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run's own name: a leftover of an earlier process that had the same pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_workspace(workspace: Path) -> None:
    shutil.rmtree(workspace, ignore_errors=True)
    say(f"removed {workspace}")
