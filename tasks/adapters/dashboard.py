"""Start a server command from a virtual environment and ask it for its dashboard (`GET /`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.adapters.processes import kill_with_parent


@dataclass(frozen=True)
class Answer:
    """What the server said to `GET /`: status 0 when it never answered."""

    status: int
    content_type: str
    body: str
    log: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask_dashboard(python: Path, command: list[str], home: Path, timeout: float = 120) -> Answer:
    """Run `command` (`{port}` replaced) with the environment's bin/ first on PATH, wait until `GET /` answers
    (or the process exits, or `timeout`), then stop the process group."""
    port = free_port()
    bin_dir = python.parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "VIRTUAL_ENV": str(bin_dir.parent), "PREFECT_HOME": str(home / ".prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    argv = [part.replace("{port}", str(port)) for part in command]
    argv[0] = shutil.which(argv[0], path=str(bin_dir)) or argv[0]
    log = home / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=kill_with_parent)  # noqa: PLW1509 - one prctl call
    try:
        answer = poll(f"http://127.0.0.1:{port}/", proc, timeout)
    finally:
        stop(proc)
    text = log.read_text(errors="replace")[-2000:]
    return Answer(answer[0], answer[1], answer[2], text)


def poll(url: str, proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str, str]:
    import httpx  # here, not at the top: httpx imports its command line (rich, pygments) and every doit start paid it

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            response = httpx.get(url, timeout=5, follow_redirects=True)
        except httpx.HTTPError:
            time.sleep(0.3)
            continue
        return response.status_code, response.headers.get("content-type", ""), response.text[:500]
    return 0, "", ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
