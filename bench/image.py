"""Images for 2 Python versions x 2 flavors (base, kubernetes): what incremental builds save.

Everything is real: the Docker engine, base images made from local
interpreters (made before timing, as `doit image-base` would), a local
docker-registry with htpasswd auth, `doit image` run as a command. The
wheels are tiny ones written for the run (orbit in every image, orbit-aws
only in the kubernetes flavor), unique per run so the first run really builds.

Cases:

- second run with no change vs the first run: whole `doit image` commands.
  The target is zero builds (checked in the report) and a small ratio.
- Docker work in a no-op run: the requests it sends the engine and the
  registry, counted by proxies in front of both (tests.counting_proxy; the
  whole bench runs through them), against one request per image cell; the
  target is one listing of the engine and one tag listing of the registry
  for all cells. And the up-to-date checks doit makes for the images, timed
  in this process. Target: under 1 s.
- a fresh runner with no change vs the first run: another folder with an
  empty state folder and the same wheels (as a CI runner gets them), the same
  registry. The registry is the cache: target 0 builds, 0 pushes, ratio under
  0.05. (The base images are in the engine already, as `doit image-base`
  leaves them; a real fresh runner makes or pulls them first.)
- one wheel changed (orbit-aws: only the kubernetes images hold it) vs the
  first run, which built all four images.

Run alone with `python -m bench.image`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import Result, print_results, sized, stopwatch

REPO = Path(__file__).resolve().parent.parent
PYTHONS = sized(("3.11", "3.12"), ("3.11",))


def run_doit(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "FORKFLOW_CONFIG": str(config), **env}
    result = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args], check=False,
                            env=full, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def statuses(config: Path) -> dict[str, str]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return {item["name"]: item["status"] for item in data["images"]}


def start_registry(folder: Path) -> tuple[Any, dict[str, str]]:
    from tasks.adapters import services as svc
    from tasks.pipeline.credentials import local_credentials
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prepare, service_spec
    from tests.helpers import free_port

    config = folder / "registry.toml"
    config.write_text(f'[project]\nname = "bench"\n[services.registry]\nport = {free_port()}\n'
                      f'[services.index]\nport = {free_port()}\n[services.prefect]\nport = {free_port()}\n')
    current = load_settings(config)
    prepare(current, "registry")
    spec = service_spec(current, "registry")
    svc.start(spec)
    creds = local_credentials(current.services_dir / "registry", "registry")
    env = {"FORKFLOW_REGISTRY_USERNAME": creds.username, "FORKFLOW_REGISTRY_PASSWORD": creds.password}
    return spec, {"address": f"127.0.0.1:{spec.port}", **env}


def packages(tag: str, aws: str = "") -> list[Any]:
    from tests.image_helpers import TinyPackage

    return [TinyPackage("orbit", "1.0.1", "core", f'RUN = "{tag}"'),
            TinyPackage("orbit-aws", "0.2.0", "integration", f'RUN = "{tag}"\n{aws}', ["orbit>=1.0.0"])]


def counted_noop(config: Path, env: dict[str, str], engine: Any, registry: Any) -> tuple[int, int]:
    """(engine requests, registry requests) of a no-op `doit image`."""
    engine.reset()
    registry.reset()
    run_doit(config, "image", env=env)
    return len(engine.seen()), len(registry.seen())


def noop_docker_seconds(config: Path) -> float:
    """The up-to-date checks of a no-op run, as doit makes them, timed here."""
    os.environ["FORKFLOW_CONFIG"] = str(config)
    from tasks.pipeline.settings import settings
    from tasks.stages.image.check import image_is_current
    from tasks.stages.image.setup import image_setup
    from tasks.stages.image.state import read_state, saved_values

    settings.cache_clear()
    setup = image_setup(current=settings())
    keys = cells()
    with stopwatch() as elapsed:
        results = [image_is_current(key, None, saved_values(read_state(setup, key))) for key in keys]
    if not all(results):
        raise RuntimeError(f"expected every image up to date, got {dict(zip(keys, results, strict=True))}")
    return elapsed()


def cells() -> list[str]:
    return [f"{python}-{flavor}" for python in PYTHONS for flavor in ("base", "kubernetes")]


def remove_images(tag: str) -> None:
    """Delete the images this run built (their names hold the run's tag)."""
    from tasks.adapters.docker import connect, remove_image

    client = connect()
    for image in client.sdk.images.list():
        if any(tag in name for name in image.tags + image.attrs.get("RepoDigests", [])):
            remove_image(client, image.id)


def built_in(output: str) -> int:
    """How many images a `doit image` run built (each says `image:<cell>: building ...`)."""
    return sum(1 for line in output.splitlines() if line.startswith("image:") and ": building " in line)


def fresh_runner(folder: Path, config: Path) -> Path:
    """Another checkout's config with an empty state folder and the same wheels (an artifact on a CI runner)."""
    import shutil

    fresh = folder / "fresh"
    state, target = folder / ".forkflow", fresh / ".forkflow"
    shutil.copytree(state / "dist", target / "dist")
    (target / "reports").mkdir(parents=True)
    wheels = (state / "reports" / "wheel.json").read_text().replace(str(state), str(target))
    (target / "reports" / "wheel.json").write_text(wheels)
    (fresh / "pipeline.toml").write_text(config.read_text())
    return fresh / "pipeline.toml"


def run() -> list[Result]:
    from tests.counting_proxy import CountingProxy

    tag = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-image-") as temp:
        folder = Path(temp)
        spec, registry = start_registry(folder)
        try:
            with CountingProxy("/var/run/docker.sock", folder / "engine.sock") as engine, \
                    CountingProxy(registry["address"]) as counted:
                env = {**{k: v for k, v in registry.items() if k != "address"}, "DOCKER_HOST": engine.address}
                return measure(folder, tag, env, engine, counted)
        finally:
            from tasks.adapters import services as svc

            svc.stop(spec)
            remove_images(tag)


def measure(folder: Path, tag: str, env: dict[str, str], engine: Any, counted: Any) -> list[Result]:
    from tests.image_helpers import Registry, image_config_text, write_wheel_set

    config = folder / "pipeline.toml"
    config.write_text(image_config_text(counted.address, f"bench{tag}/orbit", python=PYTHONS))
    state = folder / ".forkflow"
    write_wheel_set(state, packages(tag))
    run_doit(config, "image-base", env=env)

    with stopwatch() as first:
        run_doit(config, "image", env=env)
    assert set(statuses(config).values()) == {"built"}
    with stopwatch() as second:
        noop = run_doit(config, "image", env=env)
    builds = built_in(noop.stdout)
    engine_asked, registry_asked = counted_noop(config, env, engine, counted)
    os.environ.update(env)  # the engine the runs used (its platform is known by this name), the registry's login
    try:
        docker_seconds = noop_docker_seconds(config)
    finally:
        for name in env:
            del os.environ[name]

    fresh = fresh_runner(folder, config)
    with stopwatch() as fresh_run:
        again = run_doit(fresh, "image", env=env)
    fresh_builds = built_in(again.stdout)
    fresh_pushes = again.stdout.count(", pushed ")

    write_wheel_set(state, packages(tag, aws="REGION = 'eu'"))
    pushed = Registry(counted.address, env["FORKFLOW_REGISTRY_USERNAME"], env["FORKFLOW_REGISTRY_PASSWORD"])
    for python in PYTHONS:  # a changed image under the same version is refused until its tags are deleted
        pushed.delete(f"bench{tag}/orbit", f"1.0.1-python{python}-kubernetes")
    with stopwatch() as one_wheel:
        run_doit(config, "image", env=env)
    rebuilt = sorted(k for k, v in statuses(config).items() if v == "built")
    count = len(cells())
    return [
        Result(f"image: second run, no change, vs first run ({len(PYTHONS)} Python(s) x 2 flavors)", second(), first(),
               "ratio < 0.1, 0 builds",
               f"{builds} builds in the second run; first run built and pushed {count} images"),
        Result("image: fresh runner (empty state folder), no change, vs first run", fresh_run(), first(),
               "ratio < 0.05, 0 builds", f"{fresh_builds} builds, {fresh_pushes} pushes: every tag found in the registry "
               "with the same input hash"),
        Result(f"image: Docker engine requests in a no-op run vs one per image cell ({count} cells)", engine_asked,
               count, "1 request", f"counted by a proxy on the engine's socket; {registry_asked} registry request(s)",
               unit=" requests"),
        Result(f"image: registry requests in a no-op run vs one per image cell ({count} cells)", registry_asked, count,
               "1 request", "counted by a proxy in front of the registry", unit=" requests"),
        Result(f"image: docker work in the no-op run ({count} up-to-date checks)", docker_seconds, 1.0, "< 1 s",
               "baseline is the 1 s budget"),
        Result("image: one wheel changed vs first run", one_wheel(), first(), "ratio < 0.7",
               f"rebuilt {', '.join(rebuilt)} (the images holding orbit-aws), from cached layers below the extras"),
    ]


if __name__ == "__main__":
    print_results(run())
