"""The [images] section of pipeline.toml (and its [images.tags] table)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from tasks.core.config_base import PYTHON_PATTERN, Section
from tasks.core.values import distinct


class ImageTags(Section):
    """Tag templates; fields: {version} {major} {minor} {python} {flavor} ("" or "-<flavor>") {flavor_name} {sha} {sha7}."""

    always: tuple[str, ...] = ("{version}-python{python}{flavor}",)
    release: tuple[str, ...] = ("{minor}-python{python}{flavor}", "{major}-python{python}{flavor}")
    release_default_python: tuple[str, ...] = ("{major}-latest{flavor}",)
    dev: tuple[str, ...] = ("sha-{sha7}-python{python}{flavor}",)

    @field_validator("always", "release", "release_default_python", "dev")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from tasks.core.image_tags import TAG_FIELDS, unknown_tag_fields

        bad = sorted({name for template in value for name in unknown_tag_fields(template)})
        if bad:
            raise ValueError(f"unknown tag fields {bad}; allowed: {', '.join(TAG_FIELDS)}")
        return value


class Images(Section):
    registry: str
    python: tuple[str, ...] = ("3.12",)
    flavors: tuple[Literal["base", "conda", "kubernetes"], ...] = ("base",)
    base_image: str = "python:{python}-slim"
    platforms: tuple[str, ...] = ("linux/amd64",)
    default_python: str | None = Field(default=None, description="the Python of the `latest` tags; default: the newest "
                                                                 "of python")
    repository: str = Field(default="{project}", description="image name under the registry; {project} is [project] name")
    packages: tuple[str, ...] | None = Field(default=None, description="wheels in every image; default: the core package")
    extra_packages: dict[str, tuple[str, ...]] = Field(
        default={}, description="flavor -> more wheels for that flavor; default: kubernetes gets <core>-kubernetes")
    core_extras: dict[str, tuple[str, ...]] = Field(
        default={}, description="flavor -> extras of the core package it installs, e.g. base = [\"redis\", \"otel\"]")
    wheelhouse: str | None = Field(default=None, description="folder of third-party wheels the packages depend on")
    tags: ImageTags = ImageTags()
    build_args: dict[str, str] = {}
    conda_base_image: str = "continuumio/miniconda3:latest"
    base_from: Literal["auto", "pull", "local"] = Field(
        default="auto", description="missing base images: made from a local interpreter (local), pulled (pull), or local when found")
    interpreters: str | None = Field(default=None, description="folder of local interpreters; default $PYENV_ROOT/versions")
    templates: str | None = Field(default=None, description="folder with <flavor>.Dockerfile.j2 overriding the built-in ones")
    push: StrictBool = True
    smoke_command: tuple[str, ...] = Field(default=(), description="extra command run in each built image")
    provenance: Literal["auto", "off", "min", "max"] = Field(
        default="auto", description="BuildKit's provenance attestation: auto (min where buildx can make it and --load "
                                    "keep it, i.e. an engine with the containerd image store; else none, saying why), "
                                    "off, min or max (min/max refused where the builder cannot)")

    @field_validator("python")
    @classmethod
    def _python_versions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not re.match(PYTHON_PATTERN, v)]
        if bad:
            raise ValueError(f"python versions look like '3.12'; got {bad}")
        return distinct(value, "Python version, e.g. [\"3.12\"]")

    @field_validator("flavors")
    @classmethod
    def _flavors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return distinct(value, "flavor, e.g. [\"base\"]")

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from tasks.core.images import MACHINES

        bad = [v for v in value if v not in MACHINES]
        if bad:
            raise ValueError(f"platforms are one of {', '.join(sorted(MACHINES))}; got {bad}")
        return distinct(value, "platform, e.g. [\"linux/amd64\"]")

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        shape = re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:([0-9]{1,5}))?(/[a-z0-9]+([._-][a-z0-9]+)*)*", value)
        if not shape or not 1 <= int(shape.group(3) or 1) <= 65535:
            raise ValueError("a registry looks like host[:port][/namespace], lowercase, without http://; "
                             "e.g. 127.0.0.1:5001 or registry.example.com/team")
        return value

    @model_validator(mode="after")
    def _default_python_listed(self) -> Images:
        if self.default_python is not None and self.default_python not in self.python:
            raise ValueError(f"default_python {self.default_python!r} is not in python = {list(self.python)}")
        if self.default_python is None and self.python:  # the newest listed Python gets the `latest` tags
            newest = max(self.python, key=lambda v: tuple(int(part) for part in v.split(".")))
            object.__setattr__(self, "default_python", newest)
        return self

    @field_validator("extra_packages", "core_extras")
    @classmethod
    def _extra_flavors(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        bad = [name for name in value if name not in ("base", "conda", "kubernetes")]
        if bad:
            raise ValueError(f"keys are flavors (base, conda, kubernetes); got {bad}")
        return value

    @field_validator("core_extras")
    @classmethod
    def _extra_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        bad = [name for names in value.values() for name in names if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name)]
        if bad:
            raise ValueError(f"extras are names such as \"redis\" (no brackets, no versions); got {bad}")
        return value
