"""Helpers shared by the tests: running doit on a config, free ports, requirements."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def run_doit(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `doit <args>` from the repo with FORKFLOW_CONFIG pointing at config."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    full_env.update({"FORKFLOW_CONFIG": str(config), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
        env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need(condition: bool, what: str) -> None:
    """Skip when something external is missing, but fail in CI where it must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing; .ci/run must provide it")
    pytest.skip(f"{what} is missing")


def docker_reachable() -> bool:
    from tasks.adapters.docker import engine_status

    return engine_status().reachable


def have_program(name: str) -> bool:
    return shutil.which(name) is not None
