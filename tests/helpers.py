"""Helpers shared by the tests: running doit on a config, free ports, requirements."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def run_doit(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `doit <args>` from the repo with FORKFLOW_CONFIG pointing at config."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    full_env.update({"FORKFLOW_CONFIG": str(config), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args], check=False,
        env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def start_doit(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start `doit <args>` in its own process group, output readable line by line."""
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    return subprocess.Popen([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 300) -> str:
    """Read the process's output until a line contains needle; return what was read."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"never saw {needle!r} in:\n{''.join(seen)}")


def kill_after_line(config: Path, needle: str, *args: str) -> None:
    """Run doit and SIGKILL it alone (as an OOM kill would) as soon as it prints a line containing needle; fail
    when anything it started is still running afterwards."""
    with start_doit(config, *args) as proc:
        try:
            wait_for_line(proc, needle)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        kill_doit_alone(proc)


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


PREFECT_USER = "forkflow-tests"
PREFECT_PASSWORD = "tests-" + os.urandom(6).hex()


def prefect_auth_environment() -> dict[str, str]:
    """The basic auth every Prefect server of a test session is started with, and its clients send."""
    return {"FORKFLOW_PREFECT_USERNAME": PREFECT_USER, "FORKFLOW_PREFECT_PASSWORD": PREFECT_PASSWORD,
            "PREFECT_API_AUTH_STRING": f"{PREFECT_USER}:{PREFECT_PASSWORD}"}


class BusyRetrying(httpx.HTTPTransport):
    """Retries a busy server's 429/503 (a locked SQLite database) as Prefect's own client does."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(8):
            response = super().handle_request(request)
            if response.status_code not in (429, 503):
                return response
            response.close()
            time.sleep(min(0.2 * 2**attempt, 5.0))
        return super().handle_request(request)


def prefect_http(api: str, timeout: float = 30) -> httpx.Client:
    """A client of a test Prefect server, authenticated as forkflow's clients are."""
    import base64

    token = base64.b64encode(os.environ.get("PREFECT_API_AUTH_STRING", "").encode()).decode()
    return httpx.Client(base_url=api + "/", timeout=timeout, headers={"Authorization": f"Basic {token}"},
                        transport=BusyRetrying())


def run_doit_on_a_terminal(config: Path, *args: str, env: dict[str, str] | None = None,
                           timeout: float = 600) -> tuple[int, str]:
    """Run `doit <args>` with a pseudo-terminal as its stdin, stdout and stderr; (exit code, all it wrote)."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    full_env.update({"FORKFLOW_CONFIG": str(config), "TERM": "xterm", **(env or {})})
    proc = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                            stdin=slave, stdout=slave, stderr=slave, env=full_env, close_fds=True)
    os.close(slave)
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed: everything is read
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), output.decode(errors="replace")


# The embedded demo's versions on its release branch (its commit ids are the same on every machine):
# packages changed since their tag carry the project label, the distance and the newest change's commit.
DEMO_VERSIONS = {
    "orbit": "1.0.1+orbit.4.gdcb966f",
    "orbit-client": "1.0.1+orbit.4.gdcb966f",
    "orbit-aws": "0.2.0+orbit.4.gf08382c",
    "orbit-gcp": "0.1.0+orbit.4.gd622839",
    "orbit-slack": "0.1.0",
    "orbit-flows": "0.1.0+orbit.7.g2d43f67",
}


def runner_config(config: Path, folder: Path, *clone_options: str) -> Path:
    """What a CI runner has: a fresh clone of the demo's origin (release branch) under `folder`, and a
    config like `config` pointing at it, with its own state folder and no [demo] section."""
    import re

    demo = config.parent / ".forkflow" / "demo"
    clone = folder / "clone"
    subprocess.run(["git", "clone", "-q", *clone_options, "--branch", "release", f"file://{demo / 'origin.git'}",
                    str(clone)], check=True, capture_output=True)
    text = re.sub(r"(?ms)^\[demo\]\n.*?(?=^\[)", "", config.read_text())
    text = text.replace('".forkflow/demo/fork', f'"{clone}').replace('".forkflow/demo/', f'"{demo}/')
    runner = folder / "pipeline.toml"
    runner.write_text(text)
    return runner


def live_processes_in_group(group: int) -> list[str]:
    """The processes of a process group that are still alive (not zombies), as `pid command` lines."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[-1].split()
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(f"{stat.parent.name} {text.split('(', 1)[1].rsplit(')', 1)[0]}")
    return found


def kill_doit_alone(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the doit process only (as an OOM kill would), then wait until nothing it started is left alive;
    fail naming what is still running after a generous bound."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_group_ends(proc.pid)


def assert_group_ends(group: int) -> None:
    """Wait until no process of the group is alive; fail naming those still running after a generous bound."""
    deadline = time.monotonic() + 60
    while live_processes_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not live_processes_in_group(group), f"still running after doit ended: {live_processes_in_group(group)}"


def assert_dist_matches_wheel_report(state: Path, packages: int = 6) -> None:
    """wheel.json lists `packages`, and each package's dist folder holds exactly its listed files and their SBOMs."""
    import json

    report = json.loads((state / "reports" / "wheel.json").read_text())
    assert len(report["packages"]) == packages
    for package in report["packages"]:
        folder = state / "dist" / package["name"]
        listed = [f["name"] for f in package["files"]] + [Path(f["sbom"]).name for f in package["files"] if "sbom" in f]
        assert sorted(p.name for p in folder.iterdir() if p.name != "build.json") == sorted(listed)
