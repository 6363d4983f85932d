"""Local background services: start, health-check, stop, by pid file.

A service is a process bound to 127.0.0.1 on one port, started in its own
session so it outlives the doit run, with its output in a log file and, in
its pid file, its pid, start time and a marker placed in its environment at
launch. A process counts as ours only when all three match, so a recycled
pid or a stale file never gets another program signalled. Services start
with an allow-listed environment: no credentials of the run reach them.
Starting an already healthy service does nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tasks.core.errors import ServiceError

HOST = "127.0.0.1"
MARKER = "FORKFLOW_SERVICE"
PASSED_ON = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
             "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR", "NO_PROXY", "no_proxy")
# the services this process started, by pid: a stop from the same process reaps its child (no zombie, and no
# handle collected while its process runs)
STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServiceSpec:
    """How to run and check one service."""

    name: str
    argv: tuple[str, ...]
    port: int
    health_path: str
    folder: Path
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    start_timeout: float = 90.0
    config_key: str = ""

    @property
    def pid_file(self) -> Path:
        return pid_file_in(self.folder)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class ServiceState:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    url: str
    log_file: Path


def state(spec: ServiceSpec) -> ServiceState:
    pid = running_pid(spec)
    healthy = pid is not None and is_healthy(spec)
    return ServiceState(spec.name, pid is not None, healthy, pid, spec.url, spec.log_file)


def start(spec: ServiceSpec) -> str:
    """Start the service unless it already runs healthy; return 'running' or 'started'."""
    pid = running_pid(spec)
    if pid is not None and is_healthy(spec):
        return "running"
    if pid is not None:
        stop(spec)
    if not port_is_free(spec.port):
        raise ServiceError(
            f"{spec.name}: port {spec.port} on {HOST} is already in use by another program{stale_note(spec)}",
            where=spec.config_key or None,
            fix=f"stop the program using port {spec.port} (see `ss -ltnp 'sport = :{spec.port}'`) "
                f"or choose another port in {spec.config_key or 'the config'}",
        )
    proc = launch(spec)
    wait_healthy(spec, proc)
    return "started"


def launch(spec: ServiceSpec) -> subprocess.Popen[bytes]:
    spec.folder.mkdir(parents=True, exist_ok=True)
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    marker = f"{spec.name}-{secrets.token_hex(8)}"
    with spec.log_file.open("ab") as log:
        log.write(f"\n--- starting {spec.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        try:
            proc = subprocess.Popen(
                list(spec.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=spec.folder, env=service_environment(spec, marker), start_new_session=True,
            )
        except FileNotFoundError:
            raise ServiceError(
                f"{spec.name}: program not found: {spec.argv[0]}",
                fix=install_hint(spec.argv[0]),
            ) from None
    spec.pid_file.write_text(f"{proc.pid} {start_time(proc.pid)} {marker}\n", encoding="utf-8")
    STARTED[proc.pid] = proc
    return proc


def service_environment(spec: ServiceSpec, marker: str) -> dict[str, str]:
    """The allow-listed part of our environment, the service's own settings, and our marker."""
    passed = {name: value for name, value in os.environ.items() if name in PASSED_ON or name.startswith("LC_")}
    return {**passed, **spec.env, MARKER: marker}


def wait_healthy(spec: ServiceSpec, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + spec.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            STARTED.pop(proc.pid, None)
            spec.pid_file.unlink(missing_ok=True)
            raise ServiceError(
                f"{spec.name}: exited during start-up\n{log_tail(spec.log_file)}",
                where=str(spec.log_file),
                fix="read the log above; fix the cause and run `doit services` again",
            )
        if is_healthy(spec):
            return
        time.sleep(0.3)
    stop(spec)
    raise ServiceError(
        f"{spec.name}: not healthy after {spec.start_timeout:.0f}s at {spec.url}{spec.health_path}\n"
        f"{log_tail(spec.log_file)}",
        where=str(spec.log_file),
        fix="read the log above; the service was stopped",
    )


def stop(spec: ServiceSpec, timeout: float = 15.0) -> str:
    """Stop the service if it runs; return 'stopped' or 'not running'."""
    pid = running_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return "not running"
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(spec) == pid:
        time.sleep(0.2)
    if running_pid(spec) == pid:
        signal_group(pid, signal.SIGKILL)
    reap(pid)
    spec.pid_file.unlink(missing_ok=True)
    return "stopped"


def reap(pid: int) -> None:
    """Collect the exit status of a service this process started (another process's service is not our child)."""
    proc = STARTED.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def running_pid(spec: ServiceSpec) -> int | None:
    """The pid from the pid file if that process is alive and provably the one we launched."""
    record = pid_record(spec)
    if record is None or not process_alive(record[0]) or not is_our_process(*record):
        return None
    return record[0]


def pid_record(spec: ServiceSpec) -> tuple[int, str, str] | None:
    """(pid, start time, marker) as written at launch; None for a missing or older-style file."""
    try:
        fields = spec.pid_file.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    if len(fields) != 3 or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1], fields[2]


def stale_note(spec: ServiceSpec) -> str:
    """Why a pid file beside a busy port was not trusted (so the user knows what to look at)."""
    try:
        named = spec.pid_file.read_text(encoding="utf-8").split()[0]
    except (FileNotFoundError, IndexError):
        return ""
    return f" (its pid file {spec.pid_file} names pid {named}, which is not a process forkflow started; left alone)"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return False
    return fields[0] == "Z"


def is_our_process(pid: int, started: str, marker: str) -> bool:
    """Same start time as recorded at launch and our marker in its environment; unknowable means no."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return start_time(pid) == started and f"{MARKER}={marker}".encode() in environ


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), '' when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if len(fields) > 19 else ""


def pid_file_in(folder: Path) -> Path:
    """Where a service started from `folder` keeps its pid file."""
    return folder / "pid"


def is_healthy(spec: ServiceSpec) -> bool:
    from tasks.adapters.plain_http import request

    headers = {}
    if spec.auth:
        token = base64.b64encode(f"{spec.auth[0]}:{spec.auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        return request(spec.url + spec.health_path, headers=headers, timeout=2).ok
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def install_hint(program: str) -> str:
    name = Path(program).name
    hints = {
        "docker-registry": "install Debian's registry: `apt-get install -y docker-registry`",
        "prefect": "install forkflow's dependencies: `pip install -e .`",
    }
    return hints.get(name, f"install {name} and put it on PATH")
