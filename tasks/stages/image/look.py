"""What the image stage's up-to-date checks ask other processes: one question per system, once per run.

- The Docker engine: one listing of the images whose names matter (the base
  images, the cells' build and pushed tags) answers every `image-base` and
  `image:<cell>` check (tasks.adapters.engine_view). A base image's content is
  known by its id (kept in `<state>/images/base-contents.json` by the build
  on it, else by the first check that reads it), and the
  engine's own platform per DOCKER_HOST (`<state>/images/engine.json`), so
  neither is asked again.
- The registry: one tag listing per repository tells whether every tag the
  last run pushed is still there; a tag deleted from the registry makes its
  cell run again (which pushes it again).

Both questions are sent as the run starts (tasks.early) and their answers are
shared by every check until an action runs (tasks.pipeline.prefetch.shared).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters import engine_api
from tasks.adapters.engine_view import EngineView, familiar
from tasks.core import base_image as base_rules
from tasks.pipeline import prefetch
from tasks.pipeline.settings import read_json, write_json
from tasks.stages.image.setup import ImageSetup

ENGINE_KEY = "image:engine"
CONTENTS_FILE = "base-contents.json"
PLATFORM_FILE = "engine.json"
KEPT_CONTENTS = 64


def engine_view(setup: ImageSetup) -> EngineView:
    """The engine's images as one listing shows them, asked once for the checks of this run."""
    view: EngineView = prefetch.shared(ENGINE_KEY, partial(look_at_engine, setup))
    return view


def registry_tags(setup: ImageSetup) -> set[str]:
    """Every tag of the images' repository in the registry, asked once for the checks of this run."""
    found: set[str] = prefetch.shared(registry_key(setup), partial(list_tags, setup))
    return found


def ask_early(setup: ImageSetup) -> None:
    """Send the engine's question, and the registry's when images are pushed, as the run starts (not for a dry run:
    its checks do not ask)."""
    if setup.dry_run:
        return
    prefetch.send(ENGINE_KEY, partial(look_at_engine, setup))
    if setup.images.push:
        prefetch.send(registry_key(setup), partial(list_tags, setup))


def registry_key(setup: ImageSetup) -> str:
    return f"image:registry:{setup.repository}"


def list_tags(setup: ImageSetup) -> set[str]:
    from tasks.adapters import registry
    from tasks.pipeline.credentials import registry_auth

    host, path = setup.repository.split("/", 1)
    return registry.tag_names(host, path, registry_auth(setup.settings))


def patterns(setup: ImageSetup) -> list[str]:
    """The names the checks look up: the base images (configured, and made from a local interpreter), the cells'
    build tags and pushed tags, and the flows project's environments (`<image name>-<environment>`)."""
    names = []
    for name in setup.base_names:
        names.append(setup.base_reference(name))
        if name != "conda":
            names.append(base_rules.local_base_name(name))
    names += [f"{setup.repository.split('/', 1)[-1]}:build-*", f"{setup.repository}:*", f"{setup.image_name}-*:*"]
    return sorted({familiar(name) for name in names})


def look_at_engine(setup: ImageSetup) -> EngineView:
    from tasks.adapters import engine_view as views
    from tasks.adapters.docker import engine_platform

    host = os.environ.get("DOCKER_HOST") or engine_api.DEFAULT_HOST
    known = read_json(setup.state_folder / PLATFORM_FILE) or {}
    platform = str(known.get("platform") or "") if known.get("host") == host else ""
    view = views.look(patterns(setup), platform, Remembered(setup.state_folder / CONTENTS_FILE))
    if not platform:  # asked once per engine, then known
        write_json(setup.state_folder / PLATFORM_FILE, {"host": host, "platform": engine_platform(view)})
    return view


def base_content(setup: ImageSetup, client: Any, ref: str) -> str | None:
    """A base image's content (see docker.image_content): from the listing's known ids for a check; a build
    inspects it and keeps it by id, so the next run's checks need not ask."""
    if isinstance(client, EngineView):
        return client.content(ref)
    from tasks.adapters.docker import content_of

    attrs = client.inspect(ref)
    if attrs is None:
        return None
    found = content_of(attrs)
    known = Remembered(setup.state_folder / CONTENTS_FILE)
    if known.get(str(attrs["Id"])) != found and not setup.dry_run:
        known[str(attrs["Id"])] = found
    return found


class Remembered(dict[str, str]):
    """Base image id -> content, read from a file and written back when one is added (the newest kept)."""

    def __init__(self, file: Path):
        super().__init__(read_json(file) or {})
        self.file = file

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        kept: dict[str, Any] = dict(list(self.items())[-KEPT_CONTENTS:])
        write_json(self.file, kept)
