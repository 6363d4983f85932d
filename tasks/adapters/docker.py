"""Thin adapter over the Docker engine (docker SDK).

Every call does what it says: a dry run is decided by the stage, which
reports "would ..." and does not call here. Registry credentials go to the
engine in API request bodies (login, auth_config), never in argv.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tasks.adapters import engine_api
from tasks.adapters.limits import limits, no_answer
from tasks.core.errors import CommandError, ForkflowError
from tasks.core.http_status import status_fix
from tasks.core.values import sha256_hex

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
        engine = connect()
    except ForkflowError as err:
        return EngineStatus(False, err.what)
    try:
        version = engine.version()
    except ForkflowError as err:
        return EngineStatus(False, err.what)
    finally:
        engine.close()
    return EngineStatus(True, f"Docker {version.get('Version', '?')} ({version.get('Os', '?')}/{version.get('Arch', '?')})")


class Lookups(Protocol):
    """What the lookup functions below ask: an Engine, or one listing of its images (tasks.adapters.engine_view)."""

    platform: str

    def inspect(self, ref: str) -> dict[str, Any] | None: ...

    def labelled(self, label: str, value: str) -> list[str]: ...

    def content(self, ref: str) -> str | None: ...

    def version(self) -> dict[str, Any]: ...


class Engine:
    """One Docker engine: lookups over its HTTP API directly, everything else through the docker SDK,
    which is imported and connected only when something is built, tagged, pushed or run."""

    def __init__(self, api: engine_api.EngineApi | None, timeout: int):
        self.api = api
        self.timeout = timeout
        self._sdk: Any = None
        self.platform = ""  # the engine's own platform, once asked

    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            self._sdk = sdk_client(self.timeout)
        return self._sdk

    def close(self) -> None:
        """Close the connections to the engine (a later call opens them again)."""
        if self.api is not None:
            self.api.close()
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    def get(self, path: str, query: Mapping[str, str] | None = None) -> engine_api.Answer:
        assert self.api is not None
        try:
            return self.api.get(path, query)
        except TimeoutError:
            host = os.environ.get("DOCKER_HOST") or engine_api.DEFAULT_HOST
            raise no_answer(f"the Docker engine at {host} (GET {path})", "engine", self.api.timeout,
                            where="DOCKER_HOST") from None
        except OSError as err:
            raise unreachable(str(err) or type(err).__name__) from None

    def ping(self) -> None:
        if self.api is None:
            self.sdk.ping()
            return
        answer = self.get("/_ping")
        if answer.status != 200:
            raise unreachable(f"GET /_ping answered {answer.status} {str(answer.body)[:200]}")

    def version(self) -> dict[str, Any]:
        if self.api is None:
            return dict(self.sdk.version())
        return dict(self.get("/version").body or {})

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """`docker image inspect ref`, or None when the engine has no such image."""
        if self.api is None:
            return sdk_inspect(self.sdk, ref)
        answer = self.get(engine_api.image_path(ref))
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise ForkflowError(f"the Docker engine could not inspect {ref}: {answer.status} {str(answer.body)[:200]}",
                                fix=ENGINE_FIX)
        return dict(answer.body)

    def content(self, ref: str) -> str | None:
        """See image_content."""
        attrs = self.inspect(ref)
        return content_of(attrs) if attrs else None

    def labelled(self, label: str, value: str) -> list[str]:
        """Ids of local images carrying label=value."""
        if self.api is None:
            return [str(image.id) for image in self.sdk.images.list(filters={"label": f"{label}={value}"})]
        filters = json.dumps({"label": [f"{label}={value}"]})
        answer = self.get("/images/json", {"filters": filters})
        if answer.status != 200:
            raise ForkflowError(f"the Docker engine could not list images: {answer.status} {str(answer.body)[:200]}",
                                fix=ENGINE_FIX)
        return [str(item["Id"]) for item in answer.body or []]


def connect(timeout: int = 600) -> Engine:
    """The engine DOCKER_HOST names, having answered a ping, or a ForkflowError saying how to get one."""
    engine = Engine(engine_api.from_env(timeout=limits().engine), timeout)
    engine.ping()
    return engine


def sdk_client(timeout: int) -> Any:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as err:
        raise unreachable(first_line(str(err))) from None
    return client


def sdk_inspect(client: Any, ref: str) -> dict[str, Any] | None:
    from docker.errors import ImageNotFound

    try:
        return dict(client.images.get(ref).attrs)
    except ImageNotFound:
        return None


def unreachable(reason: str) -> ForkflowError:
    return ForkflowError(f"the Docker engine is not reachable: {first_line(reason)}", fix=ENGINE_FIX)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


REGISTRY_CREDENTIALS = "FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD"


def engine_platform(engine: Lookups) -> str:
    """The platform the engine builds for natively, like `linux/amd64` (asked once per engine)."""
    if not engine.platform:
        version = engine.version()
        engine.platform = f"{version.get('Os', 'linux')}/{version.get('Arch', 'amd64')}"
    return engine.platform


def image_id(engine: Lookups, ref: str) -> str | None:
    """The id of a local image, or None when the engine has no such image."""
    attrs = engine.inspect(ref) if ref else None
    return str(attrs["Id"]) if attrs else None


def image_content(engine: Lookups, ref: str) -> str | None:
    """The image by its content, the same on every machine that has it: its layers' digests and the config
    a build on top of it inherits (not the local image id, which a `docker import` makes anew each time)."""
    return engine.content(ref) if ref else None


def content_of(attrs: Mapping[str, Any]) -> str:
    """An image's content from its `docker image inspect` record (see image_content)."""
    config = attrs.get("Config") or {}
    inherited = {key: config.get(key) for key in ("Env", "Cmd", "Entrypoint", "User", "WorkingDir", "Labels")}
    text = json.dumps({"layers": (attrs.get("RootFS") or {}).get("Layers") or [], "config": inherited}, sort_keys=True)
    return "sha256:" + sha256_hex(text)


