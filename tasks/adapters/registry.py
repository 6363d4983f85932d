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


def tagged(registry: str, repository: str, tag: str, auth: Mapping[str, str] | None) -> Tagged | None:
    """What `tag` points at, or None when the registry has no such tag or repository."""
    import httpx

    credentials = (auth["username"], auth["password"]) if auth else None
    try:
        with httpx.Client(base_url=base_url(registry), auth=credentials, timeout=TIMEOUT, follow_redirects=True) as http:
            manifest = get(http, f"/{repository}/manifests/{tag}", registry, accept=INDEX_TYPES + IMAGE_TYPES)
            if manifest is None:
                return None
            digest = manifest.headers.get("Docker-Content-Digest", "")
            body: dict[str, Any] = manifest.json()
            if body.get("mediaType") in INDEX_TYPES or "manifests" in body:
                first = body["manifests"][0]["digest"]
                found = get(http, f"/{repository}/manifests/{first}", registry, accept=IMAGE_TYPES)
                body = found.json() if found is not None else {}
            config = get(http, f"/{repository}/blobs/{body['config']['digest']}", registry) if body else None
    except httpx.HTTPError as err:
        raise RegistryUnreachable(f"registry {registry} did not answer: {err}", where=f"[images] registry = {registry!r}",
                                  fix="start it (`doit services:registry` for the local one) or correct [images] "
                                      "registry") from None
    labels = ((config.json().get("config") or {}).get("Labels") or {}) if config is not None else {}
    return Tagged(digest, labels)


def get(http: Any, path: str, registry: str, accept: tuple[str, ...] = ()) -> Any:
    """The answer to GET `path`; None on 404; a clear error when the registry refuses the credentials."""
    response = http.get(path, headers={"Accept": ", ".join(accept)} if accept else {})
    if response.status_code == 404:
        return None
    if response.status_code in (401, 403):
        raise ForkflowError(f"registry {registry} refused the credentials ({response.status_code})",
                            where="environment",
                            fix="set FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD to valid ones")
    if response.status_code >= 300:
        raise ForkflowError(f"registry {registry}: GET {path} answered {response.status_code}",
                            fix="read the registry's log")
    return response
