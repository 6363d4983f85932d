"""The image stage's options, built once per task action from the config and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import is_dry_run, plan_only
from tasks.pipeline.settings import Settings, settings

if TYPE_CHECKING:
    from tasks.core.config_images import Images

STAGE = "image"
PLATFORM_ENV = "FORKFLOW_IMAGE_PLATFORM"  # one platform of a split build (tasks.stages.image.split)
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


@dataclass(frozen=True)
class ImageSetup:
    """What the image tasks work on: the settings and their [images] section (push off while a bare `doit`
    only plans the stage's writes), and whether this is a dry run. Built without I/O."""

    settings: Settings
    images: Images
    dry_run: bool = False
    plan_only: bool = False  # a bare `doit` without [demo]: pushes are planned, `push` is off for this run

    @property
    def image_name(self) -> str:
        """`[images] repository` with the project's name filled in."""
        return self.images.repository.format(project=self.settings.config.project.name)

    @property
    def repository(self) -> str:
        """Where the images go: `<registry>/<image name>`."""
        return f"{self.images.registry.rstrip('/')}/{self.image_name}"

    @property
    def registry_host(self) -> str:
        return self.images.registry.split("/", 1)[0]

    @property
    def keys(self) -> list[str]:
        """Every cell, `<python>-<flavor>`, in the configured order."""
        return [core.image_key(python, flavor) for python in self.images.python for flavor in self.images.flavors]

    @property
    def base_names(self) -> list[str]:
        """The `image-base` subtasks: each Python version a non-conda flavor is built on, and `conda`."""
        images = self.images
        names = [p for p in images.python if any(f != "conda" for f in images.flavors)]
        return names + (["conda"] if "conda" in images.flavors else [])

    def base_reference(self, name: str) -> str:
        """The configured base image of a base name (`3.12`: `[images] base_image`; `conda`)."""
        return self.images.conda_base_image if name == "conda" else self.images.base_image.format(python=name)

    @property
    def state_folder(self) -> Path:
        return self.settings.state_dir / "images"

    @property
    def logs_dir(self) -> Path:
        return self.settings.logs_dir


def image_setup(dry_run: bool = False, current: Settings | None = None) -> ImageSetup:
    """The options of this run; a clear error when the config has no [images] section."""
    current = current or settings()
    images = current.config.images
    if images is None:
        raise ForkflowError("the config has no [images] section", where=str(current.config_file),
                            fix="add an [images] section (see docs/image.md)")
    planned = images.push and plan_only(STAGE)
    if planned:
        images = images.model_copy(update={"push": False})
    return ImageSetup(current, images, is_dry_run(dry_run), planned)


def base_name(flavor: str, python: str) -> str:
    """The `image-base` subtask an image needs: the Python version, or `conda`."""
    return "conda" if flavor == "conda" else python


def template_folder(setup: ImageSetup) -> Path:
    images = setup.images
    return setup.settings.path(images.templates) if images.templates else BUILTIN_TEMPLATES


def template_files(setup: ImageSetup) -> list[Path]:
    return sorted(template_folder(setup).glob("*.Dockerfile.j2"))


def template_sources(setup: ImageSetup) -> dict[str, Path]:
    """Template name -> the file it is read from: a custom folder may override some, the rest come from templates/."""
    found = {p.name: p for p in sorted(BUILTIN_TEMPLATES.glob("*.Dockerfile.j2"))}
    found.update({p.name: p for p in template_files(setup)})
    return found
