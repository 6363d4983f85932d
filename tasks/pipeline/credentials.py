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
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tasks.core.errors import ForkflowError
from tasks.core.secrets import Credentials
from tasks.pipeline.heal import treat_as_missing

if TYPE_CHECKING:
    from tasks.adapters.prefect_settings import Connection
    from tasks.pipeline.settings import Settings

ENV_NAMES = {
    "index": ("TWINE_USERNAME", "TWINE_PASSWORD"),
    "registry": ("FORKFLOW_REGISTRY_USERNAME", "FORKFLOW_REGISTRY_PASSWORD"),
    "prefect": ("FORKFLOW_PREFECT_USERNAME", "FORKFLOW_PREFECT_PASSWORD"),
}


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
    saved = saved_credentials(file)
    if saved is not None:
        return saved
    made = from_environment(service) or Credentials("forkflow", secrets.token_urlsafe(18))
    folder.mkdir(parents=True, exist_ok=True)
    write_private(file, json.dumps({"username": made.username, "password": made.password}))
    return made


def saved_credentials(file: Path) -> Credentials | None:
    """The credentials in `file`; None when it is missing, or unreadable (then set aside with one warning, and
    new ones are made: `doit services` restarts the service with them)."""
    if not file.exists() and not file.is_symlink():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Credentials(str(data["username"]), str(data["password"]))
    except (OSError, ValueError) as err:
        problem = str(err).splitlines()[0]
    except (KeyError, TypeError):
        problem = "not an object with a username and a password"
    treat_as_missing(file, problem, "new credentials are made, and `doit services` restarts the service with them")
    return None


def write_private(file: Path, text: str) -> None:
    """Write a file only its owner can read (created with mode 0600, never readable in between)."""
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


LOCAL_HOSTS = ("127.0.0.1", "localhost")


def is_local_service(current: Settings, service: str, address: str | None) -> bool:
    """Whether `address` (a URL, or host:port for the registry) is the local service `doit services` runs."""
    services = current.config.services
    if services is None or not address:
        return False
    found = urlsplit(address if "://" in address else f"//{address}")
    return found.hostname in LOCAL_HOSTS and found.port == getattr(services, service).port


def local_prefect_auth(current: Settings, api_url: str) -> str | None:
    """`user:password` of the local Prefect server (`doit services`) when `api_url` is that server, else None."""
    if not is_local_service(current, "prefect", api_url):
        return None
    folder = current.services_dir / "prefect"
    if not (folder / "credentials.json").exists():
        return None  # not set up by `doit services` yet: nothing to send, and nothing is created here
    creds = local_credentials(folder, "prefect")
    return f"{creds.username}:{creds.password}"


def environment_connection(current: Settings, name: str) -> Connection:
    """How to reach one environment's server: its URL and credentials, Prefect's settings where the config is
    silent, and the local server's credentials when it is the local server."""
    from tasks.adapters.prefect_settings import connect

    env = current.config.environments[name]
    folder, remember = prefect_folder(current), current.state_dir / PREFECT_SETTINGS_FILE
    found = connect(env.prefect_api_url, api_key_env=env.api_key_env, auth_string_env=env.auth_string_env, folder=folder,
                    remember=remember)
    local = local_prefect_auth(current, found.api_url)
    if local and "Authorization" not in found.headers:
        return connect(found.api_url, fallback_auth=local, folder=folder, remember=remember)
    return found


PREFECT_SETTINGS_FILE = "prefect-settings.json"  # Prefect's answers without secrets (tasks/adapters/prefect_settings.py)


def read_prefect_settings(current: Settings) -> None:
    """What every environment's connection starts from: Prefect's settings where `prefect deploy` would run. Not
    remembered yet, that is a child process that imports Prefect (about a second); called ahead, in a thread, the
    connections read later take the same answer (tasks.adapters.prefect_settings.read_settings)."""
    from tasks.adapters.prefect_settings import prefect_settings

    prefect_settings(prefect_folder(current), os.environ, current.state_dir / PREFECT_SETTINGS_FILE)


def prefect_folder(current: Settings) -> Path:
    """Where `prefect deploy` would run, so Prefect's settings are read there (its prefect.toml and .env): the
    folder of a prefect.yaml named by [flows] config (unless run_from = "path"), else the flows folder."""
    flows = current.config.flows
    if flows is None:
        return current.root
    named = [flows.config] if isinstance(flows.config, str) else list(flows.config or ())
    if len(named) == 1 and flows.run_from == "config" and not any(c in named[0] for c in "*?["):
        return current.path(named[0]).parent
    return current.path(flows.path)


def is_local_index(current: Settings) -> bool:
    return current.config.index is not None and is_local_service(current, "index", current.config.index.url)


def index_credentials(current: Settings) -> Credentials | None:
    """TWINE_USERNAME / TWINE_PASSWORD, else the local index's own credentials."""
    found = from_environment("index")
    if found or not is_local_index(current):
        return found
    return local_credentials(current.services_dir / "index", "index")


def is_local_registry(current: Settings) -> bool:
    return current.config.images is not None and is_local_service(current, "registry", current.config.images.registry)


def registry_auth(current: Settings) -> dict[str, str]:
    """Credentials from the environment, else the local registry service's own."""
    found = from_environment("registry")
    if found is None and is_local_registry(current):
        file = current.services_dir / "registry" / "credentials.json"
        if file.exists():
            found = local_credentials(file.parent, "registry")
    if found is None:
        registry = current.config.images.registry if current.config.images else "(none configured)"
        user_var, password_var = ENV_NAMES["registry"]
        raise ForkflowError(f"no credentials for the registry {registry}", where="environment",
                            fix=f"set {user_var} / {password_var}, or start the local registry with "
                            "`doit services:registry`")
    return {"username": found.username, "password": found.password}
