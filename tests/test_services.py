"""The local services against the real servers: start, health, auth, status, stop."""

from __future__ import annotations

import base64
import json
import socket
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
        assert again.returncode == 0 and again.stdout.count(": running at") == 3

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
