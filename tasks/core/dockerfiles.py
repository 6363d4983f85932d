"""The flavor Dockerfiles: the values a template sees, and rendering it.

Every wheel reaches pip through a BuildKit bind mount of a build-context folder (`deps`, `wheels`, `extras`),
so no wheel file is ever stored in a layer. Nothing here touches Docker, files or doit.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tasks.core.errors import ForkflowError
from tasks.core.wheelhouse import CONSTRAINTS

if TYPE_CHECKING:
    from tasks.core.images import ImageSpec, Wheel

APP_USER = "app"
APP_UID = 1000


MOUNT_ROOT = "/tmp/forkflow"  # where the build context's wheel folders are bind-mounted during a RUN


def bind_mount(folder: str) -> str:
    """A BuildKit bind mount of the build context's `folder` (read-only): its files are read by the RUN and are
    in no layer."""
    return f"--mount=type=bind,source={folder},target={MOUNT_ROOT}/{folder}"


def dockerfile_context(spec: ImageSpec, project: str, has_wheelhouse: bool) -> dict[str, Any]:
    """The values a flavor template sees."""
    root = f"/opt/{project}"
    deps_dir = f"{MOUNT_ROOT}/deps"
    return {
        "repository": spec.repository.rsplit("/", 1)[-1],
        "project": project,
        "python": spec.python,
        "flavor": spec.flavor,
        "version": spec.version,
        "base_image": spec.base_image,
        "user": APP_USER,
        "uid": APP_UID,
        "workdir": root,
        "wheel_dir": f"{MOUNT_ROOT}/wheels",
        "extras_dir": f"{MOUNT_ROOT}/extras",
        "deps_dir": deps_dir,
        "mount_deps": bind_mount("deps"),
        "mount_wheels": bind_mount("wheels"),
        "mount_extras": bind_mount("extras"),
        "has_wheelhouse": has_wheelhouse,
        "find_deps": f" --find-links {deps_dir} --constraint {deps_dir}/{CONSTRAINTS}" if has_wheelhouse else "",
        "dependencies": list(spec.dependencies),
        "packages": [requirement_of(w, spec.core_extras) for w in spec.packages],
        "extras": [f"{w.name}=={w.version}" for w in spec.extras],
        "core_extras": list(spec.core_extras),
        "conda_env": project,
    }


def requirement_of(wheel: Wheel, core_extras: Sequence[str]) -> str:
    """`orbit==1.0.1`; the core with the flavor's extras: `prefect[redis,otel]==3.8.3`."""
    chosen = f"[{','.join(core_extras)}]" if wheel.kind == "core" and core_extras else ""
    return f"{wheel.name}{chosen}=={wheel.version}"


@functools.lru_cache(maxsize=8)
def template_environment(templates: tuple[tuple[str, str], ...]) -> Any:
    """One jinja environment per set of template texts, so each template is compiled once per process."""
    import shlex

    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader(dict(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shell_quote"] = shlex.quote
    return env


def render_dockerfile(templates: Mapping[str, str], flavor: str, context: Mapping[str, Any]) -> str:
    """Render `<flavor>.Dockerfile.j2` from the given template texts (name -> text)."""
    import jinja2

    env = template_environment(tuple(sorted(templates.items())))
    name = f"{flavor}.Dockerfile.j2"
    try:
        rendered: str = env.get_template(name).render(**context)
        return rendered
    except jinja2.TemplateNotFound as err:
        raise ForkflowError(f"no Dockerfile template {err.name}", where="[images] templates",
                            fix=f"add {name} to the templates folder") from None
    except jinja2.TemplateError as err:
        raise ForkflowError(f"{name}: {err}", where=name, fix="correct the template") from None
