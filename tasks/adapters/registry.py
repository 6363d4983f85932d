"""An OCI registry's HTTP API: what a tag points at and that image's labels, read without pulling it;
the images of an index per platform; an index put together from images already pushed.

Plain HTTP for a registry on this machine (127.0.0.1, localhost), HTTPS elsewhere; basic auth when
credentials are given, and the token exchange public registries ask for (a `Bearer` challenge: a token
from the realm it names). Credentials travel in request headers, never in argv or a log line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.adapters.limits import limits, no_answer
from tasks.core.errors import ForkflowError
from tasks.core.http_status import status_fix

DOCKER_INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
IMAGE_TYPES = ("application/vnd.oci.image.manifest.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json")
CREDENTIALS = "FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD (environment variables)"


class RegistryUnreachable(ForkflowError):
    """The registry did not answer (it is down, or the network is)."""


@dataclass(frozen=True)
class Tagged:
    """What a tag points at: the manifest's digest and the image's labels (of its first platform)."""

    digest: str
    labels: Mapping[str, str]
    platforms: tuple[str, ...] = ()  # an index's platforms, `linux/arm64`; () for a single image


def base_url(registry: str) -> str:
    host = registry.rstrip("/")
    local = host.split(":", 1)[0] in ("127.0.0.1", "localhost") or host.startswith("127.")
    return f"{'http' if local else 'https'}://{host}/v2"


def tagged(registry: str, repository: str, tags: list[str], auth: Mapping[str, str] | None) -> dict[str, Tagged | None]:
    """What each tag points at (None when the registry has no such tag or repository), over one connection;
    the labels of each distinct image are read once."""
    found: dict[str, Tagged | None] = {}
    labels: dict[str, Mapping[str, str]] = {}
    with Connection(registry, auth) as http:
        for tag in tags:
            manifest = get(http, f"/{repository}/manifests/{tag}", registry, accept=INDEX_TYPES + IMAGE_TYPES)
            if manifest is None:
                found[tag] = None
                continue
            digest = manifest.headers.get("Docker-Content-Digest", "")
            body = manifest.json()
            if digest not in labels:
                labels[digest] = image_labels(http, repository, registry, body)
            found[tag] = Tagged(digest, labels[digest], tuple(platform_of(m) for m in body.get("manifests", [])))
    return found


class Connection:
    """HTTP to one registry over kept-alive connections (the standard library's http.client: a registry
    check must cost less than its answer); a failure to connect is RegistryUnreachable."""

    def __init__(self, registry: str, auth: Mapping[str, str] | None):
        self.registry = registry
        self.base = base_url(registry)
        self.basic = "Basic " + base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode() \
            if auth else ""
        self.token = ""
        self.open: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        for connection in self.open.values():
            connection.close()
        http_client = sys.modules.get("http.client")  # loaded only when an https registry was asked
        if isinstance(error, OSError) or (http_client is not None and isinstance(error, http_client.HTTPException)):
            raise RegistryUnreachable(f"registry {self.registry} did not answer: {error}",
                                      where=f"[images] registry = {self.registry!r}",
                                      fix="start it (`doit services:registry` for the local one) or correct "
                                          "[images] registry") from None

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        return self.request("GET", self.base + path, None, dict(headers or {}))

    def put(self, path: str, content: bytes, headers: Mapping[str, str]) -> Answer:
        return self.request("PUT", self.base + path, content, dict(headers))

    def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """The answer, after a Bearer challenge (a token, then once more) and redirects (credentials go
        to the registry's own host only)."""
        from urllib.parse import urljoin, urlsplit

        home = urlsplit(self.base).netloc
        asked = False
        for _ in range(8):
            ours = urlsplit(url).netloc == home
            credentials = (f"Bearer {self.token}" if self.token else self.basic) if ours else ""
            answer = self.send(method, url, body, {**headers, **({"Authorization": credentials} if credentials else {})})
            challenge = answer.headers.get("WWW-Authenticate", "")
            if answer.status_code == 401 and challenge.lower().startswith("bearer ") and not asked:
                self.token, asked = self.fetch_token(challenge), True
                continue
            if answer.status_code in (301, 302, 303, 307, 308) and answer.headers.get("Location"):
                url = urljoin(url, answer.headers["Location"])
                method, body = ("GET", None) if answer.status_code == 303 else (method, body)
                continue
            return answer
        raise ForkflowError(f"registry {self.registry}: too many redirects for {url}", fix="read the registry's log")

    def send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme == "http":
            return self.send_plain(method, parts, body, headers)
        import http.client

        key = (parts.scheme, parts.netloc)
        if key not in self.open:
            seconds = limits().registry
            self.open[key] = http.client.HTTPSConnection(parts.netloc, timeout=seconds, context=tls_context()) \
                if parts.scheme == "https" else http.client.HTTPConnection(parts.netloc, timeout=seconds)
        connection = self.open[key]
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):  # a kept-alive one closed
                connection.close()
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
            return Answer(response.status, response.reason, response.headers, response.read())
        except TimeoutError:
            connection.close()
            raise no_answer(f"the registry {self.registry} ({method} {parts.path})", "registry", limits().registry,
                            where="[images] registry") from None

    def send_plain(self, method: str, parts: Any, body: bytes | None, headers: dict[str, str]) -> Answer:
        """Over a socket kept open between requests, read by plain_http (http.client brings ssl and the email
        parser into a no-op's image checks); a kept connection the registry closed meanwhile is replaced once."""
        from tasks.adapters.plain_http import Link, address_of, exchange_kept, head_of

        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        data = head_of(method, target, parts.netloc, body, headers, "keep-alive") + (body or b"")

        def connect() -> Link:
            try:
                return Link.tcp(address_of(parts), limits().registry)
            except TimeoutError:  # no connection at all: unreachable (RegistryUnreachable on exit), as a refusal is
                raise ConnectionError(f"no connection within {limits().registry:g} s") from None

        try:
            link, found = exchange_kept(self.open.pop(key, None), connect, data, method)
        except TimeoutError:  # connected, but no answer in time
            raise no_answer(f"the registry {self.registry} ({method} {parts.path})", "registry", limits().registry,
                            where="[images] registry") from None
        if found.reusable:
            self.open[key] = link
        return Answer(found.status, found.reason, Headers(found.headers), found.body)

    def fetch_token(self, challenge: str) -> str:
        """A token from the realm a `Bearer realm=...,service=...,scope=...` challenge names."""
        from urllib.parse import urlencode

        asked = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urlencode({key: asked[key] for key in ("service", "scope") if key in asked})
        realm = asked.get("realm", "")
        answer = self.send("GET", f"{realm}?{query}" if query else realm, None,
                           {"Authorization": self.basic} if self.basic else {})
        data = answer.json() if answer.status_code == 200 else {}
        token = str(data.get("token") or data.get("access_token") or "")
        if not token:
            raise ForkflowError(f"registry {self.registry}: its token service {realm} answered {answer.status_code}",
                                fix=status_fix(answer.status_code, "the registry's token service", CREDENTIALS,
                                               f"check {CREDENTIALS} and the image's name"))
        return token


