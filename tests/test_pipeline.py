"""Whole-pipeline behaviour: one run per state folder, interrupted runs, the run summary."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.helpers import assert_dist_matches_wheel_report, kill_after_line, run_doit, start_doit, wait_for_line


def test_second_run_on_the_same_state_refuses(demo_config: Path) -> None:
    with start_doit(demo_config, "wheel") as first:
        try:
            wait_for_line(first, "building")
            second = run_doit(demo_config, "version")
            assert second.returncode == 3
            assert "another forkflow run" in second.stderr and str(first.pid) in second.stderr
            assert "wait for it to finish" in second.stderr
            listing = run_doit(demo_config, "list")
            assert listing.returncode == 0, "read-only commands do not need the lock"
        finally:
            os.killpg(first.pid, signal.SIGTERM)


def test_interrupted_build_finishes_on_the_next_run(demo_config: Path) -> None:
    kill_after_line(demo_config, ": built ", "wheel")
    state = demo_config.parent / ".forkflow"
    rerun = run_doit(demo_config, "--reporter", "json", "wheel")
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    ran = {t["name"] for t in json.loads(rerun.stdout)["tasks"] if t["result"] == "success"}
    assert 1 <= len({n for n in ran if n.startswith("wheel:") and n != "wheel:report"}) < 6, \
        "packages finished before the kill are not built again"
    assert_dist_matches_wheel_report(state)


def test_summary_markdown_has_graph_table_and_reports(demo_config: Path) -> None:
    summary_file = demo_config.parent / "step-summary.md"
    result = run_doit(demo_config, "version", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_file)})
    assert result.returncode == 0, result.stderr
    summary = (demo_config.parent / ".forkflow" / "reports" / "summary.md").read_text()
    assert "```mermaid" in summary and "checkout[checkout] --> version[version]" in summary
    assert "| version | ran |" in summary
    assert "`version.json`" in summary
    assert "::group::version" in result.stdout and "::endgroup::" in result.stdout
    assert summary_file.read_text() == summary
