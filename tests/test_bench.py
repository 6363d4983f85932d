"""Every benchmark still runs as committed: `python -m bench --smoke <name>` at a small size.

No timing is asserted here; the figures of a smoke run mean nothing. What is
checked is that each bench completes and reports its ours/baseline lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, docker_reachable, need

BENCHES = sorted(path.stem for path in (REPO / "bench").glob("*.py")
                 if path.stem not in {"__init__", "__main__", "common", "monorepo"})


def test_the_bench_list_is_what_python_m_bench_runs() -> None:
    from bench.__main__ import modules

    assert modules([]) == BENCHES and "prefect_yaml" in BENCHES and len(BENCHES) >= 8


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.services
@pytest.mark.parametrize("name", BENCHES)
def test_bench_runs_at_smoke_size(name: str) -> None:
    if name in {"image", "noop", "pipeline"}:
        need(docker_reachable(), "a Docker engine")
    if name in {"prefect_yaml", "floors"}:
        need(any(Path("/usr/lib/postgresql").glob("*/bin/initdb")), "PostgreSQL (apt-get install postgresql)")
    results = (REPO / "bench" / "RESULTS.md").read_bytes()
    env = {key: value for key, value in os.environ.items() if key != "FORKFLOW_BENCH_PREFECT"}
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", name], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "smoke: 1 of 1 benches ran" in done.stdout, output[-3000:]
    lines = [line for line in done.stdout.splitlines() if ": ours " in line and ", ratio " in line]
    assert lines, f"bench {name} reported no ours/baseline line:\n{output[-3000:]}"
    assert (REPO / "bench" / "RESULTS.md").read_bytes() == results, "a smoke run must leave RESULTS.md alone"


def test_an_unknown_bench_is_refused() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "no-such-bench"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2 and "no bench named no-such-bench" in done.stderr


def test_what_one_bench_sets_in_the_environment_is_gone_for_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m bench` runs every bench in one process: a bench that sets FORKFLOW_ENVIRONMENT (deploy, pipeline)
    must not hand it to the next one (prefect_yaml, which has one environment, refused to deploy)."""
    import types

    from bench.__main__ import run_module

    leaky = types.ModuleType("bench.leaky")

    def run() -> list[object]:
        os.environ["FORKFLOW_ENVIRONMENT"] = "dev,prod"
        return []

    leaky.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.leaky", leaky)
    monkeypatch.delenv("FORKFLOW_ENVIRONMENT", raising=False)
    _, ok = run_module("leaky")
    assert ok
    assert "FORKFLOW_ENVIRONMENT" not in os.environ
