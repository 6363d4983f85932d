"""Benchmark: `sync` of a fork whose upstream gained 500 commits and whose release carries 20 custom commits.

Ours is the sync stage (pre-flight checks, fetch, plan, fast-forward main,
backup, rebase, atomic push with lease, pruning, report); the baseline is
the same steps as a plain shell script of git commands, with no checks
beyond a clean-tree test. Both start from identical copies of the same
repositories (a 1,000-file tree, like a small monorepo); copying is not
timed. Each is run several times, interleaved, and the median is kept.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, print_results, stopwatch

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_COMMITS = 500
CUSTOM_COMMITS = 20
FILES = 1000
ROUNDS = 9
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}

BASELINE_SCRIPT = r"""
set -euo pipefail
cd "$1"
original=$(git symbolic-ref --quiet --short HEAD)
test -z "$(git status --porcelain)"
git fetch --quiet --tags upstream +refs/heads/main:refs/remotes/upstream/main
git fetch --quiet origin +refs/heads/main:refs/remotes/origin/main +refs/heads/release:refs/remotes/origin/release
lease=$(git rev-parse refs/remotes/origin/release)
git fetch --quiet . refs/remotes/upstream/main:refs/heads/main
git branch "backup-before-sync-$(date -u +%Y%m%d-%H%M%S)" release
git rebase --quiet upstream/main release
git push --quiet --atomic --force-with-lease=refs/heads/release:"$lease" origin main release
git checkout --quiet "$original"
"""


def git(cwd: Path, *args: str, input_text: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=input_text, capture_output=True, text=True, check=True,
                          env={**os.environ, **IDENTITY}).stdout.strip()


def history_stream() -> str:
    """A fast-import stream: a base tree, 500 upstream commits on top, 20 custom commits on a release branch."""
    parts: list[str] = []
    mark = 0

    def commit(ref: str, message: str, files: dict[str, str], parent: int | None) -> int:
        nonlocal mark
        mark += 1
        lines = [f"commit {ref}", f"mark :{mark}", f"committer Bench <bench@example.com> {1700000000 + mark} +0000",
                 f"data {len(message)}", message]
        if parent:
            lines.append(f"from :{parent}")
        for path, text in files.items():
            lines += [f"M 100644 inline {path}", f"data {len(text.encode())}", text]
        parts.append("\n".join(lines) + "\n")
        return mark

    base_files = {f"src/pkg{i % 50}/module{i}.py": f"VALUE_{i} = {i}\n" * 20 for i in range(FILES)}
    base = commit("refs/heads/base", "base tree", base_files, None)
    tip = base
    for n in range(UPSTREAM_COMMITS):
        i = n % FILES
        tip = commit("refs/heads/upstream", f"upstream change {n}", {f"src/pkg{i % 50}/module{i}.py": f"VALUE_{i} = {n}\n" * 20}, tip)
    tip = base
    for n in range(CUSTOM_COMMITS):
        tip = commit("refs/heads/release", f"fork: custom change {n}", {f"fork/custom{n}.py": f"CUSTOM = {n}\n"}, tip)
    return "".join(parts) + "done\n"


def build_fixture(root: Path) -> Path:
    """upstream.git, origin.git (the fork, main at the base) and a clone on release; returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    seed = root / "seed.git"
    git(root, "init", "--quiet", "--bare", str(seed))
    git(seed, "fast-import", "--quiet", "--done", input_text=history_stream())
    for name in ("upstream.git", "origin.git"):
        git(root, "init", "--quiet", "--bare", str(root / name))
    git(root / "upstream.git", "fetch", "--quiet", str(seed), "refs/heads/base:refs/heads/main")
    git(root / "origin.git", "fetch", "--quiet", str(seed), "refs/heads/base:refs/heads/main", "refs/heads/release:refs/heads/release")
    git(root, "clone", "--quiet", "--branch", "release", str(root / "origin.git"), str(root / "fork"))
    git(root / "fork", "branch", "main", "origin/main")
    git(root / "fork", "remote", "add", "upstream", str(root / "upstream.git"))
    git(root / "upstream.git", "fetch", "--quiet", str(seed), "refs/heads/upstream:refs/heads/main")
    shutil.rmtree(seed)
    (root / "pipeline.toml").write_text(
        f'[project]\nname = "bench"\n\n[fork]\npath = "fork"\nupstream = "{root / "upstream.git"}"\n'
        f'origin = "{root / "origin.git"}"\nkeep_backups = 3\n', encoding="utf-8")
    return root


