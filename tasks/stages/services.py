"""Stage `services`: the local package index, OCI registry and Prefect server.

`doit services` starts all three (or confirms they run healthy),
`doit services-status` shows them and the Docker engine, `doit services-stop`
stops them. Each binds to 127.0.0.1, keeps a pid file and its data under
`<state>/services/<name>/` and its log under `<state>/logs/`. The index and
the registry require upload/push authentication (htpasswd).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters import prefect_settings
from tasks.adapters import services as svc
from tasks.adapters.console import say
from tasks.pipeline import prefetch
from tasks.pipeline.actions import guarded, missing_section_task
from tasks.pipeline.checks import Check, Stale
from tasks.pipeline.credentials import local_credentials, local_prefect_auth, saved_credentials, write_private
from tasks.pipeline.settings import Settings, settings

NAMES = ("index", "registry", "prefect")


def task_services() -> Iterator[dict[str, Any]]:
    """Start the local services (or confirm they are healthy)."""
    current = settings()
    if current.config.services is None:
        yield missing_section_task("services", "services", "start the local services")
        return
    yield {"basename": "services", "name": None, "doc": "start the local package index, OCI registry and Prefect server",
           "uptodate": [True]}
    for name in NAMES:
        yield {
            "basename": "services",
            "name": name,
            "doc": f"start the local {DESCRIPTIONS[name]} (no-op when it runs healthy)",
            "actions": [guarded(partial(start_action, name))],
            "uptodate": [Check(f"the {DESCRIPTIONS[name]} forkflow started answers healthy", runs_healthy, name)],
            "verbosity": 2,
        }


def runs_healthy(name: str, *_: Any) -> bool | Stale:
    """One health check of a service this run did not need to start (its pid file proves it is ours)."""
    if credentials_changed(settings(), name):
        return Stale("its credentials changed since its password file was written")
    spec = service_spec(settings(), name)
    found = prefetch.answer(health_key(spec), partial(svc.state, spec))
    if found.healthy:
        return True
    return Stale("running but not healthy" if found.running else "not running")


def credentials_changed(current: Settings, name: str) -> bool:
    """True when a service's password file is older than its credentials, or they are gone or were corrupt (set
    aside, new ones to be made): pypiserver reads the new file as it is written, the registry restarts."""
    folder = service_folder(current, name)
    htpasswd = folder / "htpasswd"
    if not htpasswd.is_file():
        return False
    file = folder / "credentials.json"
    if saved_credentials(file) is None:
        return True
    return file.stat().st_mtime_ns > htpasswd.stat().st_mtime_ns


def health_key(spec: svc.ServiceSpec) -> str:
    return f"health:{spec.name}:{spec.url}"


def ask_health_early(current: Settings) -> None:
    """Send the services' health checks as the run starts (see tasks.pipeline.prefetch)."""
    if current.config.services is None:
        return
    for name in NAMES:
        if svc.pid_file_in(service_folder(current, name)).is_file():  # never started: nothing to ask or to create
            spec = service_spec(current, name)
            prefetch.send(health_key(spec), partial(svc.state, spec))


def task_services_stop() -> Iterator[dict[str, Any]]:
    """Stop the local services."""
    current = settings()
    if current.config.services is None:
        yield missing_section_task("services-stop", "services", "stop the local services")
        return
    yield {"basename": "services-stop", "name": None, "doc": "stop the local services", "uptodate": [True]}
    for name in NAMES:
        yield {
            "basename": "services-stop",
            "name": name,
            "doc": f"stop the local {DESCRIPTIONS[name]}",
            "actions": [guarded(partial(stop_action, name))],
            "uptodate": [False],
            "verbosity": 2,
        }


def task_services_status() -> dict[str, Any]:
    """Show the state of the local services and the Docker engine."""
    return {
        "basename": "services-status",
        "doc": "show whether each local service and the Docker engine is running and healthy",
        "actions": [guarded(status_action)],
        "uptodate": [False],
        "verbosity": 2,
    }


DESCRIPTIONS = {
    "index": "package index (pypiserver)",
    "registry": "OCI registry (docker-registry)",
    "prefect": "Prefect server (SQLite)",
}


def start_action(name: str) -> dict[str, str]:
    current = settings()
    spec = service_spec(current, name)
    if not svc.state(spec).healthy or credentials_changed(current, name):
        prepare(current, name)
    outcome = svc.start(spec)
    say(f"{name}: {outcome} at {spec.url} (pid {svc.running_pid(spec)}, log {spec.log_file})")
    if name == "prefect":
        ensure_work_pools(current)
    return {"made": f"{spec.url} ({outcome})"}


def stop_action(name: str) -> dict[str, str]:
    spec = service_spec(settings(), name)
    outcome = svc.stop(spec)
    say(f"{name}: {outcome}")
    return {"made": outcome}


def status_action() -> dict[str, str]:
    from tasks.adapters import docker as docker_adapter

    current = settings()
    lines = []
    if current.config.services:
        for name in NAMES:
            lines.append(describe_state(svc.state(service_spec(current, name))))
    engine = docker_adapter.engine_status()
    lines.append(f"docker engine  {'reachable' if engine.reachable else 'NOT reachable'}  {engine.detail}")
    for line in lines:
        say(line)
    return {"made": "; ".join(line.split()[0] + " " + line.split()[1] for line in lines)}


