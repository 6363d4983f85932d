"""Interrupted and concurrent runs: one sync per clone, no child left writing after a kill, every rerun completes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, run_doit
from tests.test_sync import IDENTITY, git, write_config

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
