"""Thin adapter over the Docker engine (docker SDK)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.core.errors import ForkflowError

ENGINE_FIX = (
    "install and start a Docker engine: on Debian/Ubuntu `apt-get install -y docker.io` then "
    "`dockerd &` (or `systemctl start docker`); set DOCKER_HOST if it listens elsewhere"
)


@dataclass(frozen=True)
class EngineStatus:
    reachable: bool
    detail: str


def engine_status() -> EngineStatus:
    try:
        client = connect()
        version = client.version()
    except ForkflowError as err:
        return EngineStatus(False, err.what)
    return EngineStatus(True, f"Docker {version.get('Version', '?')} ({version.get('Os', '?')}/{version.get('Arch', '?')})")


def connect(timeout: int = 600) -> Any:
    """A docker client that answered a ping, or a ForkflowError saying how to get one."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as err:
        raise ForkflowError(
            f"the Docker engine is not reachable: {first_line(str(err))}",
            fix=ENGINE_FIX,
        ) from None
    return client


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
