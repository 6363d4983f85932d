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
run several times, interleaved, and the median is kept. On that small tree
the git steps take about 0.14 s, less than starting Python and doit, so the
whole command's ratio there is the fixed cost of a Python command and is
reported only.

With FORKFLOW_BENCH_PREFECT set to a clone of PrefectHQ/prefect, the whole
`doit sync` is also measured on Prefect's real tree, the material forkflow is
for: a fork whose release carries 20 custom commits on upstream's main (each
changes a real integration file), and an upstream that gained 500 commits
(each changes a real file of the core). Everything else is as above; the
repositories borrow the clone's objects, so only the new commits are packed,
fetched and pushed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
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
PREFECT_ENV = "FORKFLOW_BENCH_PREFECT"
REAL_ROUNDS = sized(5, 1)
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


def edits_stream(ref: str, parent: str, edits: list[tuple[str, str]], source: Path, start: int) -> str:
    """A fast-import stream of one commit per (path, line): the line appended to the file as it is at `parent`."""
    parts: list[str] = []
    for n, (path, line) in enumerate(edits):
        text = git(source, "show", f"{parent}:{path}") + f"\n{line}\n"
        message = f"{line.lstrip('# ')}\n"
        lines = [f"commit {ref}", f"mark :{n + 1}", f"committer Bench <bench@example.com> {start + n} +0000",
                 f"data {len(message.encode())}", message, f"from {parent}" if n == 0 else f"from :{n}",
                 f"M 100644 inline {path}", f"data {len(text.encode())}", text]
        parts.append("\n".join(lines) + "\n")
    return "".join(parts) + "done\n"


def real_files(source: Path, tip: str, folder: str, count: int) -> list[str]:
    files = [f for f in git(source, "ls-tree", "-r", "--name-only", tip, "--", folder).splitlines() if f.endswith(".py")]
    if len(files) < count:
        raise RuntimeError(f"{source} has {len(files)} .py files under {folder}, fewer than {count}")
    return files[:count]


def build_real_fixture(root: Path, source: Path) -> Path:
    """Prefect's real tree: upstream.git and origin.git borrow the clone's objects (`--shared`); origin's release
    is main plus CUSTOM_COMMITS fork commits; the fork is a clone on release; then upstream gains
    UPSTREAM_COMMITS commits. Returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    tip = git(source, "rev-parse", "--verify", "main^{commit}") if git_ok(source, "main") else git(source, "rev-parse", "HEAD")
    git(root, "clone", "--quiet", "--bare", "--shared", "--no-tags", "--single-branch", "--branch", "main",
        str(source), str(root / "upstream.git"))
    git(root / "upstream.git", "update-ref", "refs/heads/main", tip)
    git(root, "clone", "--quiet", "--bare", "--shared", "--no-tags", "--single-branch", "--branch", "main",
        str(source), str(root / "origin.git"))  # borrowing from the clone, not from upstream.git and its new commits
    git(root / "origin.git", "update-ref", "refs/heads/main", tip)
    custom = [(path, f"# fork: custom change {n}") for n, path in
              enumerate(real_files(source, tip, "src/integrations", CUSTOM_COMMITS))]
    git(root / "origin.git", "fast-import", "--quiet", "--done",
        input_text=edits_stream("refs/heads/release", tip, custom, source, 1700000000))
    git(root, "clone", "--quiet", "--shared", "--branch", "release", str(root / "origin.git"), str(root / "fork"))
    git(root / "fork", "branch", "main", "origin/main")
    git(root / "fork", "remote", "add", "upstream", str(root / "upstream.git"))
    upstream = [(path, f"# upstream change {n}") for n, path in
                enumerate(real_files(source, tip, "src/prefect", UPSTREAM_COMMITS))]
    git(root / "upstream.git", "fast-import", "--quiet", "--done",
        input_text=edits_stream("refs/heads/main", tip, upstream, source, 1700100000))
    (root / "pipeline.toml").write_text(
        f'[project]\nname = "bench"\n\n[fork]\npath = "fork"\nupstream = "{root / "upstream.git"}"\n'
        f'origin = "{root / "origin.git"}"\nkeep_backups = 3\n', encoding="utf-8")
    return root


def git_ok(cwd: Path, ref: str) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd,
                          capture_output=True, check=False).returncode == 0


def fresh_real_copy(fixture: Path, target: Path) -> Path:
    """A copy whose git objects are hard links (never rewritten by git) and whose other files are copies; its
    index is refreshed (untimed), as in a clone that has been in use."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(fixture, target, symlinks=True, copy_function=copy_or_link)
    fresh_copy_paths(fixture, target)
    git(target / "fork", "update-index", "-q", "--refresh")
    os.sync()
    return target


