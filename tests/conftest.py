"""Fixtures: configs in temporary folders, the demo workspace (built once, copied), services."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, docker_reachable, free_port, have_program, need, prefect_auth_environment, prefect_http
from tests.image_helpers import PYTHONS, Registry, image_config_text, write_config

POOLS = {"ff-dev": "process", "ff-prod": "process", "ff-e2e": "process", "ff-docker-dev": "docker", "ff-docker-prod": "docker"}


@pytest.fixture(autouse=True)
def remote_bounds() -> Iterator[None]:
    """The time bounds a test's config installed (tasks.adapters.limits) end with the test."""
    from tasks.adapters import limits

    saved = limits.limits()
    yield
    limits.configure(saved)


@pytest.fixture(scope="session", autouse=True)
def prefect_auth() -> Iterator[None]:
    """Every local Prefect server of the session requires basic auth, as `doit services` starts it."""
    saved = {key: os.environ.get(key) for key in prefect_auth_environment()}
    os.environ.update(prefect_auth_environment())
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace generated once per test session."""
    from tasks.stages.demo import generate

    workspace = tmp_path_factory.mktemp("demo-cache") / "demo"
    generate(REPO / "examples" / "demo", workspace)
    return workspace


@pytest.fixture
def demo_workspace(demo_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the demo workspace (upstream.git, origin.git)."""
    target = tmp_path / "demo"
    shutil.copytree(demo_cache, target, symlinks=True)
    return target


DEFAULT_PORTS = {"index": 8081, "registry": 5001, "prefect": 4201}


