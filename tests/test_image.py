"""Stage `image` against the real Docker engine and a real registry with htpasswd auth.

Base images are made once (by `docker import` of a local interpreter) and
kept in the engine; the registry is Debian's docker-registry on a free port;
the wheels are tiny ones written per test session, so every session builds
for real.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import docker_reachable, have_program, need, run_doit
from tests.image_helpers import (
    PYTHONS,
    Registry,
    TinyPackage,
    flows_envs_config,
    image_config_text,
    unused_registry,
    write_config,
    write_wheel,
    write_wheel_set,
)

pytestmark = [pytest.mark.docker]

SESSION = uuid.uuid4().hex[:10]


@pytest.fixture(scope="module", autouse=True)
def session_images() -> Iterator[None]:
    """Delete the images these tests built when they are done (the base images stay, for the next run)."""
    yield
    if docker_reachable():
        remove_session_images()


def remove_session_images() -> None:
    """Untag (and so delete) the images this test session built; other images are left alone."""
    from tasks.adapters.docker import connect, remove_image

    client = connect()
    try:
        for image in client.sdk.images.list():
            names = image.tags + image.attrs.get("RepoDigests", [])
            if any(SESSION in name for name in names):
                remove_image(client, image.id)
    finally:
        client.close()


def packages(aws_body: str = "") -> list[TinyPackage]:
    """orbit (core), orbit-aws (integration, the kubernetes extra) and orbit-client (never in images)."""
    return [
        TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"'),
        TinyPackage("orbit-aws", "0.2.0", "integration", f'SESSION = "{SESSION}"\n{aws_body}', ["orbit>=1.0.0"]),
        TinyPackage("orbit-client", "1.0.1", "client", f'SESSION = "{SESSION}"'),
    ]


def report(config: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return {item["name"]: item for item in data["images"]}


def inspect(ref: str) -> dict[str, Any]:
    from tasks.adapters.docker import connect, image_attrs

    client = connect()
    try:
        attrs = image_attrs(client, ref)
    finally:
        client.close()
    assert attrs is not None, f"{ref} is not in the engine"
    return attrs


def ok(result: Any) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def copy_wheels(source: Path, target: Path) -> None:
    """The same wheels in another state folder, as a fresh CI runner gets them (an artifact), paths rewritten."""
    shutil.copytree(source / "dist", target / "dist")
    (target / "reports").mkdir(parents=True)
    text = (source / "reports" / "wheel.json").read_text().replace(str(source), str(target))
    (target / "reports" / "wheel.json").write_text(text)


def test_a_fresh_state_folder_builds_and_pushes_nothing_the_registry_has(tmp_path: Path, registry: Registry,
                                                                         base_images: list[str]) -> None:
    repo = f"t{SESSION}/fresh"
    text = image_config_text(registry.address, repo, python=("3.12",), flavors=("base",))
    first = write_config(tmp_path / "first", text)
    write_wheel_set(tmp_path / "first" / ".forkflow", packages())
    ok(run_doit(first, "image", env=registry.env))
    built = report(first)["3.12-base"]
    assert built["status"] == "built"
    before = {tag: registry.digest(repo, tag) for tag in built["tags"]}

    fresh = write_config(tmp_path / "fresh", text)  # another clone: an empty state folder, the same inputs
    copy_wheels(tmp_path / "first" / ".forkflow", tmp_path / "fresh" / ".forkflow")
    again = run_doit(fresh, "image", env=registry.env)
    ok(again)
    cell = report(fresh)["3.12-base"]
    assert cell["status"] == "up-to-date" and "the registry has every tag with these inputs" in cell["reason"], cell
    assert ": building " not in again.stdout and "smoke test" not in again.stdout, "nothing built or tested"
    assert cell["digest"] == built["digest"] and cell["pushed"] == before
    assert {tag: registry.digest(repo, tag) for tag in built["tags"]} == before, "nothing pushed"

    ok(run_doit(fresh, "forget", "image:3.12-base"))  # forgotten on purpose: past the registry check
    forced = run_doit(fresh, "image", env=registry.env)
    ok(forced)
    cell = report(fresh)["3.12-base"]
    assert "registry" not in cell["reason"] and set(cell["pushed"]) == set(built["tags"]), cell
    assert "smoke test passed" in forced.stdout
    log = (tmp_path / "first" / ".forkflow" / "logs" / "image-3.12-base.log").read_text()
    assert f"importing cache manifest from {registry.address}/{repo}:{built['tags'][0]}" in log, \
        "the build may reuse the layers of the image in the registry (BuildKit's inline cache)"
    _, _, manifest = registry.get(f"{repo}/manifests/{built['tags'][0]}",
                                  accept="application/vnd.docker.distribution.manifest.v2+json")
    _, _, config = registry.get(f"{repo}/blobs/{json.loads(manifest)['config']['digest']}")
    assert "moby.buildkit.cache.v0" in json.loads(config), "the pushed image carries its build cache"


def test_a_bare_doit_after_doit_image_does_no_image_work_and_keeps_the_pushed_digests(
        tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    """A config without [demo]: a bare `doit` only plans the image stage's pushes. Right after `doit image` it
    has nothing to do: no build, no smoke test, and image.json keeps what the registry holds."""
    repo = f"t{SESSION}/bare"
    text = image_config_text(registry.address, repo, flavors=("base",)).replace('default_python = "3.12"\n', "")
    config = write_config(tmp_path, text)  # two Pythons and no default_python, as README's config
    write_wheel_set(tmp_path / ".forkflow", packages())
    ok(run_doit(config, "image", env=registry.env))
    pushed = report(config)
    assert all(item["digest"] and item["pushed"] for item in pushed.values())
    assert "1-latest" in pushed["3.12-base"]["tags"] and "1-latest" not in pushed["3.11-base"]["tags"]
    assert registry.digest(repo, "1-latest") == pushed["3.12-base"]["digest"], "the newest Python gets `latest`"
    in_registry = {tag: registry.digest(repo, tag) for item in pushed.values() for tag in item["tags"]}

    bare = run_doit(config, env=registry.env)

    ok(bare)
    assert "only planned" in bare.stdout
    assert "smoke test" not in bare.stdout and ": building " not in bare.stdout, bare.stdout
    for key in pushed:
        assert "up-to-date" in line_of(bare.stdout, f"image:{key} "), bare.stdout
    after = report(config)
    for key, item in pushed.items():
        assert (after[key]["digest"], after[key]["pushed"]) == (item["digest"], item["pushed"]), after[key]
    assert {tag: registry.digest(repo, tag) for tag in in_registry} == in_registry

    named = run_doit(config, "image", env=registry.env)  # and the named run after it has nothing to do either
    ok(named)
    assert "smoke test" not in named.stdout and ": building " not in named.stdout, named.stdout
    assert {key: item["pushed"] for key, item in report(config).items()} == {k: i["pushed"] for k, i in pushed.items()}

    # Changed inputs: a bare `doit` builds and tests, pushes nothing, and the report keeps what the registry has.
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.2", "core", f'SESSION = "{SESSION}"')])
    changed = run_doit(config, env=registry.env)
    ok(changed)
    assert "smoke test passed" in changed.stdout
    after = report(config)
    for key, item in pushed.items():
        assert after[key]["status"] == "built" and after[key]["version"] == "1.0.2"
        assert (after[key]["digest"], after[key]["pushed"]) == (item["digest"], item["pushed"]), after[key]
        assert after[key]["push_planned"] == after[key]["tags"]
    assert {tag: registry.digest(repo, tag) for tag in in_registry} == in_registry
    assert registry.digest(repo, "1.0.2-python3.12") is None


def test_build_push_noop_one_wheel_and_template_changes(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    repo = f"t{SESSION}/orbit"
    config = write_config(tmp_path, image_config_text(registry.address, repo))
    state = tmp_path / ".forkflow"
    write_wheel_set(state, packages())

    first = run_doit(config, "image", env=registry.env)
    ok(first)
    images = report(config)
    assert sorted(images) == ["3.11-base", "3.11-kubernetes", "3.12-base", "3.12-kubernetes"]
    lines = [line for line in first.stdout.splitlines() if line.startswith("image:3.12-base: ")]
    steps = [n for n, line in enumerate(lines) if line.startswith("image:3.12-base: step ")]
    assert len(steps) == images["3.12-base"]["steps"] and lines[steps[0]].startswith("image:3.12-base: step 1/"), lines
    building = next(n for n, line in enumerate(lines) if ": building " in line)
    built = next(n for n, line in enumerate(lines) if ": built in " in line)
    assert building < steps[0] and steps[-1] < built, "a line per step as it starts, between building and built"
    assert {item["status"] for item in images.values()} == {"built"}
    assert all(item["smoke"] == "passed" for item in images.values())
    assert [p["name"] for p in images["3.12-base"]["packages"]] == ["orbit"]
    assert [p["name"] for p in images["3.12-kubernetes"]["packages"]] == ["orbit", "orbit-aws"]
    assert imports(images["3.12-kubernetes"]["image_id"], "orbit_aws") == 0, "the kubernetes flavor holds its package"
    assert imports(images["3.12-base"]["image_id"], "orbit_aws") != 0, "base holds only what it names"
    for item in images.values():
        assert item["size"] > item["base_size"] and item["added_size"] == item["size"] - item["base_size"]
        assert f"{item['size_mb']} MB" in line_of(first.stdout, f"image:{item['name']} ")

    # Every tag is in the registry with the digest the report recorded.
    expected_tags = sorted([tag for item in images.values() for tag in item["tags"]]
                           + [item["digest"].replace(":", "-") + ".sbom" for item in images.values()])
    assert registry.tags(repo) == expected_tags, "every tag, and each image's SBOM under sha256-<hex>.sbom"
    for item in images.values():
        assert set(item["pushed"]) == set(item["tags"])
        for tag, digest in item["pushed"].items():
            assert registry.digest(repo, tag) == digest == item["digest"]

    # Labels, non-root user, and the flavors share the base flavor's layers.
    attrs = inspect(images["3.12-kubernetes"]["image_id"])
    labels = attrs["Config"]["Labels"]
    assert labels["org.forkflow.input-hash"] == images["3.12-kubernetes"]["input_hash"]
    assert labels["org.opencontainers.image.version"] == "1.0.1"
    assert {"org.opencontainers.image.source", "org.opencontainers.image.revision",
            "org.opencontainers.image.created"} <= set(labels)
    assert attrs["Config"]["User"] == "1000:1000"
    shared = inspect(images["3.12-base"]["image_id"])["RootFS"]["Layers"][:-1]  # all but WORKDIR, the last step
    assert attrs["RootFS"]["Layers"][:len(shared)] == shared, "the kubernetes flavor is the base flavor plus extras"
    for python in PYTHONS:
        second_built = max(images[f"{python}-base"]["cached_steps"], images[f"{python}-kubernetes"]["cached_steps"])
        assert second_built >= 2, "the flavor built second takes the shared steps (user, install) from the cache"

    # A second run with no change builds nothing.
    second = run_doit(config, "image", env=registry.env)
    ok(second)
    assert "building" not in second.stdout
    again = report(config)
    assert again == images, "nothing ran, so the report still describes the last change"
    for key in images:
        assert f"image:{key}" in second.stdout and "up-to-date" in line_of(second.stdout, f"image:{key} ")
    assert "up-to-date" in line_of(second.stdout, "image:report ")

    # One wheel changes under the same version: the registry's release tags of the images holding it refuse the
    # change (tests/test_image_tags.py), until they are deleted on purpose. The dry run says which images would
    # rebuild and why, and changes nothing.
    write_wheel_set(state, packages(aws_body="REGION = 'eu'"))
    refused = run_doit(config, "image", "--dry-run", env=registry.env)
    ok(refused)
    for python in PYTHONS:
        assert f"would refuse: 1.0.1-python{python}-kubernetes is in the registry on other content" in \
            block_of(refused.stdout, f"image:{python}-kubernetes")
        assert "would refuse" not in block_of(refused.stdout, f"image:{python}-base")
        registry.delete(repo, f"1.0.1-python{python}-kubernetes")
    dry = run_doit(config, "image", "--dry-run", env=registry.env)
    ok(dry)
    for python in PYTHONS:
        assert "would rebuild: wheel changed: orbit_aws-0.2.0-py3-none-any.whl" in block_of(dry.stdout, f"image:{python}-kubernetes")
        assert "would not rebuild: inputs unchanged" in block_of(dry.stdout, f"image:{python}-base")
        assert f"1.0.1-python{python}-kubernetes" in block_of(dry.stdout, f"image:{python}-kubernetes")
    assert report(config) == again
    assert registry.digest(repo, "1.0-python3.12-kubernetes") is None, "deleted with the full tag's manifest"

    # Only the images holding that wheel are rebuilt, on top of the cached layers below the extras.
    third = run_doit(config, "image", env=registry.env)
    ok(third)
    assert any(line.startswith("image:3.12-kubernetes") and "(its inputs changed" in line for line in third.stdout.splitlines())
    after = report(config)
    for python in PYTHONS:
        rebuilt, kept = after[f"{python}-kubernetes"], after[f"{python}-base"]
        assert rebuilt["status"] == "built" and "wheel changed: orbit_aws" in rebuilt["reason"]
        assert kept["status"] == "up-to-date" and kept["image_id"] == images[f"{python}-base"]["image_id"]
        assert rebuilt["digest"] != images[f"{python}-kubernetes"]["digest"]
        assert registry.digest(repo, f"1.0.1-python{python}-kubernetes") == rebuilt["digest"]
        log = (state / "logs" / f"image-{python}-kubernetes.log").read_text()
        assert_cached_until(log, "--mount=type=bind,source=extras")

    # A template change rebuilds only the flavor it belongs to.
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "kubernetes.Dockerfile.j2").write_text(
        '{% extends "base.Dockerfile.j2" %}\n{% block extras %}{{ super() }}\nENV ORBIT_FLAVOR=kubernetes\n{% endblock %}\n')
    config.write_text(config.read_text() + 'templates = "templates"\n')
    for python in PYTHONS:
        registry.delete(repo, f"1.0.1-python{python}-kubernetes")
    fourth = run_doit(config, "image", env=registry.env)
    ok(fourth)
    latest = report(config)
    for python in PYTHONS:
        assert latest[f"{python}-kubernetes"]["status"] == "built"
        assert "Dockerfile changed" in latest[f"{python}-kubernetes"]["reason"]
        assert latest[f"{python}-base"]["status"] == "up-to-date"
        env = inspect(latest[f"{python}-kubernetes"]["image_id"])["Config"]["Env"]
        assert "ORBIT_FLAVOR=kubernetes" in env
    assert registry.password not in "".join(r.stdout + r.stderr for r in (first, second, dry, third, fourth))


def imports(image: str, module: str) -> int:
    """The exit code of `import <module>` in a container of `image`."""
    return subprocess.run(["docker", "run", "--rm", image, "python", "-c", f"import {module}"],
                          capture_output=True, text=True, check=False).returncode


def docker_output(image: str, *command: str) -> str:
    return subprocess.run(["docker", "run", "--rm", image, *command], capture_output=True, text=True,
                          check=True).stdout


def venv_site_packages_size(folder: Path, python: str, find_links: list[Path], requirement: str) -> int:
    """Bytes of a host venv's site-packages holding `requirement` installed by pip from the same wheels, without
    pip itself (the base image has pip already)."""
    from tasks.adapters.rootfs import default_interpreters_root, find_interpreter

    home = find_interpreter(default_interpreters_root(), python)
    interpreter = home / "bin" / f"python{python}" if home else shutil.which(f"python{python}")
    need(interpreter is not None, f"a local Python {python}")
    subprocess.run([str(interpreter), "-m", "venv", "--without-pip", str(folder)], check=True)
    links = [arg for link in find_links for arg in ("--find-links", str(link))]
    subprocess.run([sys.executable, "-m", "pip", "--python", str(folder / "bin" / "python"), "install", "--quiet",
                    "--no-index", *links, requirement], check=True, capture_output=True)
    site = next(folder.glob("lib/python*/site-packages"))
    return sum(p.lstat().st_size for p in site.rglob("*") if p.is_file() or p.is_symlink())


def printed(result: Any) -> str:
    """What a run printed: doit reports a failed task's message on stdout, other messages may go to stderr."""
    return str(result.stdout) + str(result.stderr)