def copy_or_link(source: str, target: str) -> object:
    """Packs and loose objects are linked (git never rewrites them); everything else is copied."""
    parent = Path(source).parent
    if parent.parent.name == "objects" and (parent.name == "pack" or re.fullmatch(r"[0-9a-f]{2}", parent.name)):
        os.link(source, target)
        return target
    return shutil.copy2(source, target)


def fresh_copy_paths(fixture: Path, target: Path) -> None:
    text = (target / "pipeline.toml").read_text(encoding="utf-8").replace(str(fixture), str(target))
    (target / "pipeline.toml").write_text(text, encoding="utf-8")
    for remote in ("upstream", "origin"):
        git(target / "fork", "remote", "set-url", remote, str(target / f"{remote}.git"))
    alternates = target / "fork" / ".git" / "objects" / "info" / "alternates"  # the fork borrows from origin.git
    alternates.write_text(alternates.read_text(encoding="utf-8").replace(str(fixture), str(target)), encoding="utf-8")
    for name in ("origin.git", "upstream.git"):
        if not git_ok(target / name, "main"):
            raise RuntimeError(f"the copy of {name} in {target} cannot read its main branch")
    new_tip = git(target / "upstream.git", "rev-parse", "main")
    if subprocess.run(["git", "cat-file", "-e", new_tip], cwd=target / "fork", check=False).returncode == 0:
        raise RuntimeError(f"the fork in {target} already holds upstream's new commits: the fetch would move nothing")


def run_real(source: Path) -> Result:
    """`doit sync` (where forkflow ran before) against the baseline script, on Prefect's real tree."""
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-sync-real-") as temp:
        root = Path(temp)
        fixture = build_real_fixture(root / "fixture", source)
        files = len(git(fixture / "fork", "ls-files").splitlines())
        times: dict[str, list[float]] = {"baseline": [], "warm": []}
        for _ in range(REAL_ROUNDS):
            for name, runner in (("baseline", run_baseline), ("warm", run_doit_warm)):
                work = fresh_real_copy(fixture, root / name)
                times[name].append(runner(work))
                check_synced(work)
    ours, baseline = statistics.median(times["warm"]), statistics.median(times["baseline"])
    return Result(f"sync on Prefect's real tree ({files} files): upstream +{UPSTREAM_COMMITS} commits, release "
                  f"{CUSTOM_COMMITS} custom commits (`doit sync`, incl. Python start)", ours, baseline, "<= 1.5",
                  note=f"median of {REAL_ROUNDS}; {fastest(times, 'warm')}; the whole command a user runs where "
                       f"forkflow ran before, against the baseline script above, on {source}'s main")


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
        results = [
            Result(f"{case} (stage actions)", stage, baseline, "<= 1.2",
                   note=f"median of {ROUNDS}; {fastest(times, 'stage')}; {baseline_note}"),
            Result(f"{case} (`doit sync`, incl. Python start)", statistics.median(times["warm"]), baseline,
                   "reported only: the fixed cost of a Python command, on a tree whose git steps take less",
                   note=f"median of {ROUNDS}; {fastest(times, 'warm')}; the whole command a user runs where forkflow "
                        f"ran before (its config remembered): adds interpreter start, config load and doit "
                        f"({counts['doit']} git commands); the target is measured on Prefect's real tree"),
            Result(f"{case} (`doit sync` on a fresh runner)", statistics.median(times["doit"]), baseline, "reported only",
                   note=f"median of {ROUNDS}; {fastest(times, 'doit')}; an empty state folder: the config is "
                        f"validated (pydantic) and nothing is remembered"),
        ]
    if os.environ.get(PREFECT_ENV):
        results.append(run_real(Path(os.environ[PREFECT_ENV]).resolve()))
    return results


def fastest(times: dict[str, list[float]], name: str) -> str:
    """The ratio of the fastest runs: less sensitive to other work on the machine than the median."""
    ours, baseline = min(times[name]), min(times["baseline"])
    return f"fastest runs {ours:.3f}s vs {baseline:.3f}s, ratio {ours / baseline:.2f}"


if __name__ == "__main__":
    print_results(run())
