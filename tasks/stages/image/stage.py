"""Stage `image`: a Docker image per Python version x flavor, rebuilt only when its inputs changed.

- `image-base:<python>` (and `image-base:conda`) makes sure each base image
  is in the engine: the configured one (`python:<v>-slim`) present or pulled,
  else one made from a local interpreter under its own name
  (`forkflow/python-local:<v>`, see tasks.core.base_image), as
  `[images] base_from` says.
- `image-deps:<python>` makes the dependency wheelhouse of that Python's
  images: their third-party requirements resolved and downloaded as wheels
  (tasks.stages.image.deps), once per requirement set.
- `image:<python>-<flavor>` renders the flavor's Dockerfile from templates/,
  hashes its inputs (Dockerfile, wheel hashes, base image id, build args,
  dependency wheels),
  builds when that hash has no image yet, smoke-tests the image in a
  container, then tags and pushes it. doit keeps the input hash as the
  task's value (`doit info image:3.12-base` shows it); the task is up to
  date while the hash, the tags and the image are unchanged.
- `image:envs` builds the flows project's `[tool.prefect.envs.<name>]`
  environments with the same machinery, without pushing.
- `image:report` writes reports/image.json.

`--dry-run` (or FORKFLOW_DRY_RUN=1) prints every image, its tags and why it
would or would not be rebuilt, and changes nothing.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

from tasks.adapters.console import say
from tasks.core import base_image as base_rules
from tasks.core import images as core
from tasks.core.errors import ForkflowError
from tasks.pipeline.actions import dry_run_param, guarded, is_dry_run, missing_section_task
from tasks.pipeline.checks import Check, Cleaner
from tasks.pipeline.credentials import is_local_registry
from tasks.pipeline.runmode import after_sync
from tasks.pipeline.settings import settings
from tasks.stages.image.setup import ImageSetup, base_name, image_setup, template_sources

DOC = "Docker image per Python version x flavor: build when inputs changed, smoke-test, push"


# ---- task creators ------------------------------------------------------------------------------


def task_image_base() -> Iterator[dict[str, Any]]:
    """Make sure the base images are in the engine (made from a local interpreter when they cannot be pulled)."""
    doc = "make sure each base image is in the Docker engine: present, pulled, or made from a local interpreter"
    if settings().config.images is None:
        yield missing_section_task("image-base", "images", doc)
        return
    setup = image_setup()
    yield {"basename": "image-base", "name": None, "doc": doc, "params": [dry_run_param()], "uptodate": [True]}
    for name in setup.base_names:
        python = None if name == "conda" else name
        ref = setup.base_reference(name)
        yield {
            "basename": "image-base",
            "name": name,
            "doc": f"make sure a base image is in the engine: {ref} {describe_base_source(setup.images.base_from, python)}",
            "actions": [guarded(partial(base_action, name))],
            "uptodate": [Check(f"base image {ref} is in the engine", base_present, name)],
            "params": [dry_run_param()],
            "verbosity": 2,
        }


def task_image() -> Iterator[dict[str, Any]]:
    """Build, smoke-test and push a Docker image per Python version and flavor, only when its inputs changed."""
    if settings().config.images is None:
        yield missing_section_task("image", "images", DOC)
        return
    setup = image_setup()
    images, current = setup.images, setup.settings
    run_id = uuid.uuid4().hex
    yield from deps_tasks(setup)
    yield {"basename": "image", "name": None, "doc": DOC, "params": [dry_run_param()], "uptodate": [True]}
    for python in images.python:
        for flavor in images.flavors:
            key = core.image_key(python, flavor)
            yield {
                "name": key,
                "doc": f"build, smoke-test and {'push' if images.push else 'tag'} the {flavor} image for Python {python} "
                       f"({setup.repository})",
                "actions": [guarded(partial(image_action, key, run_id))],
                "task_dep": ["wheel", f"image-deps:{python}", f"image-base:{base_name(flavor, python)}",
                             *registry_deps(setup)],
                "uptodate": [Check(f"image {key}: same inputs, tags and built image as its last build", image_is_current, key)],
                "file_dep": [str(path) for path in template_sources(setup).values()],
                "params": [dry_run_param()],
                "clean": [Cleaner(f"remove image {key}'s local tags and its state", clean_image, key)],
                "verbosity": 2,
            }
    names = [f"image:{key}" for key in setup.keys]
    if current.config.flows:
        yield {
            "name": "envs",
            "doc": "build the flows project's [tool.prefect.envs.<name>] Docker environments (no push)",
            "actions": [guarded(partial(envs_action, run_id))],
            "task_dep": ["checkout", *after_sync(current.config), *[f"image-base:{p}" for p in images.python]],
            "uptodate": [Check("the flows project's Docker environments are built from unchanged inputs", envs_current)],
            "params": [dry_run_param()],
            "verbosity": 2,
        }
        names.append("image:envs")
    yield {
        "name": "report",
        "doc": "write reports/image.json: every image's tags, id, pushed digests, built or up-to-date and why",
        "actions": [guarded(partial(report_action, run_id))],
        "task_dep": names,
        "uptodate": [Check("no image was built in this run, so image.json still holds", report_settled, run_id)],
        "params": [dry_run_param()],
        "verbosity": 2,
    }


def task_image_join() -> dict[str, Any]:
    """Put each cell's index together from its platforms' images built apart (FORKFLOW_IMAGE_PLATFORM)."""
    doc = ("put the index of each image's platform images, built apart (FORKFLOW_IMAGE_PLATFORM=<platform> doit "
           "image), under its tags")
    if settings().config.images is None:
        return missing_section_task("image-join", "images", doc)
    return {"basename": "image-join", "doc": doc, "actions": [guarded(partial(join_action, uuid.uuid4().hex))],
            "task_dep": ["wheel", *registry_deps(image_setup())], "uptodate": [False], "params": [dry_run_param()],
            "verbosity": 2}


def deps_tasks(setup: ImageSetup) -> Iterator[dict[str, Any]]:
    """`image-deps:<python>`: the third-party wheels of that Python's images, resolved and downloaded once
    per requirement set."""
    images = setup.images
    doc = "resolve the images' third-party requirements and download their wheels, per Python (once per requirement set)"
    yield {"basename": "image-deps", "name": None, "doc": doc, "params": [dry_run_param()], "uptodate": [True]}
    for python in images.python:
        yield {
            "basename": "image-deps",
            "name": python,
            "doc": f"the third-party wheels of the Python {python} images, for {', '.join(images.platforms)}",
            "actions": [guarded(partial(deps_action, python))],
            "task_dep": ["wheel"],
            "uptodate": [Check(f"the Python {python} wheelhouse holds the current requirement set", deps_current, python)],
            "params": [dry_run_param()],
            "clean": [Cleaner(f"remove the Python {python} wheelhouse", clean_deps, python)],
            "verbosity": 2,
        }


# ---- actions and checks: their machinery (Docker, the registry, wheels, templates) is imported when doit calls
# them, so listing or loading the tasks does not pay for it; the names and signatures are those doit reads


def base_action(name: str, dry_run: bool = False) -> dict[str, str]:
    from tasks.stages.image import base

    return base.base_action(name, dry_run)


def base_present(name: str, task: Any, values: Any) -> bool:
    from tasks.stages.image import base

    return base.base_present(name, task, values)


def image_action(key: str, run_id: str, dry_run: bool = False) -> dict[str, Any]:
    from tasks.stages.image import build

    return build.image_action(key, run_id, dry_run)


def image_is_current(key: str, task: Any, values: Any) -> Any:
    from tasks.stages.image import check

    return check.image_is_current(key, task, values)


def envs_action(run_id: str, dry_run: bool = False) -> dict[str, Any]:
    from tasks.stages.image import envs

    return envs.envs_action(run_id, dry_run)


def envs_current(task: Any, values: Any) -> Any:
    from tasks.stages.image import envs

    return envs.envs_current(task, values)


def join_action(run_id: str, dry_run: bool = False) -> dict[str, str]:
    from tasks.stages.image import join

    return join.join_action(run_id, dry_run)


def report_action(run_id: str, dry_run: bool = False) -> dict[str, str]:
    from tasks.stages.image import state

    return state.report_action(run_id, dry_run)


def report_settled(run_id: str, task: Any = None, *values: Any) -> Any:
    from tasks.stages.image import state

    return state.report_settled(run_id, task, *values)


def clean_image(key: str) -> None:
    from tasks.stages.image import state

    state.clean_image(key)


def deps_action(python: str, dry_run: bool = False) -> dict[str, str]:
    from tasks.stages.image import deps as image_deps
    from tasks.stages.image import inputs

    setup = image_setup(dry_run)
    made = []
    for request in inputs.deps_requests(setup, python):
        outcome = image_deps.make(setup, request)
        say(f"image-deps:{python}: {request.folder}: {outcome}")
        made.append(f"{request.name}: {outcome}")
    return {"made": "; ".join(made)}


def deps_current(python: str, task: Any, values: Any) -> bool:
    """Up to date while the stamp names the current requirement set: no index is asked."""
    if is_dry_run(False):
        return False
    from tasks.stages.image import deps as image_deps
    from tasks.stages.image import inputs

    try:
        return all(image_deps.is_current(request) for request in inputs.deps_requests(image_setup(), python))
    except ForkflowError:  # its wheels are not there yet, or the config is incomplete: the task runs and says so
        return False


def clean_deps(python: str) -> None:
    """`doit clean image-deps`: remove the downloaded wheels (the next run resolves again)."""
    from tasks.stages.image import inputs

    for folder in inputs.deps_folders(image_setup(), python):
        shutil.rmtree(folder, ignore_errors=True)
        say(f"image-deps:{python}: removed {folder}")


def describe_base_source(base_from: str, python: str | None) -> str:
    if python is None or base_from == "pull":
        return "(pulled when missing)"
    local = base_rules.local_base_name(python)
    if base_from == "local":
        return f"when present, else {local} made from a local Python {python}"
    return f"when present or pullable, else {local} made from a local Python {python}"


def registry_deps(setup: ImageSetup) -> list[str]:
    """The local registry service, when the images go there."""
    local = setup.images.push and is_local_registry(setup.settings)
    return ["services:registry"] if local and not is_dry_run(False) else []


