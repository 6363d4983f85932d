"""What a deployment runs on: the image and pull steps a work pool's type needs, and the code's version."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from tasks.core.deployspec import Desired


def with_runtime(desired: Desired, pool_type: str, flows_dir: str, image: str | None) -> Desired:
    """Add what depends on the work pool: process pools run the checkout, container pools the image."""
    if desired.native:
        return native_runtime(desired, pool_type, flows_dir, image)
    spec = dict(desired.spec)
    if pool_type == "process":
        spec["pull_steps"] = [{"prefect.deployments.steps.set_working_directory": {"directory": flows_dir}}]
    else:
        spec["pull_steps"] = None
        spec["job_variables"] = {**spec["job_variables"], "image": image}
    return dataclasses.replace(desired, spec=spec)


def native_runtime(desired: Desired, pool_type: str, flows_dir: str, image: str | None) -> Desired:
    """A prefect.yaml deployment: its own pull steps, else the folder of the file (prefect deploy's default);
    `{{ <image step>.image }}` and a container pool's missing image become the image stage's image."""
    spec = dict(desired.spec)
    folder = desired.runtime.get("folder") or ""
    if spec.get("pull_steps") is None:
        directory = f"{flows_dir.rstrip('/')}/{folder}" if folder else flows_dir
        spec["pull_steps"] = [{"prefect.deployments.steps.set_working_directory": {"directory": directory}}]
    variables = dict(spec.get("job_variables") or {})
    steps = tuple(desired.runtime.get("image_steps") or ())
    if image:
        variables = {key: image_for(value, steps, image) for key, value in variables.items()}
        if pool_type != "process" and "image" not in variables:
            variables["image"] = image
    spec["job_variables"] = variables
    return dataclasses.replace(desired, spec=spec)


def image_for(value: Any, steps: tuple[str, ...], image: str) -> Any:
    """`{{ build-image.image }}` (or `.image_name`) of a replaced image step -> the image stage's image."""
    if not isinstance(value, str):
        return value
    found = re.fullmatch(r"\{\{\s*([\w-]+)\.(image|image_name)\s*\}\}", value.strip())
    if found and found.group(1) in steps:
        return image if found.group(2) == "image" else repository_of(image)
    return value


def code_version(version_report: dict[str, Any] | None, package: str | None, pyproject_version: str | None,
                 commit: str) -> str:
    """The flows package's version: the version stage's if it has one, else pyproject's, else from the commit."""
    for entry in (version_report or {}).get("packages", []):
        if package and entry.get("name") == package and entry.get("version"):
            return str(entry["version"])
    if pyproject_version:
        return pyproject_version
    return f"0+g{commit[:7]}"


def image_reference(images: dict[str, Any] | None, python: str | None, flavor: str) -> str | None:
    """The image the image stage built for (python, flavor): `<repository>@<digest>` when the digest is known,
    else its first full reference (`<repository>:<tag>`)."""
    entries = [e for e in (images or {}).get("images", []) if e.get("status") != "failed" and e.get("tags")]
    chosen = [e for e in entries if e.get("flavor") == flavor and (python is None or e.get("python") == python)]
    chosen = chosen or [e for e in entries if e.get("flavor") == flavor] or entries
    if not chosen:
        return None
    entry = chosen[0]
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
