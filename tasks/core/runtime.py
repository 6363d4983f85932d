"""What a deployment runs on: the image and pull steps a work pool's type needs, and the code's version."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tasks.core.deployment import Desired
from tasks.core.errors import ForkflowError
from tasks.core.prefect_templates import walk


def with_runtime(desired: Desired, pool_type: str, flows_dir: str, image: str | None, tag: str | None = None) -> Desired:
    """Add what depends on the work pool: process pools run the checkout, container pools the image."""
    if desired.native:
        return native_runtime(desired, pool_type, flows_dir, image, tag)
    spec = dict(desired.spec)
    if pool_type == "process":
        spec["pull_steps"] = [{"prefect.deployments.steps.set_working_directory": {"directory": flows_dir}}]
    else:
        spec["pull_steps"] = None
        spec["job_variables"] = {**spec["job_variables"], "image": image}
    return dataclasses.replace(desired, spec=spec)


def native_runtime(desired: Desired, pool_type: str, flows_dir: str, image: str | None, tag: str | None) -> Desired:
    """A prefect.yaml deployment: its own pull steps, else the folder of the file (prefect deploy's default);
    `{{ <image step>.image }}` (`.image_name`, `.tag`) and a container pool's missing image become the image
    stage's image."""
    spec = dict(desired.spec)
    folder = desired.runtime.get("folder") or ""
    if spec.get("pull_steps") is None:
        directory = f"{flows_dir.rstrip('/')}/{folder}" if folder else flows_dir
        spec["pull_steps"] = [{"prefect.deployments.steps.set_working_directory": {"directory": directory}}]
    steps = tuple(desired.runtime.get("image_steps") or ())
    filled = {k: v for k, v in spec.items() if k != "pull_steps"}
    if steps:  # no image step, nothing to fill
        filled = fill_image_outputs(filled, steps, image_outputs(image, tag) if image else {})
    unfilled = sorted(image_step_references(filled, steps)) if steps else []
    if unfilled:
        raise ForkflowError(
            f"{desired.flow}/{desired.name}: {', '.join(unfilled)} "
            + ("name an output the image stage does not give (it gives image, image_name and tag)" if image
               else "name the image of a Docker build step the image stage replaces, and no image is known"),
            where=str(desired.runtime.get("source") or desired.name),
            fix="use {{ <step>.image }}, {{ <step>.image_name }} or {{ <step>.tag }}" if image
                else "add an [images] section and run `doit image` (its image.json names the image)")
    spec = {**filled, "pull_steps": spec["pull_steps"]}
    variables = dict(spec.get("job_variables") or {})
    if image and pool_type != "process" and "image" not in variables:
        variables["image"] = image
    spec["job_variables"] = variables
    return dataclasses.replace(desired, spec=spec)


IMAGE_PLACEHOLDER = re.compile(r"\{\{\s*([\w-]+)\.(\w+)\s*\}\}")


def image_outputs(image: str, tag: str | None) -> dict[str, str]:
    """What prefect-docker's build and push steps return, for the image stage's image."""
    outputs = {"image": image, "image_name": repository_of(image)}
    tag = tag or tag_of(image)
    if tag:
        outputs["tag"] = tag
    return outputs


def fill_image_outputs(value: Any, steps: tuple[str, ...], outputs: dict[str, str]) -> Any:
    """`{{ build-image.image }}` and the like, anywhere in the value, for a replaced image step."""
    def one(found: re.Match[str]) -> str:
        known = found.group(1) in steps and found.group(2) in outputs
        return outputs[found.group(2)] if known else found.group(0)
    return walk(value, lambda text: IMAGE_PLACEHOLDER.sub(one, text))


def image_step_references(value: Any, steps: tuple[str, ...]) -> set[str]:
    """The `{{ <image step>.<output> }}` still in the value."""
    found: set[str] = set()

    def collect(text: str) -> str:
        found.update(m.group(0) for m in IMAGE_PLACEHOLDER.finditer(text) if m.group(1) in steps)
        return text
    walk(value, collect)
    return found


def tag_of(reference: str) -> str | None:
    """`registry:5000/name:tag` -> `tag`; a reference by digest only has none."""
    if "@" in reference:
        return None
    slash, colon = reference.rfind("/"), reference.rfind(":")
    return reference[colon + 1:] if colon > slash else None


def code_version(version_report: dict[str, Any] | None, package: str | None, pyproject_version: str | None,
                 commit: str) -> str:
    """The flows package's version: the version stage's if it has one, else pyproject's, else from the commit."""
    for entry in (version_report or {}).get("packages", []):
        if package and entry.get("name") == package and entry.get("version"):
            return str(entry["version"])
    if pyproject_version:
        return pyproject_version
    return f"0+g{commit[:7]}"


def built_image(images: dict[str, Any] | None, python: str | None, flavor: str) -> dict[str, Any] | None:
    """The image.json entry of the image the image stage built for (python, flavor), else the nearest one."""
    entries = [e for e in (images or {}).get("images", []) if e.get("status") != "failed" and e.get("tags")]
    chosen = [e for e in entries if e.get("flavor") == flavor and (python is None or e.get("python") == python)]
    chosen = chosen or [e for e in entries if e.get("flavor") == flavor] or entries
    return chosen[0] if chosen else None


def image_reference(images: dict[str, Any] | None, python: str | None, flavor: str) -> str | None:
    """The image the image stage built for (python, flavor): `<repository>@<digest>` when the digest is known,
    else its first full reference (`<repository>:<tag>`)."""
    entry = built_image(images, python, flavor)
    if entry is None:
        return None
    reference = full_reference(entry)
    if entry.get("digest"):
        return f"{repository_of(reference)}@{entry['digest']}"
    return reference


def full_reference(entry: dict[str, Any]) -> str:
    """An image.json entry's first reference: `references[0]`, else `repository:tags[0]` (tags are bare)."""
    if entry.get("references"):
        return str(entry["references"][0])
    tag = str(entry["tags"][0])
    return f"{entry['repository']}:{tag}" if entry.get("repository") and "/" not in tag else tag


def repository_of(reference: str) -> str:
    """`registry:5000/name:tag` -> `registry:5000/name`."""
    reference = reference.split("@", 1)[0]
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    return reference[:colon] if colon > slash else reference
