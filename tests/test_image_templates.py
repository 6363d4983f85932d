"""The flavor Dockerfile templates, rendered.

base and kubernetes are also built for real in tests/test_image.py. conda
needs a conda base image, which cannot be pulled on the machines these
tests run on, so it is checked here at the template level only.
"""

from __future__ import annotations

import re

from tasks.core import dockerfiles
from tasks.core import images as core
from tasks.stages.image.setup import BUILTIN_TEMPLATES

TEMPLATES = {p.name: p.read_text() for p in BUILTIN_TEMPLATES.glob("*.Dockerfile.j2")}
CORE = core.Wheel("orbit", "1.0.1", "core", "orbit-1.0.1-py3-none-any.whl", "/w", "a" * 64)
AWS = core.Wheel("orbit-aws", "0.2.0", "integration", "orbit_aws-0.2.0-py3-none-any.whl", "/w", "b" * 64)


def render(flavor: str, extras: tuple[core.Wheel, ...] = (), dependencies: tuple[str, ...] = (),
           wheelhouse: bool = False, base: str = "python:3.12-slim") -> str:
    spec = core.ImageSpec("3.12", flavor, base, "1.0.1", (CORE,), extras, dependencies, ("1.0.1-python3.12",),
                          "127.0.0.1:5001/orbit")
    return dockerfiles.render_dockerfile(TEMPLATES, flavor, dockerfiles.dockerfile_context(spec, "orbit", wheelhouse))


def instructions(text: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_flavor_renders_from_the_base_image_argument() -> None:
    assert set(TEMPLATES) >= {"base.Dockerfile.j2", "kubernetes.Dockerfile.j2", "conda.Dockerfile.j2"}
    for flavor in ("base", "kubernetes", "conda"):
        steps = instructions(render(flavor))
        assert steps[0] == "ARG BASE_IMAGE=python:3.12-slim"
        assert steps[1] == "FROM ${BASE_IMAGE}"
        assert steps[-2:] == ["USER 1000:1000", 'CMD ["python"]']


MOUNT = "--mount=type=bind,source={0},target=/tmp/forkflow/{0}"


def test_pip_never_reaches_an_index() -> None:
    for flavor in ("base", "kubernetes", "conda"):
        text = render(flavor, extras=(AWS,), dependencies=("httpx>=0.27",), wheelhouse=True)
        installs = [s for s in instructions(text) if "pip install" in s]
        assert len(installs) == 3
        for step in installs:
            assert "--no-index --find-links /tmp/forkflow/" in step


def test_no_wheel_is_copied_into_a_layer() -> None:
    """Every wheel (third-party, the fork's, a flavor's) reaches pip through a bind mount of the build context."""
    for flavor in ("base", "kubernetes", "conda"):
        steps = instructions(render(flavor, extras=(AWS,), dependencies=("httpx>=0.27",), wheelhouse=True))
        assert not any(s.startswith(("COPY", "ADD")) for s in steps), steps
        installs = [s for s in steps if "pip install" in s]
        assert installs[0].startswith(f"RUN {MOUNT.format('deps')} ")
        assert installs[1].startswith(f"RUN {MOUNT.format('wheels')} {MOUNT.format('deps')} ")
        assert installs[2].startswith(f"RUN {MOUNT.format('extras')} {MOUNT.format('wheels')} {MOUNT.format('deps')} ")


def test_layers_go_from_stable_to_changing() -> None:
    steps = instructions(render("kubernetes", extras=(AWS,), dependencies=('tomli; python_version < "3.11"',),
                                wheelhouse=True))
    order = [next(i for i, s in enumerate(steps) if s.startswith(prefix) or f"source={prefix}," in s) for prefix in (
        "ENV PYTHONUNBUFFERED", "RUN python -c 'import os;", "deps", "wheels", "extras", "USER")]
    assert order == sorted(order)
    assert (f"RUN {MOUNT.format('deps')}      python -m pip install --no-index --find-links /tmp/forkflow/deps "
            "--constraint /tmp/forkflow/deps/constraints.txt 'tomli; python_version < \"3.11\"'") in steps
    assert any(s.endswith("orbit==1.0.1") for s in steps)
    assert any(s.endswith("orbit-aws==0.2.0") for s in steps)


def test_the_core_is_installed_with_the_flavors_extras() -> None:
    spec = core.ImageSpec("3.12", "base", "python:3.12-slim", "1.0.1", (CORE, AWS), (), (), ("1.0.1-python3.12",),
                          "127.0.0.1:5001/orbit", core_extras=("redis", "otel"))
    steps = instructions(dockerfiles.render_dockerfile(TEMPLATES, "base", dockerfiles.dockerfile_context(spec, "orbit", False)))
    assert any(s.endswith("'orbit[redis,otel]==1.0.1' orbit-aws==0.2.0") for s in steps), steps


def test_kubernetes_shares_every_base_layer() -> None:
    """The kubernetes Dockerfile is the base one plus its extras, so the builder reuses the base flavor's layers."""
    base = instructions(render("base"))
    kubernetes = instructions(render("kubernetes", extras=(AWS,)))
    tail = ["WORKDIR /opt/orbit", "USER 1000:1000", 'CMD ["python"]']
    assert base[-3:] == tail and kubernetes[-3:] == tail
    assert kubernetes[:len(base) - 3] == base[:-3]
    assert kubernetes[len(base) - 3:-3] == [
        f"RUN {MOUNT.format('extras')} {MOUNT.format('wheels')}      python -m pip install --no-index "
        "--find-links /tmp/forkflow/extras --find-links /tmp/forkflow/wheels orbit-aws==0.2.0",
    ]


def test_conda_makes_an_environment_then_installs_the_same_wheels() -> None:
    steps = instructions(render("conda", base="continuumio/miniconda3:latest"))
    assert steps[0] == "ARG BASE_IMAGE=continuumio/miniconda3:latest"
    create = next(i for i, s in enumerate(steps) if s.startswith("RUN conda create"))
    assert "--name orbit python=${PYTHON_VERSION} pip" in steps[create]
    assert "conda clean --all --yes" in steps[create]
    assert steps[create + 1].startswith("ENV PATH=/opt/conda/envs/orbit/bin:$PATH")
    wheels = next(i for i, s in enumerate(steps) if "source=wheels," in s)
    assert create < wheels
    assert steps[wheels] == (f"RUN {MOUNT.format('wheels')}      python -m pip install --no-index --find-links "
                             "/tmp/forkflow/wheels orbit==1.0.1")


def test_no_wheelhouse_means_no_deps_layer() -> None:
    steps = instructions(render("base"))
    assert not any("deps" in s for s in steps)
