"""The local services against the real servers: start, health, auth, status, stop."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import have_program, need, run_doit


def http_status(url: str, auth: tuple[str, str] | None = None, method: str = "GET") -> int:
    import base64

    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def ports_of(config: Path) -> dict[str, int]:
    import tomllib

    data = tomllib.loads(config.read_text())
    return {name: data["services"][name]["port"] for name in ("index", "registry", "prefect")}


@pytest.mark.services
def test_services_start_health_auth_status_stop(demo_config: Path) -> None:
    need(have_program("docker-registry"), "Debian's docker-registry")
    ports = ports_of(demo_config)
    try:
        started = run_doit(demo_config, "services")
        assert started.returncode == 0, started.stdout + started.stderr
        state = demo_config.parent / ".forkflow"
        for name in ("index", "registry", "prefect"):
            assert (state / "services" / name / "pid").exists()
            assert (state / "logs" / f"service-{name}.log").exists()

        assert http_status(f"http://127.0.0.1:{ports['index']}/health") == 200
        assert http_status(f"http://127.0.0.1:{ports['index']}/", method="POST") == 401, "uploads need auth"
        assert http_status(f"http://127.0.0.1:{ports['registry']}/v2/") == 401, "the registry needs auth"
        creds = json.loads((state / "services" / "registry" / "credentials.json").read_text())
        assert http_status(f"http://127.0.0.1:{ports['registry']}/v2/", (creds["username"], creds["password"])) == 200
        assert (state / "services" / "registry" / "credentials.json").stat().st_mode & 0o077 == 0
        assert http_status(f"http://127.0.0.1:{ports['prefect']}/api/health") == 200
        assert (state / "services" / "prefect" / "prefect.db").exists()
        pools_url = f"http://127.0.0.1:{ports['prefect']}/api/work_pools/filter"
        assert http_status(pools_url, method="POST") == 401, "the Prefect API needs auth"
        prefect_creds = json.loads((state / "services" / "prefect" / "credentials.json").read_text())
        token = base64.b64encode(f"{prefect_creds['username']}:{prefect_creds['password']}".encode()).decode()
        pools = urllib.request.urlopen(urllib.request.Request(
            pools_url, data=b"{}", method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"}), timeout=10)
        names = {pool["name"]: pool["type"] for pool in json.loads(pools.read())}
        assert names.get("orbit-dev") == "process" and names.get("orbit-prod") == "process"

        again = run_doit(demo_config, "services")
        assert again.returncode == 0 and again.stdout.count("up-to-date") >= 3, "healthy services are up to date"
        for name in ("index", "registry", "prefect"):
            assert f"-- services:{name}" in again.stdout

        status = run_doit(demo_config, "services-status")
        assert status.returncode == 0 and status.stdout.count("healthy") >= 3
        assert creds["password"] not in started.stdout + started.stderr + status.stdout
    finally:
        stopped = run_doit(demo_config, "services-stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.count(": stopped") == 3
    for port in ports.values():
        assert port_closed(port)
    status = run_doit(demo_config, "services-status")
    assert status.stdout.count("stopped") >= 3


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.services
def test_port_taken_is_a_clear_error(demo_config: Path) -> None:
    port = ports_of(demo_config)["index"]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = run_doit(demo_config, "services:index")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "[services.index] port" in output
    assert "Traceback" not in output


@pytest.mark.services
def test_stale_pid_file_is_replaced(demo_config: Path) -> None:
    folder = demo_config.parent / ".forkflow" / "services" / "index"
    folder.mkdir(parents=True)
    (folder / "pid").write_text("999999\n")
    try:
        result = run_doit(demo_config, "services:index")
        assert result.returncode == 0, result.stderr
        assert "index: started" in result.stdout
    finally:
        run_doit(demo_config, "services-stop:index")


def stray_process(*, listen_on: int | None = None) -> subprocess.Popen[bytes]:
    """A program that is not ours but looks like one to a loose check (`python3 ... -m ...`)."""
    code = "import socket, sys, time\n"
    if listen_on:
        code += f"s = socket.socket(); s.bind(('127.0.0.1', {listen_on})); s.listen()\n"
    code += "print('ready', flush=True); time.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-c", code, "-m", "pypiserver"], stdout=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None
    with proc.stdout:  # it prints nothing more
        assert proc.stdout.readline().strip() == b"ready"
    return proc


def stat_start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.mark.services
def test_a_pid_file_naming_another_program_never_gets_it_signalled(demo_config: Path) -> None:
    folder = demo_config.parent / ".forkflow" / "services" / "index"
    folder.mkdir(parents=True)
    stray = stray_process()
    try:
        for record in [f"{stray.pid}\n",  # an older forkflow's pid file, or a recycled pid
                       f"{stray.pid} {stat_start(stray.pid)} index-0123456789abcdef\n",  # right start, no marker
                       f"{stray.pid} 1 index-0123456789abcdef\n"]:
            (folder / "pid").write_text(record)
            stopped = run_doit(demo_config, "services-stop:index")
            assert stopped.returncode == 0 and "index: not running" in stopped.stdout, stopped.stdout
            assert stray.poll() is None, f"a stray process was signalled for pid file {record!r}"
        (folder / "pid").write_text(f"{stray.pid}\n")
        started = run_doit(demo_config, "services:index")
        assert started.returncode == 0 and "index: started" in started.stdout, started.stdout + started.stderr
        assert stray.poll() is None
        assert run_doit(demo_config, "services-stop:index").stdout.count("index: stopped") == 1
        assert stray.poll() is None
    finally:
        stray.kill()
        stray.wait()


@pytest.mark.services
def test_a_busy_port_with_a_foreign_pid_file_is_left_alone_and_explained(demo_config: Path) -> None:
    port = ports_of(demo_config)["index"]
    folder = demo_config.parent / ".forkflow" / "services" / "index"
    folder.mkdir(parents=True)
    stray = stray_process(listen_on=port)
    try:
        (folder / "pid").write_text(f"{stray.pid}\n")
        result = run_doit(demo_config, "services:index")
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert f"port {port} on 127.0.0.1 is already in use by another program" in output
        assert f"names pid {stray.pid}, which is not a process forkflow started; left alone" in output
        assert stray.poll() is None
    finally:
        stray.kill()
        stray.wait()


@pytest.mark.services
def test_services_get_no_credentials_of_the_run(demo_config: Path) -> None:
    secrets = {"TWINE_PASSWORD": "tw-secret-1", "PREFECT_API_KEY": "pnu_secret_2", "GITHUB_TOKEN": "ghp_secret_3",
               "AWS_SECRET_ACCESS_KEY": "aws-secret-4"}
    try:
        started = run_doit(demo_config, "services:index", env=secrets)
        assert started.returncode == 0, started.stdout + started.stderr
        pid = int((demo_config.parent / ".forkflow" / "services" / "index" / "pid").read_text().split()[0])
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        names = {entry.split("=", 1)[0] for entry in environ if entry}
        assert not names & set(secrets), names & set(secrets)
        assert not any(value in entry for entry in environ for value in secrets.values())
        assert "PATH" in names and "FORKFLOW_SERVICE" in names
    finally:
        run_doit(demo_config, "services-stop:index")
