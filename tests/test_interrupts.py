"""Interrupted and concurrent runs: one sync per clone, no child left writing after a kill, every rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.pipeline.interrupt import INTERRUPTED
from tasks.pipeline.settings import load_settings
from tests.helpers import (
    REPO,
    assert_dist_matches_wheel_report,
    assert_group_ends,
    have_program,
    kill_after_line,
    kill_doit_alone,
    need,
    run_doit,
    start_doit,
    wait_for_line,
)
from tests.test_doit_commands import status_of
from tests.test_sync import IDENTITY, Fork, add_commit, git, write_config

HOLD = """
import sys
from pathlib import Path
from tasks.pipeline.lock import clone_lock
with clone_lock(Path(sys.argv[1]), Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_two_state_folders_cannot_sync_one_clone_at_once(demo_workspace: Path, tmp_path: Path) -> None:
    upstream, origin = demo_workspace / "upstream.git", demo_workspace / "origin.git"
    clone = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        write_config(folder, upstream, origin).write_text(
            (folder / "pipeline.toml").read_text().replace('path = "fork"', f'path = "{clone}"'))
    before = {"clone": git(clone, "for-each-ref"), "origin": git(origin, "for-each-ref")}
    with subprocess.Popen([sys.executable, "-c", HOLD, str(clone), str(first / ".forkflow")], cwd=REPO, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        refused = run_doit(second / "pipeline.toml", "sync", env=IDENTITY)
        holder.stdin.close()
    assert refused.returncode == 1
    assert f"another forkflow run (pid {holder.pid}, state folder {first / '.forkflow'}) is syncing the fork clone" \
        in refused.stdout + refused.stderr
    assert "wait for it to finish" in refused.stdout + refused.stderr
    assert "cannot lock ref" not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert {"clone": git(clone, "for-each-ref"), "origin": git(origin, "for-each-ref")} == before, "nothing moved"
    done = run_doit(second / "pipeline.toml", "sync", env=IDENTITY)
    assert done.returncode == 0, done.stdout[-3000:]
    assert json.loads((second / ".forkflow" / "reports" / "sync.json").read_text())["status"] == "updated"
    assert (clone / ".git" / "forkflow-sync.lock").exists()
    assert git(clone, "status", "--porcelain") == "", "the lock file is inside .git, not in the work tree"


PRE_PUSH = """#!/bin/sh
# holds the push until git push itself ends: the sync is then stopped after its rebase, before its push
touch "{marker}"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.1; done
exit 1
"""


@pytest.fixture
def synced_setup(demo_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fork:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FORKFLOW_DRY_RUN", raising=False)
    upstream, origin = demo_workspace / "upstream.git", demo_workspace / "origin.git"
    config = write_config(tmp_path, upstream, origin)
    fork = Fork(config, load_settings(config), upstream, origin)
    fork.clone()
    return fork


def hold_pushes(fork: Fork) -> Path:
    marker = fork.config.parent / "push-started"
    hook = fork.path / ".git" / "hooks" / "pre-push"
    hook.write_text(PRE_PUSH.format(marker=marker), encoding="utf-8")
    hook.chmod(0o755)
    return marker


def wait_for_file(file: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while not file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert file.exists(), "the sync never reached its push"


def assert_synced(fork: Fork, old_release: str) -> None:
    """origin has upstream's main and the fork's custom commits on top of it, the old tip is backed up, nothing lost."""
    custom = fork.subjects(fork.origin, f"main..{old_release}")
    upstream_main = git(fork.upstream, "rev-parse", "main")
    assert git(fork.origin, "rev-parse", "main") == upstream_main
    assert git(fork.origin, "merge-base", "--is-ancestor", upstream_main, "release") == ""
    assert git(fork.origin, "rev-parse", "release") == git(fork.path, "rev-parse", "release")
    assert fork.subjects(fork.origin, f"{upstream_main}..release") == custom
    backup = fork.report()["backup"]
    assert git(fork.origin, "rev-parse", backup) == old_release, "the old release tip is kept on origin"
    assert git(fork.path, "symbolic-ref", "--short", "HEAD") == "main", "the clone is on the branch it was on"
    assert git(fork.path, "status", "--porcelain") == ""


def test_sync_killed_after_its_rebase_before_its_push_is_pushed_by_the_rerun(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    custom = fork.subjects(fork.origin, "main..release")
    marker = hold_pushes(fork)
    with start_doit(fork.config, "sync") as proc:
        wait_for_file(marker, proc)
        kill_doit_alone(proc)
    assert git(fork.origin, "rev-parse", "release") == old_release, "nothing was pushed"
    rebased = git(fork.path, "rev-parse", "release")
    assert rebased != old_release

    (fork.path / ".git" / "hooks" / "pre-push").unlink()
    rerun = run_doit(fork.config, "sync", env=IDENTITY)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert "resuming an interrupted sync" in output and "diverged" not in output
    assert git(fork.origin, "rev-parse", "release") == rebased, "the rebase that was made is the one pushed"
    assert fork.subjects(fork.origin, f"{git(fork.upstream, 'rev-parse', 'main')}..release") == custom
    assert_synced(fork, old_release)
    again = run_doit(fork.config, "sync", env=IDENTITY)
    assert again.returncode == 0 and status_of(again.stdout, "sync:push") == "up-to-date"


def test_ctrl_c_during_a_sync_ends_with_one_line_and_the_rerun_completes(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    marker = hold_pushes(fork)
    with start_doit(fork.config, "sync") as proc:
        wait_for_file(marker, proc)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: the whole foreground group
        output = proc.communicate()[0]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert output.rstrip().splitlines()[-1] == INTERRUPTED
    (fork.path / ".git" / "hooks" / "pre-push").unlink()
    rerun = run_doit(fork.config, "sync", env=IDENTITY)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert_synced(fork, old_release)


def test_sync_killed_during_its_fetch_completes_on_the_rerun(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    with start_doit(fork.config, "sync") as proc:
        wait_for_line(proc, ".  sync:fetch")
        kill_doit_alone(proc)
    rerun = run_doit(fork.config, "sync", env=IDENTITY)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, (rerun.stdout + rerun.stderr)[-3000:]
    assert_synced(fork, old_release)


def test_parallel_wheel_builds_killed_leave_no_worker_and_the_rerun_completes(demo_config: Path) -> None:
    kill_after_line(demo_config, ": building ", "-n", "2", "wheel")  # fails while a worker or a build still runs
    rerun = run_doit(demo_config, "-n", "2", "wheel")
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, (rerun.stdout + rerun.stderr)[-3000:]
    state = demo_config.parent / ".forkflow"
    assert_dist_matches_wheel_report(state)


def test_an_unpushed_rebase_is_refused_with_right_advice_when_origin_moved(synced_setup: Fork) -> None:
    fork = synced_setup
    marker = hold_pushes(fork)
    with start_doit(fork.config, "sync") as proc:
        wait_for_file(marker, proc)
        kill_doit_alone(proc)
    (fork.path / ".git" / "hooks" / "pre-push").unlink()
    pushed = add_commit(fork.origin, "release", {"someone.txt": "pushed meanwhile\n"}, "fix: pushed by someone else")

    refused = run_doit(fork.config, "sync", env=IDENTITY)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output[-3000:]
    assert "holds the rebase of an interrupted sync" in output and "someone pushed to it" in output
    assert "git rebase origin/release" not in output and "Traceback" not in output
    assert git(fork.origin, "rev-parse", "release") == pushed, "origin is untouched"

    fix = next(line for line in output.splitlines() if "fix:" in line).split("):", 1)[1].strip()
    commands = fix.removesuffix(" && doit sync").split(" && ")
    for command in commands:
        subprocess.run(command, shell=True, check=True, capture_output=True)  # noqa: S602 - the advice, as a user runs it
    done = run_doit(fork.config, "sync", env=IDENTITY)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    upstream_main = git(fork.upstream, "rev-parse", "main")
    assert "fix: pushed by someone else" in fork.subjects(fork.origin, f"{upstream_main}..release"), "nothing lost"
    assert git(fork.origin, "merge-base", "--is-ancestor", upstream_main, "release") == ""


POST_CHECKOUT = """#!/bin/sh
# holds a rebase right after it detached HEAD on the new main, until git rebase itself ends
[ -d .git/rebase-merge ] || [ -d .git/rebase-apply ] || exit 0
touch "{marker}"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.1; done
exit 1
"""


def test_sync_killed_during_its_rebase_completes_on_the_rerun(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    marker = fork.config.parent / "rebase-started"
    hook = fork.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(POST_CHECKOUT.format(marker=marker), encoding="utf-8")
    hook.chmod(0o755)
    with start_doit(fork.config, "sync") as proc:
        wait_for_file(marker, proc)
        kill_doit_alone(proc)
    assert (fork.path / ".git" / "rebase-merge").is_dir(), "the kill left a rebase in progress"
    hook.unlink()

    rerun = run_doit(fork.config, "sync", env=IDENTITY)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert "aborted the rebase an interrupted sync left" in output
    assert_synced(fork, old_release)
    assert len(fork.report()["backups"]) == 1, "the backup the interrupted sync made is reused"


def test_ctrl_c_during_parallel_builds_ends_with_one_line(demo_config: Path) -> None:
    with start_doit(demo_config, "-n", "2", "wheel") as proc:
        wait_for_line(proc, ": building ")
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate()[0]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert output.rstrip().splitlines()[-1] == INTERRUPTED
    assert_group_ends(proc.pid)
    rerun = run_doit(demo_config, "-n", "2", "wheel")
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]


def test_a_sync_stopped_after_its_push_landed_is_not_refused(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    marker = hold_pushes(fork)
    with start_doit(fork.config, "sync") as proc:
        wait_for_file(marker, proc)
        kill_doit_alone(proc)
    (fork.path / ".git" / "hooks" / "pre-push").unlink()
    git(fork.path, "push", "--atomic", f"--force-with-lease=refs/heads/release:{old_release}", "origin",
        "refs/heads/main:refs/heads/main", "refs/heads/release:refs/heads/release")  # as if its push had landed
    rerun = run_doit(fork.config, "sync", env=IDENTITY)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert git(fork.origin, "rev-parse", "release") == git(fork.path, "rev-parse", "release")


def test_a_parallel_sync_is_not_refused_by_its_own_clone_lock(synced_setup: Fork) -> None:
    fork = synced_setup
    old_release = git(fork.origin, "rev-parse", "release")
    result = run_doit(fork.config, "-n", "2", "sync", env=IDENTITY)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert_synced(fork, old_release)


@pytest.mark.services
def test_image_run_killed_after_a_push_completes_on_the_rerun(demo_config: Path, base_images: list[str]) -> None:
    from tests.test_image import SESSION, remove_session_images

    need(have_program("docker-registry"), "Debian's docker-registry")
    demo_config.write_text(demo_config.read_text().replace("[images]\n", f'[images]\nrepository = "t{SESSION}/killed"\n'))
    try:
        with start_doit(demo_config, "image") as proc:
            first = wait_for_line(proc, ", pushed ").splitlines()[-1]
            kill_doit_alone(proc)
        cell = first.split(":", 2)[1].strip() if first.startswith("image:") else first.split(":", 1)[0]
        rerun = run_doit(demo_config, "image")
        assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, (rerun.stdout + rerun.stderr)[-3000:]
        images = json.loads((demo_config.parent / ".forkflow" / "reports" / "image.json").read_text())["images"]
        assert len(images) == 4 and all(i["digest"] and i["status"] in ("built", "up-to-date") for i in images)
        pushed_before = next(i for i in images if f"{i['python']}-{i['flavor']}" == cell)
        assert pushed_before["status"] == "up-to-date", f"{cell} was pushed before the kill and is not rebuilt"
    finally:
        run_doit(demo_config, "services-stop")
        remove_session_images()


CHILD_OF_KILLED = """
import sys, threading
from tasks.adapters.run import run
threads = [threading.Thread(target=run, args=(["sleep", "300"],), kwargs={"check": False}) for _ in range(4)]
for thread in threads:
    thread.start()
print("started", flush=True)
for thread in threads:
    thread.join()
"""


def sleepers(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"sleep") and argv[1:2] == [b"300"] and (entry / "environ").read_bytes().find(marker.encode()) >= 0:
                found.append(int(entry.name))
    return found


def test_commands_started_at_once_from_threads_end_when_forkflow_is_killed(tmp_path: Path) -> None:
    """Four commands started together from four threads (as a run's first checks do), then SIGKILL to forkflow:
    every command ends with it, and finding out how to tie them started no process of its own."""
    marker = f"FORKFLOW_TEST_MARKER={os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "PYTHONPATH": str(REPO), **dict([marker.split("=")])}
    trace = tmp_path / "exec.trace"
    argv = [sys.executable, "-c", CHILD_OF_KILLED]
    if have_program("strace"):
        argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), *argv]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while len(sleepers(marker)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sleepers(marker)) == 4
        python = next(pid for pid in [proc.pid, *children(proc.pid)]
                      if b"python" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0])
        os.kill(python, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleepers(marker) == []
        proc.wait(timeout=10)
    finally:
        for pid in sleepers(marker):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    if trace.exists():
        assert "--help" not in trace.read_text()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found
