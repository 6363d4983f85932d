"""image-base: each base image present in the engine: found, pulled, or made from a local interpreter."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters.console import say
from tasks.core import base_image as base_rules
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import is_dry_run
from tasks.stages.image import platforms
from tasks.stages.image.setup import ImageSetup, image_setup
from tasks.stages.image.state import engine

BASES: dict[tuple[int, str], str] = {}


def base_present(name: str, task: Any, values: Any) -> bool:
    if is_dry_run(False):
        return False
    from tasks.stages.image.look import engine_view

    setup = image_setup()
    try:
        return chosen_base(setup, engine_view(setup), name) is not None
    except ForkflowError:  # no engine: the task runs and says so
        return False


def labels_of(client: Any, ref: str) -> dict[str, str] | None:
    """The image's labels ({} when it has none), or None when the engine has no such image."""
    attrs = docker_adapter.image_attrs(client, ref)
    return None if attrs is None else dict((attrs.get("Config") or {}).get("Labels") or {})


def chosen_base(setup: ImageSetup, client: Any, name: str) -> str | None:
    """The base image an image of `name` is built on now, remembered for this process once found
    (`base_action` forgets it, since it may make another)."""
    key = (os.getpid(), name)
    if key not in BASES:
        found = find_base(setup, client, name)
        if found is None:
            return None
        BASES[key] = found
    return BASES[key]


def find_base(setup: ImageSetup, client: Any, name: str) -> str | None:
    """The base image an image of `name` (a Python version, or conda) is built on now: the configured one
    when it is present and not made here, else a current local base; None when neither is in the engine."""
    images = setup.images
    official = setup.base_reference(name)
    wanted = platforms.targets(client, images.platforms)
    if wanted:  # built per platform: the base comes from its registry, never from the engine
        try:
            platforms.base_digests(setup, official, wanted)
        except ForkflowError:  # image-base says what is missing; an image task checks it again
            return None
        return official
    if name == "conda":
        return official if docker_adapter.image_id(client, official) else None
    local = base_rules.local_base_name(name)
    choice = base_rules.choose_base(labels_of(client, official), labels_of(client, local), images.base_from)
    return {"official": official, "local": local}.get(choice or "")


def chosen_bases(setup: ImageSetup, client: Any | None) -> dict[str, str]:
    """base name -> the image reference builds use now (the configured ones when the engine is unknown)."""
    if client is None:
        return {}
    found = {}
    for name in setup.base_names:
        ref = chosen_base(setup, client, name)
        if ref:
            found[name] = ref
    return found


def base_action(name: str, dry_run: bool = False) -> dict[str, str]:
    ref, outcome = ensure_base(image_setup(dry_run), name)
    BASES.pop((os.getpid(), name), None)
    say(f"base image {ref}: {outcome}")
    return {"made": f"{ref} ({outcome})"}


def ensure_base(setup: ImageSetup, name: str) -> tuple[str, str]:
    """The base image for `name` in the engine: (its reference, 'present' | 'pulled' | 'made from ...').

    The configured image when present; else, as base_from says, pulled (pull), made from a local interpreter
    under its own name (local), or pulled and made locally when the pull fails (auto)."""
    images, dry_run = setup.images, setup.dry_run
    official = setup.base_reference(name)
    try:
        client = engine()
    except ForkflowError:
        if dry_run:
            return official, "unknown (Docker engine not reachable)"
        raise
    wanted = platforms.targets(client, images.platforms)
    if wanted:
        platforms.base_digests(setup, official, wanted)  # a clear error when it is missing or lacks a platform
        return official, f"in its registry for {', '.join(wanted)}"
    present = chosen_base(setup, client, name)
    if present:
        return present, "present"
    pulled = pull_base(client, official, name, images.base_from, dry_run=dry_run)
    if pulled:
        return official, pulled
    return make_base(setup, client, name, official)


def pull_base(client: Any, official: str, name: str, base_from: str, *, dry_run: bool) -> str | None:
    """Pull the base as base_from says: what happened, or None when it is to be made locally instead."""
    if name == "conda" or base_from == "pull":
        where = "[images] conda_base_image" if name == "conda" else "[images] base_image (base_from = 'pull')"
        if dry_run:
            return "would pull"
        docker_adapter.pull(client, official, where=where)
        return "pulled"
    if base_from != "auto" or made_locally(client, official):
        return None
    if dry_run:
        return "would pull (else make it from a local interpreter)"
    try:
        docker_adapter.pull(client, official, where="[images] base_image")
    except ForkflowError as err:
        say(f"{err.what.splitlines()[0]}; making a base image from a local interpreter instead")
        return None
    return "pulled"


def make_base(setup: ImageSetup, client: Any, name: str, official: str) -> tuple[str, str]:
    """The base made from a local interpreter under its own name: (its reference, what happened)."""
    from tasks.adapters import rootfs  # made rarely: its machinery loads then, not with the up-to-date checks

    images = setup.images
    local = base_rules.local_base_name(name)
    root = setup.settings.path(images.interpreters) if images.interpreters else rootfs.default_interpreters_root()
    interpreter = rootfs.find_interpreter(root, name)
    if interpreter is None:
        raise ForkflowError(f"no base image for Python {name}: {official} is not in the engine and cannot be pulled, "
                            f"and no local Python {name} was found under {root} to make {local} from",
                            where="[images] interpreters",
                            fix=f"install Python {name} there (e.g. `pyenv install {name}`), or make {official} "
                                "pullable (a reachable registry) or present (`docker load`)")
    return local, make_local_base(setup, client, interpreter, name, local)


def made_locally(client: Any, ref: str) -> bool:
    """An image under the official name that an older forkflow made here (it is remade under its own name)."""
    return base_rules.is_made_locally(labels_of(client, ref))


def make_local_base(setup: ImageSetup, client: Any, interpreter: Path, python: str, ref: str) -> str:
    from tasks.adapters import rootfs

    if setup.dry_run:
        say(f"would make {ref} from {interpreter} (docker import)")
        return "would make from a local interpreter"
    folder = setup.state_folder
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"base-{python}.{os.getpid()}.tar"
    try:
        start = time.monotonic()
        made = rootfs.write_rootfs(interpreter, python, tarball)
        docker_adapter.import_rootfs(client, tarball, ref, base_rules.import_changes(made.full_version))
    finally:
        tarball.unlink(missing_ok=True)
    say(f"made {ref} from {interpreter}: {made.files} files, {made.bytes / 1e6:.0f} MB, shell {made.shell}, "
        f"{len(made.libraries)} shared libraries, {time.monotonic() - start:.1f}s")
    return f"made from {interpreter}"

