"""Thin adapter over the Docker engine (docker SDK).

Calls that change something (build, tag, push, import, pull) take `noop`:
then they say what they would do and change nothing. Registry credentials go
to the engine in API request bodies (login, auth_config), never in argv.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.errors import CommandError, ForkflowError
from tasks.output import say

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


REGISTRY_CREDENTIALS = "FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD"


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    steps: int
    cached_steps: int
    seconds: float


def engine_platform(client: Any) -> str:
    """The platform the engine builds for natively, like `linux/amd64`."""
    version = client.version()
    return f"{version.get('Os', 'linux')}/{version.get('Arch', 'amd64')}"


def buildx_available() -> bool:
    from tasks.adapters.run import run

    if not shutil.which("docker"):
        return False
    return run(["docker", "buildx", "version"], check=False).returncode == 0


def image_id(client: Any, ref: str) -> str | None:
    """The id of a local image, or None when the engine has no such image."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(ref).id)
    except ImageNotFound:
        return None


def image_attrs(client: Any, ref: str) -> dict[str, Any]:
    return dict(client.images.get(ref).attrs)


def images_labelled(client: Any, label: str, value: str) -> list[str]:
    """Ids of local images carrying label=value."""
    return [str(image.id) for image in client.images.list(filters={"label": f"{label}={value}"})]


def build_image(client: Any, context: Path, tag: str, *, dockerfile: str = "Dockerfile",
                buildargs: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                log_file: Path, noop: bool = False) -> BuildResult | None:
    """Build `context` with the engine's builder, streaming its output to `log_file`."""
    if noop:
        say(f"would build {tag} from {context}")
        return None
    from docker.errors import APIError

    start = time.monotonic()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    steps = cached = 0
    built = ""
    with log_file.open("w", encoding="utf-8") as log:
        try:
            stream = client.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=dict(buildargs or {}),
                                      labels=dict(labels or {}), rm=True, forcerm=True, pull=False, decode=True)
            for chunk in stream:
                text = chunk.get("stream", "")
                log.write(text)
                steps += text.startswith("Step ")
                cached += "Using cache" in text
                if "aux" in chunk and "ID" in chunk["aux"]:
                    built = chunk["aux"]["ID"]
                if "error" in chunk:
                    log.write(chunk["error"] + "\n")
                    raise build_failed(tag, chunk["error"], log_file)
        except APIError as err:
            raise build_failed(tag, first_line(str(err.explanation or err)), log_file) from None
    built = built or image_id(client, tag) or ""
    if not built:
        raise build_failed(tag, "the engine reported no image id", log_file)
    return BuildResult(built, steps, cached, time.monotonic() - start)


def build_failed(tag: str, message: str, log_file: Path) -> CommandError:
    tail = "\n".join("    " + line for line in log_file.read_text(encoding="utf-8").splitlines()[-25:]) if log_file.exists() else ""
    return CommandError(f"docker build of {tag} failed: {message.strip()}\n{tail}", where=str(log_file),
                        fix="read the build log; fix the template, the wheels or the base image")


def tag_image(client: Any, image: str, repository: str, tag: str, *, noop: bool = False) -> None:
    if noop:
        say(f"would tag {image[:19]} as {repository}:{tag}")
        return
    if not client.api.tag(image, repository, tag, force=True):
        raise CommandError(f"could not tag {image} as {repository}:{tag}")


def run_container(client: Any, image: str, command: list[str], timeout: float = 300,
                  env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run `command` in a fresh container without network; return its exit code and output."""
    from docker.errors import APIError

    container = client.containers.create(image, command, network_disabled=True, environment=dict(env or {}))
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except Exception:
            container.kill()
            return 124, f"timed out after {timeout:.0f}s\n" + container.logs().decode(errors="replace")
        output = container.logs().decode(errors="replace")
        return int(status.get("StatusCode", 1)), output
    finally:
        try:
            container.remove(force=True)
        except APIError:
            pass


def login(client: Any, registry: str, username: str, password: str) -> None:
    """Check the credentials against the registry now, so a wrong one fails before any build."""
    from docker.errors import APIError

    try:
        client.login(username=username, password=password, registry=registry, reauth=True)
    except APIError as err:
        raise registry_error(registry, str(err.explanation or err)) from None


def push(client: Any, repository: str, tag: str, auth: Mapping[str, str], *, noop: bool = False) -> str | None:
    """Push one tag; return the digest the registry stored. Any error in the stream is a failure."""
    if noop:
        say(f"would push {repository}:{tag}")
        return None
    from docker.errors import APIError

    digest = ""
    try:
        for item in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=dict(auth)):
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


def registry_error(registry: str, message: str, ref: str | None = None) -> ForkflowError:
    """A push or login failure, with what to do about it."""
    lowered = message.lower()
    what = f"registry {registry}: {'push of ' + ref + ' failed: ' if ref else ''}{first_line(message)}"
    if "unauthorized" in lowered or "401" in lowered or "authentication required" in lowered:
        fix = f"the registry refused the credentials; set {REGISTRY_CREDENTIALS} to valid ones"
    elif any(word in lowered for word in ("connection refused", "no such host", "timeout", "dial tcp", "eof")):
        fix = f"the registry at {registry} is not reachable: start it (`doit services:registry` for the local one) " \
              "or correct [images] registry"
    else:
        fix = "read the registry's message above"
    return ForkflowError(what, where=f"[images] registry = {registry!r}", fix=fix)


def import_rootfs(client: Any, tarball: Path, ref: str, changes: Iterable[str], *, noop: bool = False) -> str | None:
    """`docker import` a root filesystem tarball as `ref`; return the image id."""
    if noop:
        say(f"would import {tarball} as {ref}")
        return None
    repository, _, tag = ref.rpartition(":")
    client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=list(changes))
    found = image_id(client, ref)
    if not found:
        raise CommandError(f"docker import of {tarball} as {ref} left no image")
    return found


def pull(client: Any, ref: str, *, where: str = "[images] base_image", noop: bool = False) -> str | None:
    if noop:
        say(f"would pull {ref}")
        return None
    from docker.errors import APIError

    repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    try:
        client.images.pull(repository, tag=tag)
    except APIError as err:
        raise ForkflowError(f"cannot pull {ref}: {first_line(str(err.explanation or err))}", where=where,
                            fix="make its registry reachable, or build or import an image under that name") from None
    return image_id(client, ref)


def remove_image(client: Any, ref: str) -> None:
    from docker.errors import ImageNotFound

    try:
        client.images.remove(ref, force=True)
    except ImageNotFound:
        pass