def image_platform(engine: Lookups, ref: str) -> str | None:
    """`linux/arm64` for a local image (with its variant when it has one); None when there is no such image."""
    attrs = engine.inspect(ref) if ref else None
    if not attrs:
        return None
    return "/".join([attrs.get("Os", "linux"), attrs.get("Architecture", "")] +
                    ([attrs["Variant"]] if attrs.get("Variant") else []))


def image_size(engine: Lookups, ref: str) -> int | None:
    """The image's size in bytes as the engine counts it (every layer, the base's included); None when absent."""
    attrs = engine.inspect(ref) if ref else None
    return int(attrs["Size"]) if attrs and attrs.get("Size") is not None else None


def image_attrs(engine: Lookups, ref: str) -> dict[str, Any] | None:
    """The image's `docker image inspect` record, or None when the engine has no such image."""
    return engine.inspect(ref)


def images_labelled(engine: Lookups, label: str, value: str) -> list[str]:
    """Ids of local images carrying label=value."""
    return engine.labelled(label, value)


def tag_image(engine: Engine, image: str, repository: str, tag: str) -> None:
    if not engine.sdk.api.tag(image, repository, tag, force=True):
        raise CommandError(f"could not tag {image} as {repository}:{tag}")


def run_container(engine: Engine, image: str, command: list[str], timeout: float = 300,
                  env: Mapping[str, str] | None = None, platform: str | None = None) -> tuple[int, str]:
    """Run `command` in a fresh container without network; return its exit code and output."""
    import requests
    from docker.errors import APIError

    container = engine.sdk.containers.create(image, command, network_disabled=True, environment=dict(env or {}),
                                             **({"platform": platform} if platform else {}))
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()
            return 124, f"timed out after {timeout:.0f}s\n" + container.logs().decode(errors="replace")
        output = container.logs().decode(errors="replace")
        return int(status.get("StatusCode", 1)), output
    finally:
        with contextlib.suppress(APIError):
            container.remove(force=True)


