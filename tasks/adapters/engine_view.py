"""The Docker engine's images as one listing answered them: what up-to-date checks look up, in one request.

A no-op run asks, for every image cell, whether its base image is there (and
its labels), which images carry the cell's input hash and whether the image
the last build made is still there. One `GET /images/json` filtered by the
references of interest (the base images, the build and pushed tags' names)
answers all of it. A base image's content (its layers, which the input hash
counts) is not in a listing: it is a function of the image's id, so it is
asked once per id with an inspect and kept by the caller.

It answers the lookups the docker adapter's functions make (`inspect` with the
listing's fields, `labelled`, `content`, the engine's `platform`), so the image
stage's planning code takes it where it takes an Engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tasks.adapters import engine_api
from tasks.adapters.docker import ENGINE_FIX, Engine, content_of
from tasks.adapters.limits import limits
from tasks.core.errors import ForkflowError

DEFAULT_REGISTRY_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/")


def familiar(ref: str) -> str:
    """`python:3.12-slim` for `docker.io/library/python:3.12-slim`, with `:latest` when no tag or digest is given,
    as the engine lists its images' names."""
    for prefix in DEFAULT_REGISTRY_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    if "@" in ref or ref.startswith("sha256:") or ":" in ref.rsplit("/", 1)[-1]:
        return ref
    return ref + ":latest"


@dataclass
class EngineView:
    """One listing of the engine's images (only those whose names match `patterns`), answering lookups."""

    listed: list[dict[str, Any]]
    platform: str
    engine: Engine  # asked only for what a listing does not hold: a base image's content the first time
    contents: MutableMapping[str, str] = field(default_factory=dict)  # image id -> content, kept by the caller

    def find(self, ref: str) -> dict[str, Any] | None:
        name = familiar(ref)
        for item in self.listed:
            if name in (item.get("Id"), *(item.get("RepoTags") or ()), *(item.get("RepoDigests") or ())):
                return item
        return None

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """The listing's fields of an image in `docker image inspect`'s shape: Id, Size, Config.Labels."""
        item = self.find(ref)
        if item is None:
            return None
        return {"Id": item["Id"], "Size": item.get("Size"), "Config": {"Labels": item.get("Labels") or {}}}

    def labelled(self, label: str, value: str) -> list[str]:
        return [str(item["Id"]) for item in self.listed if (item.get("Labels") or {}).get(label) == value]

    def content(self, ref: str) -> str | None:
        """The image's content (see docker.image_content): known by its id, else inspected once."""
        item = self.find(ref)
        if item is None:
            return None
        image = str(item["Id"])
        if image not in self.contents:
            attrs = self.engine.inspect(image)
            if attrs is None:
                return None
            self.contents[image] = content_of(attrs)
        return self.contents[image]

    def version(self) -> dict[str, Any]:
        return self.engine.version()


def list_images(engine: Engine, patterns: Iterable[str]) -> list[dict[str, Any]]:
    """The engine's images with a name matching one of `patterns` (the engine's reference filter: `*` globs)."""
    if engine.api is None:
        return list(engine.sdk.api.images(filters={"reference": sorted(set(patterns))}))
    filters = json.dumps({"reference": sorted(set(patterns))})
    answer = engine.get("/images/json", {"filters": filters})
    if answer.status != 200:
        raise ForkflowError(f"the Docker engine could not list images: {answer.status} {str(answer.body)[:200]}",
                            fix=ENGINE_FIX)
    return list(answer.body or [])


def look(patterns: Iterable[str], platform: str, contents: MutableMapping[str, str]) -> EngineView:
    """One listing of the engine DOCKER_HOST names; a ForkflowError saying how to get one when it does not answer.
    `platform`: the engine's own, when the caller knows it ("" asks the engine when it is needed)."""
    engine = Engine(engine_api.from_env(timeout=limits().engine), 600)
    if engine.api is None:
        engine.ping()
    return EngineView(list_images(engine, patterns), platform, engine, contents)
