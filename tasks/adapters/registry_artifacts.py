"""Artifacts attached to an image in an OCI registry (an SBOM): an OCI image manifest whose `subject` is the
image's manifest, so a registry with the OCI referrers API lists it among the image's referrers, put under the
tag `sha256-<hex of the image's digest>.<suffix>` as well, which every registry serves (the local
docker-registry 2.8 ignores `subject` and keeps the tag).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.adapters.registry import IMAGE_TYPES, INDEX_TYPES, Connection, get
from tasks.core.errors import ForkflowError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


@dataclass(frozen=True)
class Attached:
    """An artifact in the registry: its manifest's digest, the tag it is under, whether the registry took
    its `subject` (it answered with an `OCI-Subject` header: it serves the referrers API)."""

    digest: str
    tag: str
    referrer: bool


@dataclass(frozen=True)
class Artifact:
    """A file to attach: its media type (the manifest's `artifactType`), its bytes, the tag suffix it goes
    under, and annotations of its manifest."""

    media_type: str
    content: bytes
    suffix: str
    annotations: Mapping[str, str] = field(default_factory=dict)


def artifact_tag(subject: str, suffix: str) -> str:
    """`sha256-<hex>.<suffix>`: the tag scheme of artifacts attached to `subject` (cosign's, the OCI fallback's)."""
    return subject.replace(":", "-") + "." + suffix


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def attach(registry: str, repository: str, subject: str, artifact: Artifact, auth: Mapping[str, str] | None) -> Attached:
    """Put `artifact` in `repository` as an artifact of the manifest `subject` (a digest already there): its
    blob, an empty config, and a manifest naming the subject, under the tag `sha256-<hex>.<suffix>`."""
    with Connection(registry, auth) as http:
        found = get(http, f"/{repository}/manifests/{subject}", registry, accept=IMAGE_TYPES + INDEX_TYPES)
        if found is None:
            raise ForkflowError(f"registry {registry}: {repository}@{subject} is not there to attach a "
                                f"{artifact.media_type} to", fix="push the image first (`doit image`)")
        kind = found.headers.get("Content-Type", IMAGE_TYPES[0]).split(";")[0]
        content = artifact.content
        for blob in (EMPTY, content):
            put_blob(http, registry, repository, blob)
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact.media_type,
            "config": {"mediaType": EMPTY_CONFIG, "digest": digest_of(EMPTY), "size": len(EMPTY)},
            "layers": [{"mediaType": artifact.media_type, "digest": digest_of(content), "size": len(content)}],
            "subject": {"mediaType": kind, "digest": subject, "size": len(found.content)},
            "annotations": dict(artifact.annotations),
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        tag = artifact_tag(subject, artifact.suffix)
        answer = http.put(f"/{repository}/manifests/{tag}", body, {"Content-Type": OCI_MANIFEST})
        if answer.status_code >= 300:
            raise ForkflowError(f"registry {registry}: putting {repository}:{tag} answered {answer.status_code} "
                                f"{answer.text[:300]}", where=f"[images] registry = {registry!r}",
                                fix="read the registry's log")
        return Attached(digest_of(body), tag, bool(answer.headers.get("OCI-Subject")))


def put_blob(http: Any, registry: str, repository: str, content: bytes) -> None:
    """A blob uploaded in one request (POST for an upload URL, PUT with the digest), unless it is there."""
    from urllib.parse import urlencode, urljoin

    digest = digest_of(content)
    there = http.request("HEAD", f"{http.base}/{repository}/blobs/{digest}", None, {})
    if there.status_code == 200:
        return
    started = http.request("POST", f"{http.base}/{repository}/blobs/uploads/", b"", {"Content-Length": "0"})
    location = started.headers.get("Location", "")
    if started.status_code != 202 or not location:
        raise ForkflowError(f"registry {registry}: starting an upload to {repository} answered "
                            f"{started.status_code} {started.text[:200]}", fix="read the registry's log")
    url = urljoin(http.base + "/", location)
    url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
    done = http.request("PUT", url, content, {"Content-Type": "application/octet-stream",
                                               "Content-Length": str(len(content))})
    if done.status_code >= 300:
        raise ForkflowError(f"registry {registry}: uploading a blob to {repository} answered {done.status_code} "
                            f"{done.text[:200]}", fix="read the registry's log")


def read_attached(registry: str, repository: str, subject: str, suffix: str,
                  auth: Mapping[str, str] | None) -> tuple[str, bytes] | None:
    """The artifact under `sha256-<hex>.<suffix>` for `subject`: (its manifest's digest, its first layer's
    content); None when there is none."""
    with Connection(registry, auth) as http:
        found = get(http, f"/{repository}/manifests/{artifact_tag(subject, suffix)}", registry, accept=(OCI_MANIFEST,))
        if found is None:
            return None
        manifest = found.json()
        layer = get(http, f"/{repository}/blobs/{manifest['layers'][0]['digest']}", registry)
        return found.headers.get("Docker-Content-Digest", ""), layer.content if layer is not None else b""
