"""What a cell's push may do to the tags already in the registry: read them, decide (tasks.core.image_tags), say.

A tag that carries a full version (`always` and `dev` templates) names one build forever: when the registry
has it on an image of other inputs, the cell is refused before anything is built or pushed. A floating tag
(`release`, `release_default_python` templates) moves to this build unless the registry's image under it
carries a newer version: then it stays where it is ("kept").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.adapters import registry
from tasks.adapters.console import say
from tasks.core import image_tags
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline.credentials import registry_auth
from tasks.stages.image import platforms
from tasks.stages.image.setup import ImageSetup


def registry_tags(spec: core.ImageSpec, auth: Mapping[str, str] | None) -> dict[str, image_tags.Pointed | None]:
    """What each of the cell's tags points at in the registry (None: no such tag); RegistryUnreachable when
    it does not answer."""
    host, path = spec.repository.split("/", 1)  # [images] registry may hold a path too: the host is first
    pointed = registry.tagged(host, path, list(spec.tags), auth)
    return {tag: None if found is None else image_tags.Pointed(found.digest, found.labels.get(core.INPUT_HASH_LABEL),
                                                               found.labels.get(core.VERSION_LABEL), found.platforms)
            for tag, found in pointed.items()}


def look(spec: core.ImageSpec, input_hash: str, auth: Mapping[str, str] | None,
         wanted: tuple[str, ...]) -> image_tags.TagPlan:
    """The cell's tag plan from what the registry holds now (RegistryUnreachable when it does not answer)."""
    return image_tags.plan_tags(spec.scheme, registry_tags(spec, auth), input_hash, spec.version, wanted)


def enforce(spec: core.ImageSpec, input_hash: str, plan: image_tags.TagPlan, announce: bool = True) -> image_tags.TagPlan:
    """Refuse the cell (a ForkflowError) when an immutable tag names other content; say which floating tags
    stay on a newer version."""
    if plan.refused:
        raise image_tags.refusal(spec.key, spec.repository, plan.refused, input_hash, spec.version)
    for tag, version in plan.kept.items() if announce else ():
        say(f"image:{spec.key}: {tag} stays on {version} in the registry (newer than {spec.version}); "
            "the other tags are pushed")
    return plan


def in_registry(setup: ImageSetup, spec: core.ImageSpec, digest: str, auth: dict[str, str] | None,
                wanted: tuple[str, ...], record: dict[str, Any]) -> image_tags.TagPlan | None:
    """What the registry holds under the cell's tags, as a tag plan, before a build: refused (a ForkflowError)
    when a tag with a full version names other content; None when pushing is off or the registry does not
    answer (the local engine decides what to build, and the push asks again)."""
    if not setup.images.push:
        why = ("a bare `doit` only plans the image pushes (`doit image` pushes)" if setup.plan_only
               else "[images] push = false")
        say(f"image:{spec.key}: {why}, so the local engine alone decides what to build")
        return None
    try:
        return checked(spec, digest, auth, wanted, record)
    except registry.RegistryUnreachable as err:
        say(f"image:{spec.key}: {err.what}; the local engine decides what to build")
        return None


def checked(spec: core.ImageSpec, digest: str, auth: dict[str, str] | None, wanted: tuple[str, ...],
            record: dict[str, Any], announce: bool = True) -> image_tags.TagPlan:
    """The tag plan, its refusal and its kept tags recorded in the cell's report record."""
    found = look(spec, digest, auth, wanted)
    record["kept"] = dict(found.kept)
    if found.refused:
        record["refused"] = {tag: {"digest": there.digest, "version": there.version, "input_hash": there.input_hash}
                             for tag, there in found.refused.items()}
    return enforce(spec, digest, found, announce)


def registry_view(setup: ImageSetup, client: Any, spec: core.ImageSpec,
                  digest: str) -> tuple[image_tags.TagPlan | None, list[str]]:
    """For a dry run: the tag plan from the registry (when pushing and it answers) and its lines."""
    if not setup.images.push:
        return None, []
    try:
        wanted = platforms.targets(client, setup.images.platforms)
        found = look(spec, digest, registry_auth(setup.settings), wanted)
    except ForkflowError as err:
        return None, [f"  cannot tell which tags the registry would refuse or keep: {err.what.splitlines()[0]}"]
    return found, plan_lines(found, spec.version)


def plan_lines(plan: image_tags.TagPlan, version: str) -> list[str]:
    """The dry run's words for a tag plan: what would be refused and which floating tags would stay."""
    lines = [f"  would refuse: {tag} is in the registry on other content (digest {core.short(there.digest)}, "
             f"version {there.version or 'unknown'}, input hash {core.short(there.input_hash)}); nothing would be "
             "pushed" for tag, there in plan.refused.items()]
    lines += [f"  would keep {tag} on {kept} (newer than {version})" for tag, kept in plan.kept.items()]
    return lines
