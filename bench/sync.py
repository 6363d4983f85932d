"""Benchmark: `sync` of a fork whose upstream gained 500 commits and whose release carries 20 custom commits.

Ours is the sync stage (pre-flight checks, fetch, plan, fast-forward main,
backup, rebase, atomic push with lease, pruning, report). The baseline is
the same steps with the same safety checks as a plain shell script of git
commands, one after another: both remotes answer (ls-remote), the clone is
whole and at its top, no operation in progress, a clean tree, the remotes
point where configured, main only fast-forwards, a committer identity, a
backup branch, the lease on the release tip seen at fetch, one atomic push.
It writes no plan, report or state and lists no commits. Ours also differs
in two ways that help it: it runs its read-only checks at the same time, and
it does not fetch origin's branches that are already in the clone (here
origin has not moved since the clone was made, as between two syncs). The
bare script (the same git steps with only the clean-tree check) is measured
too, for reference. The whole `doit sync` is measured where forkflow ran
before with the config (its validated config remembered, as between two weekly
syncs) and, reported apart, on a fresh runner. All start from identical copies of the same repositories
(a 1,000-file tree, like a small monorepo); copying is not timed. Each is
run several times, interleaved, and the median is kept.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import Result, print_results, sized, stopwatch

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_COMMITS = sized(500, 10)
CUSTOM_COMMITS = sized(20, 2)
FILES = sized(1000, 20)
ROUNDS = sized(9, 1)
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}

BASELINE_SCRIPT = r"""
set -euo pipefail
cd "$1"
upstream_url=$2
origin_url=$3
test -n "$(git ls-remote "$upstream_url" refs/heads/main)"
git ls-remote "$origin_url" refs/heads/main refs/heads/release >/dev/null
{ read -r top; read -r gitdir; read -r shallow; read -r original; } \
    < <(git rev-parse --show-toplevel --absolute-git-dir --is-shallow-repository --symbolic-full-name HEAD)
test "$top" = "$(pwd -P)" && test "$shallow" = false
for marker in rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD REVERT_HEAD BISECT_LOG; do
    test ! -e "$gitdir/$marker"
done
test -z "$(git status --porcelain)"
urls=$(git config --get-regexp '^remote\..*\.url$')
[[ $urls == *"remote.upstream.url $upstream_url"* && $urls == *"remote.origin.url $origin_url"* ]]
git fetch --quiet --tags upstream +refs/heads/main:refs/remotes/upstream/main
git fetch --quiet --no-tags origin +refs/heads/main:refs/remotes/origin/main +refs/heads/release:refs/remotes/origin/release
lease=$(git rev-parse refs/remotes/origin/release)
git fetch --quiet . refs/remotes/upstream/main:refs/heads/main
git var GIT_COMMITTER_IDENT >/dev/null
git branch "backup-before-sync-$(date -u +%Y%m%d-%H%M%S)" release
git rebase --quiet upstream/main release
git push --quiet --atomic --force-with-lease=refs/heads/release:"$lease" origin main release
test "$original" = refs/heads/release || git checkout --quiet "${original#refs/heads/}"
"""

BARE_SCRIPT = r"""
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


def run_script(script: str, work: Path) -> float:
    with stopwatch() as elapsed:
        subprocess.run(["bash", "-c", script, "bench", str(work / "fork"), str(work / "upstream.git"),
                        str(work / "origin.git")], check=True, env={**os.environ, **IDENTITY}, capture_output=True)
    return elapsed()


def run_baseline(work: Path) -> float:
    return run_script(BASELINE_SCRIPT, work)


def run_bare(work: Path) -> float:
    return run_script(BARE_SCRIPT, work)


def run_stage(work: Path) -> float:
    """The four sync actions in this process (the work `doit sync` does, without starting Python)."""
    from tasks.pipeline.settings import load_settings
    from tasks.stages.sync.plan import fetch_action
    from tasks.stages.sync.setup import sync_setup
    from tasks.stages.sync.steps import main_action, push_action, release_action

    setup = sync_setup(load_settings(work / "pipeline.toml"))
    with stopwatch() as elapsed, contextlib.redirect_stdout(io.StringIO()):
        for action in (fetch_action, main_action, release_action, push_action):
            action(setup)
    return elapsed()