def login(engine: Engine, registry: str, username: str, password: str) -> None:
    """Check the credentials against the registry now, so a wrong one fails before any build."""
    from docker.errors import APIError

    try:
        engine.sdk.login(username=username, password=password, registry=registry, reauth=True)
    except APIError as err:
        raise registry_error(registry, str(err.explanation or err)) from None


def push(engine: Engine, repository: str, tag: str, auth: Mapping[str, str]) -> str:
    """Push one tag; return the digest the registry stored. Any error in the stream is a failure."""
    from docker.errors import APIError

    digest = ""
    try:
        for item in engine.sdk.api.push(repository, tag=tag, stream=True, decode=True, auth_config=dict(auth)):
            if item.get("error") or item.get("errorDetail"):
                message = item.get("error") or item["errorDetail"].get("message", "")
                raise registry_error(repository.split("/", 1)[0], message, f"{repository}:{tag}")
            digest = item.get("aux", {}).get("Digest", digest)
    except APIError as err:
        raise registry_error(repository.split("/", 1)[0], str(err.explanation or err), f"{repository}:{tag}") from None
    if not digest:
        raise ForkflowError(f"push of {repository}:{tag} ended without a digest from the registry",
                            fix="check the registry's log; push again")
    return digest


SERVER_FAILURES = ("500 internal", "502 bad", "503 service", "504 gateway", "received unexpected http status: 5")


def registry_error(registry: str, message: str, ref: str | None = None) -> ForkflowError:
    """A push or login failure, with what to do about it."""
    lowered = message.lower()
    what = f"registry {registry}: {'push of ' + ref + ' failed: ' if ref else ''}{first_line(message)}"
    if any(word in lowered for word in ("unauthorized", "401", "authentication required", "403", "denied", "forbidden")):
        fix = f"the registry refused the credentials; set {REGISTRY_CREDENTIALS} (environment variables) to valid ones"
    elif any(word in lowered for word in SERVER_FAILURES):
        fix = status_fix(500, "the registry", REGISTRY_CREDENTIALS, "")
    elif any(word in lowered for word in ("connection refused", "no such host", "timeout", "dial tcp", "eof")):
        fix = f"the registry at {registry} is not reachable: start it (`doit services:registry` for the local one) " \
              "or correct [images] registry"
    else:
        fix = "read the registry's message above"
    return ForkflowError(what, where=f"[images] registry = {registry!r}", fix=fix)


def import_rootfs(engine: Engine, tarball: Path, ref: str, changes: Iterable[str]) -> str:
    """`docker import` a root filesystem tarball as `ref`; return the image id."""
    repository, _, tag = ref.rpartition(":")
    engine.sdk.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=list(changes))
    found = image_id(engine, ref)
    if not found:
        raise CommandError(f"docker import of {tarball} as {ref} left no image")
    return found


def pull(engine: Engine, ref: str, *, where: str = "[images] base_image") -> str | None:
    from docker.errors import APIError

    repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    try:
        engine.sdk.images.pull(repository, tag=tag)
    except APIError as err:
        raise ForkflowError(f"cannot pull {ref}: {first_line(str(err.explanation or err))}", where=where,
                            fix="make its registry reachable, or build or import an image under that name") from None
    return image_id(engine, ref)


def remove_image(engine: Engine, ref: str) -> None:
    from docker.errors import ImageNotFound

    with contextlib.suppress(ImageNotFound):
        engine.sdk.images.remove(ref, force=True)


def untag(engine: Engine, ref: str) -> None:
    """Drop the name `ref` (the image stays while other names or containers use it); a name already gone is fine."""
    from docker.errors import APIError

    with contextlib.suppress(APIError):
        engine.sdk.images.remove(ref)
