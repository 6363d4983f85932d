"""The flavor Dockerfile templates, rendered.

base and kubernetes are also built for real in tests/test_image.py. conda
needs a conda base image, which cannot be pulled on the machines these
tests run on, so it is checked here at the template level only.
"""

from __future__ import annotations

import re

from tasks.core import images as core
from tasks.stages.image.inputs import BUILTIN_TEMPLATES

TEMPLATES = {p.name: p.read_text() for p in BUILTIN_TEMPLATES.glob("*.Dockerfile.j2")}
CORE = core.Wheel("orbit", "1.0.1", "core", "orbit-1.0.1-py3-none-any.whl", "/w", "a" * 64)
AWS = core.Wheel("orbit-aws", "0.2.0", "integration", "orbit_aws-0.2.0-py3-none-any.whl", "/w", "b" * 64)


def render(flavor: str, extras: tuple[core.Wheel, ...] = (), dependencies: tuple[str, ...] = (),
           wheelhouse: bool = False, base: str = "python:3.12-slim") -> str:
    spec = core.ImageSpec("3.12", flavor, base, "1.0.1", (CORE,), extras, dependencies, ("1.0.1-python3.12",),
                          "127.0.0.1:5001/orbit")
    return core.render_dockerfile(TEMPLATES, flavor, core.dockerfile_context(spec, "orbit", wheelhouse))


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


def test_pip_never_reaches_an_index() -> None:
    for flavor in ("base", "kubernetes", "conda"):
        text = render(flavor, extras=(AWS,), dependencies=("httpx>=0.27",), wheelhouse=True)
        installs = [s for s in instructions(text) if "pip install" in s]
        assert len(installs) == 3
        for step in installs:
            assert "--no-index --find-links /opt/orbit/" in step


def test_layers_go_from_stable_to_changing() -> None:
    steps = instructions(render("kubernetes", extras=(AWS,), dependencies=('tomli; python_version < "3.11"',),
                                wheelhouse=True))
    order = [next(i for i, s in enumerate(steps) if s.startswith(prefix)) for prefix in (
        "ENV PYTHONUNBUFFERED", "RUN python -c 'import os;", "COPY deps/", "COPY wheels/", "COPY extras/", "USER")]
    assert order == sorted(order)
    assert ("RUN python -m pip install --no-index --find-links /opt/orbit/deps --constraint /opt/orbit/deps/constraints.txt"
            " 'tomli; python_version < \"3.11\"'") in steps
    assert any(s.endswith("orbit==1.0.1") for s in steps)
    assert any(s.endswith("orbit-aws==0.2.0") for s in steps)


def test_kubernetes_shares_every_base_layer() -> None:
    """The kubernetes Dockerfile is the base one plus its extras, so the builder reuses the base flavor's layers."""
    base = instructions(render("base"))
    kubernetes = instructions(render("kubernetes", extras=(AWS,)))
    tail = ["WORKDIR /opt/orbit", "USER 1000:1000", 'CMD ["python"]']
    assert base[-3:] == tail and kubernetes[-3:] == tail
    assert kubernetes[:len(base) - 3] == base[:-3]
    assert kubernetes[len(base) - 3:-3] == [
        "COPY extras/ /opt/orbit/extras/",
        "RUN python -m pip install --no-index --find-links /opt/orbit/extras --find-links /opt/orbit/wheels orbit-aws==0.2.0",
    ]


def test_conda_makes_an_environment_then_installs_the_same_wheels() -> None:
    steps = instructions(render("conda", base="continuumio/miniconda3:latest"))
    assert steps[0] == "ARG BASE_IMAGE=continuumio/miniconda3:latest"
    create = next(i for i, s in enumerate(steps) if s.startswith("RUN conda create"))
    assert "--name orbit python=${PYTHON_VERSION} pip" in steps[create]
    assert "conda clean --all --yes" in steps[create]
    assert steps[create + 1].startswith("ENV PATH=/opt/conda/envs/orbit/bin:$PATH")
    wheels = next(i for i, s in enumerate(steps) if s.startswith("COPY wheels/"))
    assert create < wheels
    assert steps[wheels + 1] == "RUN python -m pip install --no-index --find-links /opt/orbit/wheels orbit==1.0.1"


def test_no_wheelhouse_means_no_deps_layer() -> None:
    steps = instructions(render("base"))
    assert not any("deps" in s for s in steps)