class Headers:
    """An answer's headers (names read in lower case by plain_http): `get` and `[]` in any case, as http.client's."""

    def __init__(self, found: dict[str, str]):
        self.found = found

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.found.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self.found[name.lower()]


@dataclass(frozen=True)
class Answer:
    status_code: int
    reason_phrase: str
    headers: Any  # http.client's headers: case-insensitive .get
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            raise ForkflowError(f"a registry answered {self.status_code} with something that is not JSON: "
                                f"{self.text[:200]!r}", fix="check [images] registry: is it a registry?") from None


@functools.cache
def tls_context() -> Any:
    """One TLS context per process: making one (loading the CA bundle) takes longer than a local registry's answer."""
    import ssl

    return ssl.create_default_context()


def platform_of(descriptor: Mapping[str, Any]) -> str:
    """`linux/arm64` (with `/v8` when the index gives a variant) from an index entry."""
    found = descriptor.get("platform") or {}
    parts = [found.get("os", "unknown"), found.get("architecture", "unknown")]
    return "/".join(parts + ([found["variant"]] if found.get("variant") else []))


def platform_images(registry: str, repository: str, reference: str,
                    auth: Mapping[str, str] | None) -> dict[str, str] | None:
    """platform -> the digest of that platform's image, for what `reference` (a tag or digest) points at;
    a single image counts for the platform its config names. None when there is no such tag."""
    with Connection(registry, auth) as http:
        manifest = get(http, f"/{repository}/manifests/{reference}", registry, accept=INDEX_TYPES + IMAGE_TYPES)
        if manifest is None:
            return None
        body = manifest.json()
        if "manifests" in body:
            return {platform_of(m): str(m["digest"]) for m in body["manifests"]}
        config = get(http, f"/{repository}/blobs/{body['config']['digest']}", registry)
        data = config.json() if config is not None else {}
        platform = f"{data.get('os', 'linux')}/{data.get('architecture', 'unknown')}"
        return {platform: manifest.headers.get("Docker-Content-Digest", "")}