def describe_state(found: svc.ServiceState) -> str:
    if found.healthy:
        word = "healthy"
    elif found.running:
        word = "UNHEALTHY"
    else:
        word = "stopped"
    pid = f"pid {found.pid}" if found.pid else ""
    return f"{found.name:<14} {word:<10} {found.url:<24} {pid:<10} log {found.log_file}"


def service_folder(current: Settings, name: str) -> Path:
    return current.services_dir / name


def service_spec(current: Settings, name: str) -> svc.ServiceSpec:
    """How to run one local service, from the config."""
    services = current.config.services
    assert services is not None
    port = getattr(services, name).port
    folder = service_folder(current, name)
    common = {
        "name": name,
        "port": port,
        "folder": folder,
        "log_file": current.logs_dir / f"service-{name}.log",
        "config_key": f"[services.{name}] port in {current.config_file}",
    }
    if name == "index":
        return svc.ServiceSpec(
            argv=(sys.executable, "-m", "pypiserver", "run", "-p", str(port), "-i", svc.HOST,
                  "-P", str(folder / "htpasswd"), "-a", "update", "--fallback-url", fallback_url(current),
                  str(folder / "packages")),
            health_path="/health", **common,
        )
    if name == "registry":
        creds = local_credentials(folder, "registry")
        return svc.ServiceSpec(
            argv=(registry_program(), "serve", str(folder / "config.yml")),
            health_path="/v2/", auth=(creds.username, creds.password), **common,
        )
    creds = local_credentials(folder, "prefect")
    return svc.ServiceSpec(
        argv=(prefect_program(), "server", "start", "--host", svc.HOST, "--port", str(port)),
        health_path="/api/health", env=prefect_env(folder, f"{creds.username}:{creds.password}"), start_timeout=180.0,
        **common,
    )


DEFAULT_UPSTREAM = "https://pypi.org/simple/"


def fallback_url(current: Settings) -> str:
    """Where the local index sends requests for packages it does not hold: [index] upstream, else PyPI.

    So pip users need one index URL, and a package the index holds is never taken from upstream.
    """
    index = current.config.index
    return (index.upstream if index and index.upstream else DEFAULT_UPSTREAM).rstrip("/") + "/"


def registry_program() -> str:
    return shutil.which("docker-registry") or "docker-registry"


def prefect_program() -> str:
    beside = Path(sys.executable).parent / "prefect"
    return str(beside) if beside.exists() else (shutil.which("prefect") or "prefect")


def prefect_env(folder: Path, auth_string: str) -> dict[str, str]:
    """The local server's settings: its own home and SQLite database, basic auth with the local credentials."""
    return {
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_HOME": str(folder),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_API_URL": "",
    }


def prepare(current: Settings, name: str) -> None:
    """Write the files a service needs before it starts (htpasswd, registry config)."""
    folder = service_folder(current, name)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "index":
        creds = local_credentials(folder, "index")
        (folder / "packages").mkdir(exist_ok=True)
        write_private(folder / "htpasswd", index_htpasswd_line(creds.username, creds.password))
    elif name == "registry":
        creds = local_credentials(folder, "registry")
        write_private(folder / "htpasswd", registry_htpasswd_line(creds.username, creds.password))
        port = service_spec(current, name).port
        (folder / "config.yml").write_text(registry_config(folder, port), encoding="utf-8")


def index_htpasswd_line(username: str, password: str) -> str:
    from passlib.hash import apr_md5_crypt

    return f"{username}:{apr_md5_crypt.hash(password)}\n"


def registry_htpasswd_line(username: str, password: str) -> str:
    """bcrypt at its lowest cost: the registry verifies the hash on every request (at cost 10 that is
    50 ms per health check and per pushed layer), and the password itself sits in credentials.json
    beside it, readable by the same owner only, so a costlier hash would protect nothing."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{username}:{hashed}\n"


def registry_config(folder: Path, port: int) -> str:
    return f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {folder / 'data'}
  delete:
    enabled: true
http:
  addr: {svc.HOST}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: forkflow-registry
    path: {folder / 'htpasswd'}
"""


def local_connection(current: Settings) -> prefect_settings.Connection:
    url = f"http://{svc.HOST}:{service_spec(current, 'prefect').port}/api"
    return prefect_settings.connect(url, fallback_auth=local_prefect_auth(current, url))


def ensure_work_pools(current: Settings) -> None:
    """One process work pool per environment that uses the local server."""
    from tasks.adapters import prefect as prefect_adapter

    local = f"http://{svc.HOST}:{service_spec(current, 'prefect').port}/api"
    for env_name, env in current.config.environments.items():
        if (env.prefect_api_url or "").rstrip("/") != local or not env.work_pool:
            continue
        outcome = prefect_adapter.ensure_work_pool(local, env.work_pool, connection=local_connection(current))
        say(f"prefect: work pool {env.work_pool!r} for {env_name}: {outcome}")
