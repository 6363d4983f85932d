"""Images for several platforms (`[images] platforms`): one build per platform, then one index under every tag.

When the only platform is the engine's own, a cell is built as it always was (no `--platform`, the base
from the engine). Otherwise every platform is built with `--platform` and `--pull`, so each build takes
its base from the base image's registry (BuildKit resolves another platform's base there, never from the
engine's store): the base is identified by the digests that registry gives per platform. A platform that
is not this machine's runs under QEMU emulation, which must be registered first. Each platform's image is
smoke-tested on its platform, pushed under `<tag>-<arch>`, and an index of them is put under every tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tasks.adapters import docker as docker_adapter
from tasks.adapters import emulation, registry
from tasks.core import image_tags
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline import prefetch
from tasks.pipeline.credentials import registry_auth
from tasks.stages.image.setup import ImageSetup


def targets(client: Any, platforms: tuple[str, ...]) -> tuple[str, ...]:
    """The platforms to build one by one; () when the only one is the engine's own (the plain build)."""
    if len(platforms) == 1 and image_tags.same_platform(platforms[0], docker_adapter.engine_platform(client)):
        return ()
    return platforms


def check_emulation(client: Any, wanted: tuple[str, ...]) -> None:
    """Every platform this machine's CPU is not can be run, before anything is built or pushed."""
    native = docker_adapter.engine_platform(client)
    if not emulation.engine_is_local():
        return  # a remote engine's emulation cannot be seen from here; its build says so if it lacks it
    for platform in wanted:
        machine = image_tags.cpu(platform)[1]
        if not image_tags.same_platform(platform, native) and not emulation.registered(machine):
            raise ForkflowError(f"cannot build {platform} images here: this engine runs {native}, and no QEMU "
                                f"emulation of {machine} is registered (binfmt_misc)", where="[images] platforms",
                                fix=emulation.how_to_enable(machine) + f"; or keep [images] platforms = [\"{native}\"]")


def base_auth(setup: ImageSetup, host: str) -> dict[str, str] | None:
    """The images registry's credentials when the base lives there too; anonymous elsewhere."""
    return registry_auth(setup.settings) if host == setup.registry_host else None


def base_digests(setup: ImageSetup, base: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """platform -> the digest of the base image's image for it, from the base's registry; a clear error when
    the base is not there or lacks one of the platforms."""
    host = image_tags.split_reference(base)[0]
    try:  # asked once for every check and step until an action runs (the cells of a Python share their base)
        found = prefetch.shared(f"image:base-platforms:{base}", partial(base_platforms, setup, base))
    except registry.RegistryUnreachable as err:
        raise ForkflowError(f"base image {base}: its registry {host} did not answer ({err.what.split(': ', 1)[-1]}); "
                            f"images for {', '.join(wanted)} take their base from there", where="[images] base_image",
                            fix="make that registry reachable, or point [images] base_image at one you can reach "
                                "(e.g. a mirror in your own registry)") from None
    if found is None:
        raise ForkflowError(f"base image {base} is not in its registry {host}: images for {', '.join(wanted)} are "
                            "built on a base taken from a registry, one image per platform",
                            where="[images] base_image", fix=push_base_fix(base, wanted))
    chosen = {}
    for platform in wanted:
        match = next((digest for name, digest in found.items() if image_tags.same_platform(name, platform)), None)
        if match is None:
            raise ForkflowError(f"base image {base} has no {platform} image (its registry has "
                                f"{', '.join(sorted(found)) or 'none'})", where="[images] base_image",
                                fix=push_base_fix(base, wanted))
        chosen[platform] = match
    return chosen


def base_platforms(setup: ImageSetup, base: str) -> dict[str, str] | None:
    host, repository, reference = image_tags.split_reference(base)
    return registry.platform_images(host, repository, reference, base_auth(setup, host))


def push_base_fix(base: str, wanted: tuple[str, ...]) -> str:
    return (f"point [images] base_image at an image with {', '.join(wanted)} (python:<version>-slim has them), "
            f"or push one per platform and an index of them as {base} (`docker manifest create` and "
            "`docker manifest push`)")


def existing(client: Any, digest: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """platform -> the id of a local image built from these inputs for it."""
    found: dict[str, str] = {}
    for image in docker_adapter.images_labelled(client, core.INPUT_HASH_LABEL, digest):
        platform = docker_adapter.image_platform(client, image) or ""
        for name in wanted:
            if name not in found and image_tags.same_platform(platform, name):
                found[name] = image
    return {name: found[name] for name in wanted if name in found}  # in the configured order: the index is the same


def build_tag(spec: core.ImageSpec, digest: str, platform: str | None) -> str:
    name = f"{spec.repository.split('/', 1)[-1]}:build-{spec.key}-{digest[:12]}"
    return name + image_tags.arch_suffix(platform)


def push_all(client: Any, spec: core.ImageSpec, images: Mapping[str, str], auth: Mapping[str, str],
             tags: tuple[str, ...]) -> dict[str, Any]:
    """Each platform's image pushed under `<first tag>-<arch>`, then one index of them under each of `tags`:
    {"pushed": tag -> index digest, "digest": the index digest, "platforms": platform -> image digest}."""
    digests = {}
    for platform, image in images.items():
        tag = image_tags.platform_tag(spec.tags[0], platform)
        docker_adapter.tag_image(client, image, spec.repository, tag)
        digests[platform] = docker_adapter.push(client, spec.repository, tag, auth)
    host, path = spec.repository.split("/", 1)
    index = registry.put_index(host, path, list(tags), digests, auth)
    return {"pushed": dict.fromkeys(tags, index), "digest": index, "platforms": digests}


def registry_platforms(spec: core.ImageSpec, auth: Mapping[str, str] | None) -> dict[str, str]:
    """platform -> image digest of what the first tag points at in the registry."""
    host, path = spec.repository.split("/", 1)
    return registry.platform_images(host, path, spec.tags[0], auth) or {}
