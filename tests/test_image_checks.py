"""The image stage's up-to-date checks: one question to the engine and one to the registry per run, and what
they must still notice (an image gone from the engine, a tag gone from the registry).

The questions are counted by proxies in front of the real Docker engine's
socket (DOCKER_HOST) and the real registry's port (tests.counting_proxy), not
by forkflow's own account.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.counting_proxy import CountingProxy
from tests.helpers import docker_reachable, run_doit
from tests.image_helpers import Registry, TinyPackage, flows_envs_config, image_config_text, write_config, write_wheel_set
from tests.test_startup import NOT_IN_CHECKS, heavy, imported_modules

pytestmark = [pytest.mark.docker]

SESSION = uuid.uuid4().hex[:10]
PACKAGES = [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"'),
            TinyPackage("orbit-aws", "0.2.0", "integration", f'SESSION = "{SESSION}"', ["orbit>=1.0.0"])]


@pytest.fixture(scope="module", autouse=True)
def session_images() -> Iterator[None]:
    """Delete the images these tests built when they are done (the base images stay)."""
    yield
    if docker_reachable():
        remove_images(SESSION)


def remove_images(part: str) -> None:
    """Remove from the engine every image with a name holding `part`."""
    from tasks.adapters.docker import connect, remove_image

    client = connect()
    try:
        for image in client.sdk.images.list():
            if any(part in name for name in image.tags + image.attrs.get("RepoDigests", [])):
                remove_image(client, image.id)
    finally:
        client.close()


@pytest.fixture
def proxies(tmp_path: Path, registry: Registry) -> Iterator[tuple[CountingProxy, CountingProxy]]:
    """(engine, registry): counting proxies in front of the engine's socket and the registry's port."""
    with CountingProxy("/var/run/docker.sock", tmp_path / "engine.sock") as engine, \
            CountingProxy(registry.address) as registry_proxy:
        yield engine, registry_proxy


def report(config: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return {item["name"]: item for item in data["images"]}


def ok(result: Any) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def summary_line(output: str, task: str) -> str:
    """The task's row in the run's summary table."""
    rows = output.split("\nsummary:", 1)[-1].splitlines()
    return next((row for row in rows if row.startswith(task + " ")), "")


def test_a_no_op_run_asks_the_engine_once_and_the_registry_once(
        tmp_path: Path, registry: Registry, base_images: list[str],
        proxies: tuple[CountingProxy, CountingProxy]) -> None:
    engine, registry_proxy = proxies
    repo = f"t{SESSION}/counted"
    config = write_config(tmp_path, image_config_text(registry_proxy.address, repo))  # 2 Pythons x 2 flavors
    write_wheel_set(tmp_path / ".forkflow", PACKAGES)
    env = {**registry.env, "DOCKER_HOST": engine.address}
    ok(run_doit(config, "image", env=env))
    assert {item["status"] for item in report(config).values()} == {"built"}

    engine.reset()
    registry_proxy.reset()
    noop = run_doit(config, "image", env={**env, "PYTHONPROFILEIMPORTTIME": "1"})

    ok(noop)
    assert heavy(imported_modules(noop.stderr), NOT_IN_CHECKS) == []  # the checks load no build machinery
    for key in report(config):
        assert "up-to-date" in summary_line(noop.stdout, f"image:{key}"), noop.stdout
    for base in ("3.11", "3.12"):
        assert "up-to-date" in summary_line(noop.stdout, f"image-base:{base}"), noop.stdout
    asked = engine.seen()
    assert len(asked) == 1 and asked[0][1].startswith("/images/json?filters="), asked
    assert registry_proxy.seen() == [("GET", f"/v2/{repo}/tags/list")]


def test_a_tag_deleted_from_the_registry_is_pushed_again_and_an_image_gone_from_the_engine_is_found_or_built(
        tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    repo = f"t{SESSION}/healed"
    config = write_config(tmp_path, image_config_text(registry.address, repo, python=("3.12",)))
    write_wheel_set(tmp_path / ".forkflow", PACKAGES)
    ok(run_doit(config, "image", env=registry.env))
    first = report(config)
    pushed = {tag: registry.digest(repo, tag) for item in first.values() for tag in item["tags"]}
    assert all(pushed.values()), pushed

    # A tag deleted from the registry: the check of that cell fails, its task pushes the image it has again.
    registry.delete(repo, "1.0.1-python3.12-kubernetes")
    assert registry.digest(repo, "1.0.1-python3.12-kubernetes") is None
    repushed = run_doit(config, "image", env=registry.env)
    ok(repushed)
    assert "no longer in the registry" in summary_line(repushed.stdout, "image:3.12-kubernetes"), repushed.stdout
    assert "up-to-date" in summary_line(repushed.stdout, "image:3.12-base"), repushed.stdout
    assert ": building " not in repushed.stdout
    assert {tag: registry.digest(repo, tag) for tag in pushed} == pushed, "every tag is back, on the same image"

    # The image gone from the engine: the task runs, and finds every tag with these inputs in the registry.
    remove_images(first["3.12-base"]["build_tags"][0])
    found = run_doit(config, "image", env=registry.env)
    ok(found)
    assert "no longer in the engine" in summary_line(found.stdout, "image:3.12-base"), found.stdout
    assert "the registry has every tag with these inputs" in report(config)["3.12-base"]["reason"]

    # Gone from both: it is built and pushed again.
    remove_images(first["3.12-kubernetes"]["build_tags"][0])
    registry.delete(repo, "1.0.1-python3.12-kubernetes")
    rebuilt = run_doit(config, "image", env=registry.env)
    ok(rebuilt)
    cell = report(config)["3.12-kubernetes"]
    assert cell["status"] == "built" and "image:3.12-kubernetes: building " in rebuilt.stdout
    assert registry.digest(repo, "1.0.1-python3.12-kubernetes") == cell["pushed"]["1.0.1-python3.12-kubernetes"]


def test_the_flows_project_environments_are_checked_from_the_same_listing(tmp_path: Path, registry: Registry,
                                                                          base_images: list[str]) -> None:
    _, config = flows_envs_config(tmp_path, registry.address, SESSION)
    with CountingProxy("/var/run/docker.sock", tmp_path / "engine.sock") as engine:
        env = {**registry.env, "DOCKER_HOST": engine.address}
        ok(run_doit(config, "image:envs", env=env))
        engine.reset()

        noop = run_doit(config, "image:envs", env=env)

        ok(noop)
        assert "up-to-date" in summary_line(noop.stdout, "image:envs"), noop.stdout
        asked = engine.seen()
        assert len(asked) == 1 and asked[0][1].startswith("/images/json?filters="), asked