def fresh_copy(fixture: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(fixture, target, symlinks=True)
    text = (target / "pipeline.toml").read_text(encoding="utf-8").replace(str(fixture), str(target))
    (target / "pipeline.toml").write_text(text, encoding="utf-8")
    for remote in ("upstream", "origin"):
        git(target / "fork", "remote", "set-url", remote, str(target / f"{remote}.git"))
    os.sync()
    return target


def run_baseline(work: Path) -> float:
    with stopwatch() as elapsed:
        subprocess.run(["bash", "-c", BASELINE_SCRIPT, "bench", str(work / "fork")], check=True,
                       env={**os.environ, **IDENTITY}, capture_output=True)
    return elapsed()


def run_stage(work: Path) -> float:
    """The four sync actions in this process (the work `doit sync` does, without starting Python)."""
    from tasks.context import load_settings
    from tasks.sync import fetch_action, main_action, push_action, release_action, sync_setup

    setup = sync_setup(load_settings(work / "pipeline.toml"))
    with stopwatch() as elapsed, contextlib.redirect_stdout(io.StringIO()):
        for action in (fetch_action, main_action, release_action, push_action):
            action(setup)
    return elapsed()


def run_doit(work: Path) -> float:
    env = {**os.environ, **IDENTITY, "FORKFLOW_CONFIG": str(work / "pipeline.toml")}
    env.pop("FORKFLOW_DRY_RUN", None)
    with stopwatch() as elapsed:
        subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), "sync"],
                       env=env, check=True, capture_output=True)
    return elapsed()


def check_synced(work: Path) -> None:
    """Both runs must leave origin synced: main at upstream's tip, release with 20 commits on top."""
    upstream = git(work / "upstream.git", "rev-parse", "main")
    assert git(work / "origin.git", "rev-parse", "main") == upstream
    assert git(work / "origin.git", "rev-list", "--count", f"{upstream}..release") == str(CUSTOM_COMMITS)


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-sync-") as temp:
        root = Path(temp)
        fixture = build_fixture(root / "fixture")
        times: dict[str, list[float]] = {"baseline": [], "stage": [], "doit": []}
        runners = {"baseline": run_baseline, "stage": run_stage, "doit": run_doit}
        for _ in range(ROUNDS):
            for name, runner in runners.items():
                work = fresh_copy(fixture, root / name)
                times[name].append(runner(work))
                check_synced(work)
        baseline = statistics.median(times["baseline"])
        case = f"sync: upstream +{UPSTREAM_COMMITS} commits, release {CUSTOM_COMMITS} custom commits, {FILES} files"
        return [
            Result(f"{case} (stage actions)", statistics.median(times["stage"]), baseline, "<= 1.2",
                   note=f"median of {ROUNDS}; {fastest(times, 'stage')}; baseline: the same git steps as a shell script"),
            Result(f"{case} (`doit sync`, incl. Python start)", statistics.median(times["doit"]), baseline, "<= 1.2",
                   note=f"median of {ROUNDS}; {fastest(times, 'doit')}; adds interpreter start, config load and doit"),
        ]


def fastest(times: dict[str, list[float]], name: str) -> str:
    """The ratio of the fastest runs: less sensitive to other work on the machine than the median."""
    ours, baseline = min(times[name]), min(times["baseline"])
    return f"fastest runs {ours:.3f}s vs {baseline:.3f}s, ratio {ours / baseline:.2f}"


if __name__ == "__main__":
    print_results(run())