def put_index(registry: str, repository: str, tags: list[str], images: Mapping[str, str],
              auth: Mapping[str, str] | None) -> str:
    """A manifest list of `images` (platform -> digest of an image already in `repository`), put under every tag;
    returns its digest."""
    with Connection(registry, auth) as http:
        entries = [descriptor(http, registry, repository, platform, digest) for platform, digest in images.items()]
        kind = OCI_INDEX if all(e["mediaType"] == IMAGE_TYPES[0] for e in entries) else DOCKER_INDEX
        body = json.dumps({"schemaVersion": 2, "mediaType": kind, "manifests": entries}, indent=3).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        for tag in tags:
            answer = http.put(f"/{repository}/manifests/{tag}", content=body, headers={"Content-Type": kind})
            if answer.status_code >= 300:
                raise ForkflowError(f"registry {registry}: putting the index {repository}:{tag} answered "
                                    f"{answer.status_code} {answer.text[:300]}", where=f"[images] registry = {registry!r}",
                                    fix=status_fix(answer.status_code, "the registry", CREDENTIALS,
                                                   "read the registry's log; every platform's image must be pushed first"))
    return digest


def descriptor(http: Any, registry: str, repository: str, platform: str, digest: str) -> dict[str, Any]:
    """An index entry for an image in the registry: its media type, size and digest, and the platform."""
    manifest = get(http, f"/{repository}/manifests/{digest}", registry, accept=IMAGE_TYPES + INDEX_TYPES)
    if manifest is None:
        raise ForkflowError(f"registry {registry}: {repository}@{digest} ({platform}) is not there",
                            fix="push that platform's image first")
    kind = manifest.headers.get("Content-Type", "").split(";")[0]
    if kind not in IMAGE_TYPES:
        raise ForkflowError(f"registry {registry}: {repository}@{digest} ({platform}) is a {kind or 'untyped'} "
                            "manifest, not one image", fix="build each platform's image without attestations "
                            "(`--provenance=false`), so its push is one image manifest")
    os_name, architecture, *variant = platform.split("/")
    found = {"os": os_name, "architecture": architecture, **({"variant": variant[0]} if variant else {})}
    return {"mediaType": manifest.headers.get("Content-Type", IMAGE_TYPES[1]).split(";")[0],
            "size": len(manifest.content), "digest": digest, "platform": found}


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
    if response.status_code >= 300:
        raise ForkflowError(f"registry {registry}: GET {path} answered {response.status_code} {response.reason_phrase}",
                            where=f"[images] registry = {registry!r}",
                            fix=status_fix(response.status_code, "the registry", CREDENTIALS, "read the registry's log"))
    return response


def tag_names(registry: str, repository: str, auth: Mapping[str, str] | None) -> set[str]:
    """Every tag of `repository` (none when the registry does not know it): one request, more only when the
    registry pages its answer (a `Link: <...>; rel="next"` header)."""
    found: set[str] = set()
    path: str | None = f"/{repository}/tags/list"
    with Connection(registry, auth) as http:
        while path:
            answer = get(http, path, registry)
            if answer is None:
                return found
            found.update(answer.json().get("tags") or ())
            path = next_page(answer.headers.get("Link", ""))
    return found


def next_page(link: str) -> str | None:
    """The path after `/v2` of a `Link: </v2/name/tags/list?last=x&n=100>; rel="next"` header, else None."""
    match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    if not match:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(match.group(1))
    path = parts.path.removeprefix("/v2")
    return path + (f"?{parts.query}" if parts.query else "")