def line_of(text: str, start: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(start)), "")


def block_of(text: str, heading: str) -> str:
    """The dry-run lines for one image: its heading line and the indented lines after it."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(heading + " "):
            block = [line]
            for following in lines[index + 1:]:
                if not following.startswith("  "):
                    break
                block.append(following)
            return "\n".join(block)
    return ""


def assert_cached_until(log: str, instruction: str) -> None:
    """Every step after FROM and before `instruction` came from BuildKit's cache, and that one did not."""
    steps: dict[int, tuple[str, str]] = {}  # step number -> (BuildKit's vertex, the instruction)
    for found in re.finditer(r"^#(\d+) \[(?:[\w.-]+ )?(\d+)/\d+\] (.*)$", log, flags=re.MULTILINE):
        steps.setdefault(int(found.group(2)), (found.group(1), found.group(3)))
    cached = set(re.findall(r"^#(\d+) CACHED$", log, flags=re.MULTILINE))
    target = next(number for number, (_, text) in sorted(steps.items()) if instruction in text)
    before = [vertex for number, (vertex, _) in sorted(steps.items()) if 1 < number < target]
    assert before and all(vertex in cached for vertex in before), log
    assert steps[target][0] not in cached, log


VERSION_COMMAND = """
def main():
    import sys

    import pydantic_core

    if sys.argv[1:] == ["version"]:
        print("Version: " + __version__)
        print("pydantic-core: " + pydantic_core.__version__)
"""