def run_doit(work: Path) -> float:
    """`doit sync` in a state folder never used: the config is validated and nothing is remembered (a fresh runner)."""
    with stopwatch() as elapsed:
        doit(work, "sync")
    return elapsed()


def run_doit_warm(work: Path) -> float:
    """`doit sync` where forkflow ran before with this config (untimed `doit list`): the validated config is
    remembered, as on a laptop or a CI runner that keeps its state folder between weekly syncs."""
    doit(work, "list")
    with stopwatch() as elapsed:
        doit(work, "sync")
    return elapsed()


def doit(work: Path, *args: str) -> None:
    env = {**os.environ, **IDENTITY, "FORKFLOW_CONFIG": str(work / "pipeline.toml")}
    env.pop("FORKFLOW_DRY_RUN", None)
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                   env=env, check=True, capture_output=True)


def git_processes(runner: Callable[[Path], float], work: Path) -> int:
    """git commands one run starts (not counting the ones git starts itself), from a trace2 log."""
    trace = work / "trace2.json"
    before = os.environ.get("GIT_TRACE2_EVENT")
    os.environ["GIT_TRACE2_EVENT"] = str(trace)
    try:
        runner(work)
    finally:
        if before is None:
            del os.environ["GIT_TRACE2_EVENT"]
        else:
            os.environ["GIT_TRACE2_EVENT"] = before
    events = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    return sum(1 for event in events if event["event"] == "start" and "/" not in event["sid"])


def check_synced(work: Path) -> None:
    """Both runs must leave origin synced: main at upstream's tip, release with 20 commits on top."""
    upstream = git(work / "upstream.git", "rev-parse", "main")
    assert git(work / "origin.git", "rev-parse", "main") == upstream
    assert git(work / "origin.git", "rev-list", "--count", f"{upstream}..release") == str(CUSTOM_COMMITS)


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-sync-") as temp:
        root = Path(temp)
        fixture = build_fixture(root / "fixture")
        runners = {"baseline": run_baseline, "bare": run_bare, "stage": run_stage, "doit": run_doit,
                   "warm": run_doit_warm}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(ROUNDS):
            for name, runner in runners.items():
                work = fresh_copy(fixture, root / name)
                times[name].append(runner(work))
                check_synced(work)
        counts = {name: git_processes(runners[name], fresh_copy(fixture, root / name))
                  for name in ("stage", "doit", "baseline", "bare")}
        baseline, bare = statistics.median(times["baseline"]), statistics.median(times["bare"])
        stage = statistics.median(times["stage"])
        case = f"sync: upstream +{UPSTREAM_COMMITS} commits, release {CUSTOM_COMMITS} custom commits, {FILES} files"
        baseline_note = (f"baseline: the same git steps and safety checks as a shell script, one after another, "
                         f"with no plan, report or commit lists (ours skips the no-op origin fetch); "
                         f"git commands: ours {counts['stage']}, baseline {counts['baseline']}; "
                         f"the bare script without the checks: {bare:.3f}s ({counts['bare']} git commands), "
                         f"ratio {stage / bare:.2f}")
        return [
            Result(f"{case} (stage actions)", stage, baseline, "<= 1.2",
                   note=f"median of {ROUNDS}; {fastest(times, 'stage')}; {baseline_note}"),
            Result(f"{case} (`doit sync`, incl. Python start)", statistics.median(times["warm"]), baseline, "<= 1.5",
                   note=f"median of {ROUNDS}; {fastest(times, 'warm')}; the whole command a user runs where forkflow "
                        f"ran before (its config remembered): adds interpreter start, config load and doit "
                        f"({counts['doit']} git commands)"),
            Result(f"{case} (`doit sync` on a fresh runner)", statistics.median(times["doit"]), baseline, "reported only",
                   note=f"median of {ROUNDS}; {fastest(times, 'doit')}; an empty state folder: the config is "
                        f"validated (pydantic) and nothing is remembered"),
        ]


def fastest(times: dict[str, list[float]], name: str) -> str:
    """The ratio of the fastest runs: less sensitive to other work on the machine than the median."""
    ours, baseline = min(times[name]), min(times["baseline"])
    return f"fastest runs {ours:.3f}s vs {baseline:.3f}s, ratio {ours / baseline:.2f}"


if __name__ == "__main__":
    print_results(run())
