"""Credentials for the package index and the registry: from the environment.

`TWINE_USERNAME` / `TWINE_PASSWORD` for the index and
`FORKFLOW_REGISTRY_USERNAME` / `FORKFLOW_REGISTRY_PASSWORD` for the registry,
`FORKFLOW_PREFECT_USERNAME` / `FORKFLOW_PREFECT_PASSWORD` for the local Prefect
server's basic auth (clients send them as PREFECT_API_AUTH_STRING).
When they are not set and the service is the local one started by
`doit services`, the credentials that service was started with are used;
they live in the state folder with mode 0600 and are never printed.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_NAMES = {
    "index": ("TWINE_USERNAME", "TWINE_PASSWORD"),
    "registry": ("FORKFLOW_REGISTRY_USERNAME", "FORKFLOW_REGISTRY_PASSWORD"),
    "prefect": ("FORKFLOW_PREFECT_USERNAME", "FORKFLOW_PREFECT_PASSWORD"),
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def from_environment(service: str) -> Credentials | None:
    user_var, password_var = ENV_NAMES[service]
    password = os.environ.get(password_var)
    if not password:
        return None
    return Credentials(os.environ.get(user_var, "forkflow"), password)


def local_credentials(folder: Path, service: str) -> Credentials:
    """The credentials a local service accepts: saved when it is first set up, from the
    environment when set then, else generated. Later changes to the environment do not
    change what the service accepts (so a wrong password stays wrong)."""
    file = folder / "credentials.json"
    if file.exists():
        data = json.loads(file.read_text(encoding="utf-8"))
        return Credentials(data["username"], data["password"])
    made = from_environment(service) or Credentials("forkflow", secrets.token_urlsafe(18))
    folder.mkdir(parents=True, exist_ok=True)
    write_private(file, json.dumps({"username": made.username, "password": made.password}))
    return made


def write_private(file: Path, text: str) -> None:
    """Write a file only its owner can read (created with mode 0600, never readable in between)."""
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def local_prefect_auth(current: Any, api_url: str) -> str | None:
    """`user:password` of the local Prefect server (`doit services`) when `api_url` is that server, else None."""
    services = current.config.services
    if services is None:
        return None
    port = services.prefect.port
    if api_url.rstrip("/") not in (f"http://127.0.0.1:{port}/api", f"http://localhost:{port}/api"):
        return None
    folder = current.services_dir / "prefect"
    if not (folder / "credentials.json").exists():
        return None  # not set up by `doit services` yet: nothing to send, and nothing is created here
    creds = local_credentials(folder, "prefect")
    return f"{creds.username}:{creds.password}"


def environment_connection(current: Any, name: str) -> Any:
    """How to reach one environment's server: its URL and credentials, Prefect's settings where the config is
    silent, and the local server's credentials when it is the local server."""
    from tasks.adapters.prefect_settings import connect

    env = current.config.environments[name]
    found = connect(env.prefect_api_url, api_key_env=env.api_key_env, auth_string_env=env.auth_string_env)
    local = local_prefect_auth(current, found.api_url)
    if local and "Authorization" not in found.headers:
        return connect(found.api_url, fallback_auth=local)
    return found
