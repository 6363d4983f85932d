"""An OCI registry's HTTP API: what a tag points at and that image's labels, read without pulling it.

Plain HTTP for a registry on this machine (127.0.0.1, localhost), HTTPS elsewhere; basic auth when
credentials are given (they travel in the request's header, never in argv or a log line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.core.errors import ForkflowError

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
IMAGE_TYPES = ("application/vnd.oci.image.manifest.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json")
TIMEOUT = 30.0


class RegistryUnreachable(ForkflowError):
    """The registry did not answer (it is down, or the network is)."""


@dataclass(frozen=True)
class Tagged:
    """What a tag points at: the manifest's digest and the image's labels (of its first platform)."""

    digest: str
    labels: Mapping[str, str]


def base_url(registry: str) -> str:
    host = registry.rstrip("/")
    local = host.split(":", 1)[0] in ("127.0.0.1", "localhost") or host.startswith("127.")
    return f"{'http' if local else 'https'}://{host}/v2"


def tagged(registry: str, repository: str, tags: list[str], auth: Mapping[str, str] | None) -> dict[str, Tagged | None]:
    """What each tag points at (None when the registry has no such tag or repository), over one connection;
    the labels of each distinct image are read once."""
    import httpx

    credentials = (auth["username"], auth["password"]) if auth else None
    found: dict[str, Tagged | None] = {}
    labels: dict[str, Mapping[str, str]] = {}
    try:
        with httpx.Client(base_url=base_url(registry), auth=credentials, timeout=TIMEOUT, follow_redirects=True) as http:
            for tag in tags:
                manifest = get(http, f"/{repository}/manifests/{tag}", registry, accept=INDEX_TYPES + IMAGE_TYPES)
                if manifest is None:
                    found[tag] = None
                    continue
                digest = manifest.headers.get("Docker-Content-Digest", "")
                if digest not in labels:
                    labels[digest] = image_labels(http, repository, registry, manifest.json())
                found[tag] = Tagged(digest, labels[digest])
    except httpx.HTTPError as err:
        raise RegistryUnreachable(f"registry {registry} did not answer: {err}", where=f"[images] registry = {registry!r}",
                                  fix="start it (`doit services:registry` for the local one) or correct [images] "
                                      "registry") from None
    return found


def image_labels(http: Any, repository: str, registry: str, body: dict[str, Any]) -> Mapping[str, str]:
    """The labels in an image's config (for an index, of its first platform's image)."""
    if body.get("mediaType") in INDEX_TYPES or "manifests" in body:
        first = get(http, f"/{repository}/manifests/{body['manifests'][0]['digest']}", registry, accept=IMAGE_TYPES)
        body = first.json() if first is not None else {}
    config = get(http, f"/{repository}/blobs/{body['config']['digest']}", registry) if body.get("config") else None
    found: Mapping[str, str] = ((config.json().get("config") or {}).get("Labels") or {}) if config is not None else {}
    return found


def get(http: Any, path: str, registry: str, accept: tuple[str, ...] = ()) -> Any:
    """The answer to GET `path`; None on 404; a clear error when the registry refuses the credentials."""
    response = http.get(path, headers={"Accept": ", ".join(accept)} if accept else {})
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise ForkflowError(f"registry {registry}: {response.status_code} {response.reason_phrase}",
                            where=f"[images] registry = {registry!r}",
                            fix="the registry refused the credentials; set FORKFLOW_REGISTRY_USERNAME / "
                                "FORKFLOW_REGISTRY_PASSWORD to valid ones")
    if response.status_code >= 300:
        raise ForkflowError(f"registry {registry}: GET {path} answered {response.status_code}",
                            fix="read the registry's log")
    return response