def compiled_core(version: str = "1.0.1", extra: str = "") -> TinyPackage:
    """A core package like Prefect's: it needs pydantic (whose core is compiled) and has `orbit version`."""
    return TinyPackage("orbit", version, "core", f'SESSION = "{SESSION}"\nfrom pydantic import BaseModel\n{extra}'
                       f"{VERSION_COMMAND}", ["pydantic>=2.6,<3", 'whenever; python_version >= "3.13"',
                                              'pytest; extra == "test"'], scripts={"orbit": "orbit:main"})


def test_compiled_dependency_from_the_automatic_wheelhouse(tmp_path: Path, registry: Registry,
                                                           base_images: list[str]) -> None:
    repo = f"t{SESSION}/compiled"
    config = write_config(tmp_path, image_config_text(registry.address, repo, python=("3.12",), flavors=("base",)))
    state = tmp_path / ".forkflow"
    write_wheel_set(state, [compiled_core()])

    first = run_doit(config, "image", env=registry.env)
    ok(first)
    item = report(config)["3.12-base"]
    assert item["status"] == "built" and item["smoke"] == "passed"
    folder = state / "wheelhouse" / "3.12-x86_64"
    names = sorted(p.name for p in folder.glob("*.whl"))
    assert any(n.startswith("pydantic_core-") and "-cp312-" in n and "manylinux" in n for n in names), names
    assert any(n.startswith("pydantic-") for n in names)
    assert not any(n.startswith(("whenever", "pytest", "orbit")) for n in names), "markers are evaluated for 3.12"
    assert "`orbit version` reports 1.0.1" in first.stdout
    assert "imported" in line_of(first.stdout, "image:3.12-base: smoke test passed")
    labels = inspect(item["image_id"])["Config"]["Labels"]
    assert labels["org.opencontainers.image.base.name"] == item["base_image"] == base_images[-1]

    # No wheel stays in the image: they reached pip through bind mounts.
    assert docker_output(item["image_id"], "ls", "-A", "/opt/orbit").split() == []
    wheel_names = sorted({*names, Path(json.loads((state / "reports" / "wheel.json").read_text())["packages"][0]
                                        ["files"][0]["path"]).name})
    found = docker_output(item["image_id"], "python", "-c", "import os, sys; print('\\n'.join(os.path.join(d, f) "
                          "for d, _, fs in os.walk('/') if not d.startswith(('/proc', '/sys')) for f in fs "
                          "if f in sys.argv[1:]))", *wheel_names)
    assert found.split() == [], found

    # Its size: the base plus what a venv of the same wheels holds, within 15%.
    venv = venv_site_packages_size(tmp_path / "venv", "3.12", [folder, state / "dist" / "orbit"], "orbit==1.0.1")
    assert item["added_size"] == item["size"] - item["base_size"] and item["size"] == inspect(item["image_id"])["Size"]
    assert item["added_size"] <= 1.15 * venv, (item["added_size"], venv)
    assert item["added_size"] >= 0.85 * venv, (item["added_size"], venv)

    # No change: the wheelhouse is reused without asking any index (an unreachable one would fail the run).
    stamp = folder / "stamp.json"
    before = stamp.stat().st_mtime_ns
    nowhere = "http://127.0.0.1:9/simple"
    offline = {**registry.env, "UV_OFFLINE": "1", "UV_DEFAULT_INDEX": nowhere, "PIP_INDEX_URL": nowhere,
               "PIP_NO_INDEX": "1"}
    second = run_doit(config, "image", env=offline)
    ok(second)
    assert "up-to-date" in line_of(second.stdout, "image-deps:3.12 ")
    assert "up-to-date" in line_of(second.stdout, "image:3.12-base ")
    assert stamp.stat().st_mtime_ns == before