def demo_config_text(ports: dict[str, int] | None = None, extra: str = "") -> str:
    """The embedded pipeline.toml, made to run in a temporary folder."""
    text = (REPO / "pipeline.toml").read_text(encoding="utf-8")
    text = text.replace('source = "examples/demo"', f'source = "{REPO / "examples" / "demo"}"')
    chosen = {str(DEFAULT_PORTS[name]): str(port) for name, port in (ports or {}).items()}

    def swap(match: re.Match[str]) -> str:
        return match.group(1) + chosen.get(match.group(2), match.group(2))

    return re.sub(r"(port = |127\.0\.0\.1:)(\d+)\b", swap, text) + extra


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """A pipeline.toml like the embedded one, with its state in tmp_path and free ports."""
    config = tmp_path / "pipeline.toml"
    ports = {name: free_port() for name in ("index", "registry", "prefect")}
    config.write_text(demo_config_text(ports), encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo config whose packages were built once (in parallel) for the whole session.

    Tests that change the checkout must put it back as they found it.
    """
    from tests.helpers import run_doit

    need(have_program("npm"), "npm (the demo's core has a dashboard built with npm)")
    folder = tmp_path_factory.mktemp("built")
    config = folder / "pipeline.toml"
    ports = {name: free_port() for name in ("index", "registry", "prefect")}
    config.write_text(demo_config_text(ports), encoding="utf-8")
    result = run_doit(config, "-n", "2", "wheel")
    assert result.returncode == 0, result.stdout + result.stderr
    return config


@pytest.fixture
def index(built_demo: Path) -> Iterator[Path]:
    """The demo's local pypiserver, started empty for each test; yields the built demo's config."""
    from tests.helpers import run_doit

    run_doit(built_demo, "services-stop:index")
    shutil.rmtree(built_demo.parent / ".forkflow" / "services" / "index" / "packages", ignore_errors=True)
    started = run_doit(built_demo, "services:index")
    assert started.returncode == 0, started.stdout + started.stderr
    yield built_demo
    run_doit(built_demo, "services-stop:index")


def running_prefect_server(folder: Path, extra_env: dict[str, str] | None = None, pools: bool = True) -> Generator[str, None, None]:
    """A real Prefect server (SQLite) in `folder`, with the work pools the tests use; yields its API URL."""
    from tasks.adapters import services as svc
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prefect_program, prepare, service_spec

    need(Path(prefect_program()).exists() or have_program("prefect"), "the prefect command")
    config = folder / "pipeline.toml"
    config.write_text(demo_config_text({"prefect": free_port(), "index": free_port(), "registry": free_port()}))
    current = load_settings(config)
    spec = service_spec(current, "prefect")
    if extra_env:
        spec = dataclasses.replace(spec, env={**spec.env, **extra_env})
    prepare(current, "prefect")
    svc.start(spec)
    api = spec.url + "/api"
    try:
        with prefect_http(api) as http:
            for name, kind in POOLS.items() if pools else ():
                http.post("work_pools/", json={"name": name, "type": kind}).raise_for_status()
        yield api
    finally:
        svc.stop(spec)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server for the whole session."""
    yield from running_prefect_server(tmp_path_factory.mktemp("prefect-server"))


@pytest.fixture(scope="session")
def oracle_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second real Prefect server, where Prefect's own CLI deploys what forkflow deploys to `prefect_api`."""
    yield from running_prefect_server(tmp_path_factory.mktemp("prefect-oracle"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry with htpasswd auth on a free port, set up by tasks.stages.services."""
    need(have_program("docker-registry"), "Debian's docker-registry")
    from tasks.adapters import services as svc
    from tasks.pipeline.credentials import local_credentials
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prepare, service_spec

    folder = tmp_path_factory.mktemp("registry")
    config = write_config(folder, f"""[project]
name = "registry"
[services.registry]
port = {free_port()}
[services.index]
port = {free_port()}
[services.prefect]
port = {free_port()}
""")
    current = load_settings(config)
    prepare(current, "registry")
    spec = service_spec(current, "registry")
    svc.start(spec)
    creds = local_credentials(current.services_dir / "registry", "registry")
    try:
        yield Registry(f"127.0.0.1:{spec.port}", creds.username, creds.password)
    finally:
        svc.stop(spec)


@pytest.fixture(scope="session")
def base_images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A base image per Python in the engine: python:<v>-slim when present or pullable, else
    forkflow/python-local:<v> made from a local interpreter."""
    need(docker_reachable(), "a Docker engine")
    from tasks.pipeline.settings import load_settings
    from tasks.stages.image.base import ensure_base
    from tasks.stages.image.setup import image_setup

    config = write_config(tmp_path_factory.mktemp("bases"), image_config_text("127.0.0.1:1", "bases"))
    setup = image_setup(current=load_settings(config))
    return [ensure_base(setup, python)[0] for python in PYTHONS]


@pytest.fixture(scope="session")
def multiarch_base(registry: Registry, base_images: list[str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """`[images] base_image` for a Python 3.11 base with linux/amd64 and linux/arm64 images in `registry`."""
    from tasks.adapters import emulation
    from tasks.adapters.docker import connect
    from tests import multiarch

    need(emulation.registered("aarch64"), "QEMU emulation of aarch64 (./scripts/setup registers it)")
    need(have_program("debootstrap") or (multiarch.CACHE / multiarch.ROOTFS).is_file(), "debootstrap")
    client = connect()
    try:
        arm64 = multiarch.arm64_image(client, tmp_path_factory.mktemp("arm64"))
    finally:
        client.close()
    auth = {"username": registry.username, "password": registry.password}
    return multiarch.push_base_index(registry.address, auth, base_images[0], arm64)


SERVICE_FIXTURES = {"prefect_api", "oracle_api", "index", "upstream_index", "registry", "built_demo"}
DOCKER_FIXTURES = {"registry", "base_images", "session_images", "multiarch_base"}
SLOW_FIXTURES = {"demo_config", "demo_workspace"}  # doit runs on the whole demo, in subprocesses


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use, so `-m "not docker and not services"` is the fast subset."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SERVICE_FIXTURES and not item.get_closest_marker("services"):
            item.add_marker(pytest.mark.services)
        if used & DOCKER_FIXTURES and not item.get_closest_marker("docker"):
            item.add_marker(pytest.mark.docker)
        if used & SLOW_FIXTURES and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