def test_a_pre_release_the_resolver_had_to_take_is_what_the_image_installs(tmp_path: Path, registry: Registry,
                                                                           base_images: list[str]) -> None:
    """As dbt-core on Prefect's tree: its releases need an sdist-only package, so a wheels-only resolution
    takes a pre-release; pip in the image installs it because the wheelhouse's pins are its constraints."""
    extra = tmp_path / "extra-wheels"
    write_wheel(TinyPackage(f"probe-pre-{SESSION}", "2.0.0a1", "dependency"), extra)
    repo = f"t{SESSION}/prerelease"
    config = write_config(tmp_path, image_config_text(registry.address, repo, python=("3.12",), flavors=("base",),
                                                      extra='wheelhouse = "extra-wheels"\n'))
    core = TinyPackage("orbit", "1.0.1", "core", f"import probe_pre_{SESSION}\n", [f"probe-pre-{SESSION}>=1.0"])
    write_wheel_set(tmp_path / ".forkflow", [core])

    result = run_doit(config, "image", env=registry.env)

    ok(result)
    assert f"the resolution took pre-releases: probe-pre-{SESSION}==2.0.0a1" in printed(result)
    item = report(config)["3.12-base"]
    assert item["status"] == "built" and item["smoke"] == "passed"
    shown = subprocess.run(["docker", "run", "--rm", item["image_id"], "python", "-c",
                            f"import probe_pre_{SESSION} as p; print(p.__version__)"],
                           capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "2.0.0a1"
    context = tmp_path / ".forkflow" / "images" / "3.12-base" / "context"
    assert (context / "deps" / "constraints.txt").read_text() == f"probe-pre-{SESSION}==2.0.0a1\n"


def test_a_flavor_installs_the_core_with_its_extras(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    """`core_extras = { base = ["fast"] }`: the base image installs `orbit[fast]`, so the extra's requirement is
    resolved into the wheelhouse and installed; the kubernetes image, without the extra, does not hold it."""
    extra = tmp_path / "extra-wheels"
    write_wheel(TinyPackage(f"probe-fast-{SESSION}", "1.2.0", "dependency"), extra)
    repo = f"t{SESSION}/extras"
    config = write_config(tmp_path, image_config_text(registry.address, repo, python=("3.12",),
                                                      extra='wheelhouse = "extra-wheels"\ncore_extras = { base = ["fast"] }\n'))
    core = TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"', [f'probe-fast-{SESSION}>=1; extra == "fast"'])
    write_wheel_set(tmp_path / ".forkflow", [core, packages()[1]])

    ok(run_doit(config, "image", env=registry.env))

    images = report(config)
    assert imports(images["3.12-base"]["image_id"], f"probe_fast_{SESSION}") == 0
    assert imports(images["3.12-kubernetes"]["image_id"], f"probe_fast_{SESSION}") != 0
    dockerfile = (tmp_path / ".forkflow" / "images" / "3.12-base" / "context" / "Dockerfile").read_text()
    assert "'orbit[fast]==1.0.1'" in dockerfile


def test_requirement_without_a_wheel_names_package_python_and_platform(tmp_path: Path) -> None:
    config = write_config(tmp_path, image_config_text("127.0.0.1:1", "orbit", python=("3.12",), flavors=("base",)))
    core = TinyPackage("orbit", "1.0.1", "core", requires=["pyspark==3.5.0"])
    write_wheel_set(tmp_path / ".forkflow", [core])

    result = run_doit(config, "image-deps:3.12")

    assert result.returncode != 0
    assert "no wheel of pyspark for Python 3.12 on x86_64-manylinux_2_28" in printed(result)
    assert "[images] wheelhouse" in printed(result)
    assert "Traceback" not in printed(result)


def test_smoke_test_failure_blocks_the_push(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    repo = f"t{SESSION}/broken"
    config = write_config(tmp_path, image_config_text(registry.address, repo, python=("3.12",), flavors=("base",)))
    broken = [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"\nraise RuntimeError("broken on purpose")')]
    write_wheel_set(tmp_path / ".forkflow", broken)

    result = run_doit(config, "image", env=registry.env)

    assert result.returncode != 0
    assert "smoke test failed" in printed(result) and "not pushed" in printed(result)
    assert "import orbit failed: RuntimeError: broken on purpose" in printed(result)
    assert "Traceback" not in printed(result)
    assert registry.tags(repo) == []
    item = report(config)["3.12-base"]
    assert item["status"] == "failed" and item["pushed"] == {}


def server_core(answer: int) -> TinyPackage:
    """orbit with `orbit version` and an `orbit server start` whose `GET /` answers `answer`: 200 HTML (its
    dashboard) or 404 JSON (a wheel built without its UI bundle)."""
    body = f'''SESSION = "{SESSION}"
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        html = {answer} == 200
        self.send_response({answer})
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/json")
        self.end_headers()
        self.wfile.write(b"<html>orbit</html>" if html else b\'{{"detail": "Not Found"}}\')

def main():
    args = sys.argv[1:]
    if args == ["version"]:
        print("Version: " + __version__)
    elif args[:2] == ["server", "start"]:
        print("The dashboard is not built" if {answer} != 200 else "serving the dashboard", flush=True)
        HTTPServer((args[args.index("--host") + 1], int(args[args.index("--port") + 1])), Handler).serve_forever()
'''
    return TinyPackage("orbit", "1.0.1", "core", body, scripts={"orbit": "orbit:main"})


UI_BUNDLE = '[[packages.ui]]\nsource = "ui"\ntarget = "src/orbit/server/ui"\n'


def test_a_core_without_its_dashboard_fails_the_smoke_test_and_is_not_pushed(tmp_path: Path, registry: Registry,
                                                                              base_images: list[str]) -> None:
    repo = f"t{SESSION}/nodash"
    text = image_config_text(registry.address, repo, python=("3.12",), flavors=("base",), extra=UI_BUNDLE)
    config = write_config(tmp_path, text)
    write_wheel_set(tmp_path / ".forkflow", [server_core(404)])

    result = run_doit(config, "image", env=registry.env)

    assert result.returncode != 0
    out = printed(result)
    assert "smoke test failed (dashboard: `orbit server start --host 127.0.0.1 --port <port>`: GET / answered 404" in out
    assert "not the dashboard (200 HTML)" in out and "not pushed" in out and "The dashboard is not built" in out
    assert "where: " in out and "-smoke.log" in out and "fix:   build the core's wheel with its UI bundles" in out
    assert "Traceback" not in out
    assert registry.tags(repo) == []
    item = report(config)["3.12-base"]
    assert item["status"] == "failed" and item["pushed"] == {} and "dashboard" in item["reason"]


def test_a_core_with_its_dashboard_records_the_answer(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    repo = f"t{SESSION}/dash"
    text = image_config_text(registry.address, repo, python=("3.12",), flavors=("base",), extra=UI_BUNDLE)
    config = write_config(tmp_path, text)
    write_wheel_set(tmp_path / ".forkflow", [server_core(200)])

    result = run_doit(config, "image", env=registry.env)

    ok(result)
    item = report(config)["3.12-base"]
    assert item["smoke"] == "passed" and item["pushed"]
    assert item["dashboard"]["status"] == 200 and item["dashboard"]["content_type"].startswith("text/html")
    assert 0 <= item["dashboard"]["seconds"] < 60
    assert re.search(r"smoke test passed .*, dashboard GET / 200 text/html; charset=utf-8 in [0-9.]+s\)", printed(result))


def test_registry_down_fails_clearly(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    down = unused_registry()
    config = write_config(tmp_path, image_config_text(down, "orbit", python=("3.12",), flavors=("base",)))
    write_wheel_set(tmp_path / ".forkflow", packages())

    result = run_doit(config, "image", env=registry.env)

    assert result.returncode != 0
    assert f"registry {down}" in printed(result) and "connection refused" in printed(result)
    assert "not reachable: start it" in printed(result)
    assert "Traceback" not in printed(result)
    assert "building" not in result.stdout


def test_wrong_credentials_fail_clearly_without_printing_them(tmp_path: Path, registry: Registry,
                                                             base_images: list[str]) -> None:
    config = write_config(tmp_path, image_config_text(registry.address, "orbit", python=("3.12",), flavors=("base",)))
    write_wheel_set(tmp_path / ".forkflow", packages())
    wrong = {"FORKFLOW_REGISTRY_USERNAME": registry.username, "FORKFLOW_REGISTRY_PASSWORD": "not-the-password-" + SESSION}

    result = run_doit(config, "image", env=wrong)

    assert result.returncode != 0
    assert "401 Unauthorized" in printed(result)
    assert "refused the credentials (or got none); set FORKFLOW_REGISTRY_USERNAME / FORKFLOW_REGISTRY_PASSWORD" in printed(result)
    assert wrong["FORKFLOW_REGISTRY_PASSWORD"] not in printed(result)
    assert "building" not in result.stdout


def test_no_docker_engine_fails_image_tasks_only(tmp_path: Path) -> None:
    config = write_config(tmp_path, image_config_text("127.0.0.1:1", "orbit", python=("3.12",), flavors=("base",)))
    write_wheel_set(tmp_path / ".forkflow", packages())
    no_engine = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}

    result = run_doit(config, "image", env=no_engine)

    assert result.returncode != 0
    assert "the Docker engine is not reachable" in printed(result)
    assert "install and start a Docker engine" in printed(result)
    assert "Traceback" not in printed(result)
    assert run_doit(config, "list", env=no_engine).returncode == 0
    status = run_doit(config, "services-status", env=no_engine)
    assert status.returncode == 0 and "NOT reachable" in status.stdout
    dry = run_doit(config, "image:3.12-base", "--dry-run", env=no_engine)
    assert dry.returncode == 0
    assert "cannot tell whether it would rebuild: the Docker engine is not reachable" in dry.stdout


def test_several_platforms_with_an_unreachable_base_registry_stop_before_building(tmp_path: Path, registry: Registry,
                                                                                  base_images: list[str]) -> None:
    gone = unused_registry()
    extra = f'platforms = ["linux/amd64", "linux/arm64"]\nbase_image = "{gone}/python:{{python}}-slim"\n'
    config = write_config(tmp_path, image_config_text(registry.address, "orbit", python=("3.12",), flavors=("base",),
                                                      extra=extra))
    write_wheel_set(tmp_path / ".forkflow", packages())

    result = run_doit(config, "image", env=registry.env)

    assert result.returncode != 0
    assert f"base image {gone}/python:3.12-slim: its registry {gone} did not answer" in printed(result)
    assert "images for linux/amd64, linux/arm64 take their base from there" in printed(result)
    assert "building" not in result.stdout


def test_missing_wheel_report_is_reported_before_anything_changes(tmp_path: Path) -> None:
    config = write_config(tmp_path, image_config_text("127.0.0.1:1", "orbit", python=("3.12",), flavors=("base",)))

    result = run_doit(config, "image:3.12-base", "--dry-run")

    assert result.returncode != 0
    assert "wheel.json does not exist" in printed(result) and "doit wheel" in printed(result)
    assert "Traceback" not in printed(result)


def test_a_flows_repository_without_a_project_has_no_environments_to_build(
        tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    """As most repositories deployed by a prefect.yaml: no pyproject.toml, so image:envs has nothing to do."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "prefect.yaml").write_text("deployments: []\n")
    config = write_config(tmp_path, image_config_text(registry.address, f"t{SESSION}/noenvs", python=("3.12",),
                                                      flavors=("base",)) + '\n[flows]\npath = "flows"\n')
    result = run_doit(config, "image:envs")
    ok(result)
    assert f"no flows project (pyproject.toml) in {flows}: no flow environments to build" in result.stdout


def test_flows_project_environments_build_without_push(tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    flows, config = flows_envs_config(tmp_path, registry.address, SESSION)

    first = run_doit(config, "image:envs")
    ok(first)
    data = json.loads((tmp_path / ".forkflow" / "reports" / "image.json").read_text())
    (env,) = data["environments"]
    assert env["name"] == "worker" and env["status"] == "built" and env["pushed"] == {}
    assert env["tags"][1] == "python3.12"
    attrs = inspect(f"{env['repository']}:python3.12")
    assert attrs["Id"] == env["image_id"]
    assert "PYTHONPATH=/opt/flows" in attrs["Config"]["Env"]
    assert registry.tags(f"t{SESSION}/envs") == []
    log = (tmp_path / ".forkflow" / "logs" / "image-env-worker.log").read_text()
    assert re.search(r"^#\d+ \[(?:[\w.-]+ )?\d+/\d+\] RUN --mount=type=cache,target=/root/.cache/pip", log, re.MULTILINE), log

    second = run_doit(config, "image:envs")
    ok(second)
    assert "up-to-date" in line_of(second.stdout, "image:envs ")

    (flows / "orbit_flows" / "session.py").write_text(f'SESSION = "{SESSION}-changed"\n')
    third = run_doit(config, "image:envs")
    ok(third)
    changed = json.loads((tmp_path / ".forkflow" / "reports" / "image.json").read_text())["environments"][0]
    assert changed["status"] == "built" and changed["image_id"] != env["image_id"]


@pytest.mark.slow
@pytest.mark.services
def test_demo_image_from_a_fresh_clone(demo_config: Path, base_images: list[str]) -> None:
    """`doit image:3.12-kubernetes` on the embedded demo: demo, checkout, versions, wheels, registry, push."""
    need(have_program("docker-registry"), "Debian's docker-registry")
    text = demo_config.read_text().replace('python = ["3.11", "3.12"]', 'python = ["3.12"]')
    text = text.replace("[images]\n", f'[images]\nrepository = "t{SESSION}/demo"\n')
    demo_config.write_text(text)
    try:
        result = run_doit(demo_config, "image:3.12-kubernetes")
        ok(result)
        item = report(demo_config)["3.12-kubernetes"]
        assert item["status"] in ("built", "up-to-date") and item["smoke"] == "passed"
        assert [p["name"] for p in item["packages"]] == ["orbit", "orbit-aws"], "the core and the flavor's package"
        assert item["tags"][0].startswith("1.0.1-python3.12-kubernetes") or "-python3.12-kubernetes" in item["tags"][0]
        assert item["digest"] and set(item["pushed"]) == set(item["tags"])
        assert "1-latest-kubernetes" in item["tags"]
        assert item["dashboard"]["status"] == 200, "orbit's server in the image serves the dashboard built with npm"
        assert item["dashboard"]["content_type"].startswith("text/html")
        assert_sbom_served(demo_config, item)
    finally:
        run_doit(demo_config, "services-stop")


def assert_sbom_served(config: Path, item: dict[str, Any]) -> None:
    """The registry serves the image's SBOM, and it lists every distribution in the image with its version."""
    from tasks.adapters.registry_artifacts import read_attached
    from tasks.pipeline.credentials import registry_auth
    from tasks.pipeline.settings import load_settings
    from tests.test_image_evidence import installed_in, listed

    host, path = item["repository"].split("/", 1)
    found = read_attached(host, path, item["digest"], "sbom", registry_auth(load_settings(config)))
    assert found is not None and item["sbom"]["digest"] == found[0], item["sbom"]
    document = json.loads(found[1])
    assert listed(document) == installed_in(f"{item['repository']}@{item['digest']}")
    assert {package["name"] for package in item["packages"]} <= set(listed(document)), "the project's wheels in it"
