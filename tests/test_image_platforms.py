"""Images for linux/amd64 and linux/arm64 on this amd64 machine: BuildKit per platform, arm64 under QEMU,
one index per tag in a real registry; the registry as the cache for a fresh state folder."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_config, write_wheel_set
from tests.test_image import UI_BUNDLE, copy_wheels, server_core
from tests.test_image_evidence import listed as sbom_listed
from tests.test_image_evidence import sbom_from_registry

pytestmark = [pytest.mark.docker]

SESSION = uuid.uuid4().hex[:10]
TWO = 'platforms = ["linux/amd64", "linux/arm64"]\n'
INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE = "application/vnd.docker.distribution.manifest.v2+json"


def packages() -> list[TinyPackage]:
    """orbit needs pydantic, whose core is compiled: each platform's image gets its own wheel of it."""
    body = f'SESSION = "{SESSION}"\nimport platform\nimport pydantic_core\nMACHINE = platform.machine()'
    return [TinyPackage("orbit", "1.0.1", "core", body, ["pydantic>=2.6,<3"]),
            TinyPackage("orbit-aws", "0.2.0", "integration", "", ["orbit>=1.0.0"])]


def distributions_checked(log: Path) -> int:
    found = re.search(r"imported \d+ top-level modules of (\d+) distributions", log.read_text())
    assert found, log.read_text()[-2000:]
    return int(found.group(1))


def config_text(registry: Registry, repo: str, base: str) -> str:
    return image_config_text(registry.address, repo, python=("3.11",), flavors=("base",),
                             extra=TWO + f'base_image = "{base}"\n')


def cell(config: Path) -> dict[str, Any]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return next(item for item in data["images"] if item["name"] == "3.11-base")


def output(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


def ok(result: Any) -> None:
    assert result.returncode == 0, output(result)[-5000:]


def index_of(registry: Registry, repo: str, tag: str) -> tuple[str, dict[str, Any]]:
    status, headers, body = registry.get(f"{repo}/manifests/{tag}", accept=INDEX)
    assert status == 200, (tag, status)
    return headers["Docker-Content-Digest"], json.loads(body)


def architecture(registry: Registry, repo: str, digest: str) -> str:
    _, _, body = registry.get(f"{repo}/manifests/{digest}", accept=IMAGE)
    _, _, config = registry.get(f"{repo}/blobs/{json.loads(body)['config']['digest']}")
    return str(json.loads(config)["architecture"])


def machine_in(ref: str, platform: str) -> str:
    from tasks.adapters.docker import connect, run_container

    client = connect()
    try:
        code, out = run_container(client, ref, ["python", "-c", "import orbit; print(orbit.MACHINE)"], platform=platform)
    finally:
        client.close()
    assert code == 0, out
    return out.strip()


def test_two_platform_image_is_one_index_per_tag_and_a_fresh_runner_builds_nothing(
        tmp_path: Path, registry: Registry, multiarch_base: str) -> None:
    repo = f"t{SESSION}/multi"
    text = config_text(registry, repo, multiarch_base)
    config = write_config(tmp_path / "first", text)
    write_wheel_set(tmp_path / "first" / ".forkflow", packages())

    result = run_doit(config, "image", env=registry.env)

    ok(result)
    out = output(result)
    for platform in ("linux/amd64", "linux/arm64"):
        assert re.search(rf"building \S+:build-3\.11-base-\w+-{platform.split('/')[1]} for {platform}", out), out[-3000:]
        assert f"smoke test passed on {platform}" in out
    built = cell(config)
    state = tmp_path / "first" / ".forkflow"
    for machine in ("x86_64", "aarch64"):
        names = [p.name for p in (state / "wheelhouse" / f"3.11-{machine}").glob("pydantic_core-*.whl")]
        assert len(names) == 1 and machine in names[0] and "-cp311-" in names[0], names
    logs = state / "logs"
    assert distributions_checked(logs / "image-3.11-base-arm64-smoke.log") >= 5, "pip's packages are checked on arm64"
    assert "left out 3 distributions of the base's OS" in (logs / "image-3.11-base-arm64-smoke.log").read_text()
    assert re.search(r"FROM \S+/base/python@sha256:[0-9a-f]{64}", (logs / "image-3.11-base-arm64.log").read_text()), \
        "each platform is built on the base image its input hash names, by digest"
    assert set(built["builds"]) == {"linux/amd64", "linux/arm64"}, "each platform's build is reported"
    assert built["status"] == "built" and set(built["platforms"]) == {"linux/amd64", "linux/arm64"}, built
    for tag in built["tags"]:
        digest, index = index_of(registry, repo, tag)
        assert index["mediaType"] == INDEX and digest == built["digest"] == built["pushed"][tag]
        listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
        assert listed == built["platforms"], (listed, built["platforms"])
    assert architecture(registry, repo, built["platforms"]["linux/arm64"]) == "arm64"
    assert architecture(registry, repo, built["platforms"]["linux/amd64"]) == "amd64"
    tag = built["tags"][0]
    assert machine_in(f"{registry.address}/{repo}:{tag}-arm64", "linux/arm64") == "aarch64", "arm64 runs under QEMU"
    assert machine_in(f"{registry.address}/{repo}:{tag}", "linux/amd64") == "x86_64", "the engine's own platform"
    document = sbom_from_registry(registry, repo, built["digest"])  # the index's SBOM: both platforms' wheels
    purl_names = {item["purl"].split("/")[1].split("@")[0] for item in document["components"]}
    assert built["sbom"]["subject"] == built["digest"] and {"orbit", "pydantic", "pydantic-core"} <= purl_names
    assert len(sbom_listed(document)) == len(document["components"])
    core = next(item for item in document["components"] if item["purl"].startswith("pkg:pypi/pydantic-core@"))
    wheels = [p["value"] for p in core["properties"] if p["name"] == "org.forkflow:wheel"]
    assert sorted("aarch64" in w for w in wheels) == [False, True], wheels

    again = run_doit(config, "image", env=registry.env)
    ok(again)
    assert ": building " not in again.stdout and re.search(r"^image:3\.11-base\s+up-to-date", again.stdout, re.M), \
        again.stdout[-2000:]

    ok(run_doit(config, "forget", "image:3.11-base"))  # past every check: the engine's images are found again
    forced = run_doit(config, "image", env=registry.env)
    ok(forced)
    assert ": building " not in forced.stdout and cell(config)["status"] == "up-to-date"
    assert index_of(registry, repo, tag)[0] == built["digest"], "the same images make the same index"

    fresh = write_config(tmp_path / "fresh", text)  # a fresh runner: an empty state folder, the same registry
    copy_wheels(tmp_path / "first" / ".forkflow", tmp_path / "fresh" / ".forkflow")
    third = run_doit(fresh, "image", env=registry.env)
    ok(third)
    found = cell(fresh)
    assert found["status"] == "up-to-date" and "the registry has every tag" in found["reason"], found
    assert ": building " not in third.stdout and "smoke test" not in third.stdout
    assert found["digest"] == built["digest"] and found["platforms"] == built["platforms"]
    assert index_of(registry, repo, tag)[0] == built["digest"], "nothing pushed again"


def test_a_base_without_the_platform_stops_before_anything_is_built(tmp_path: Path, registry: Registry,
                                                                    multiarch_base: str) -> None:
    repo = f"t{SESSION}/nobase"
    amd64_only = multiarch_base.replace("{python}-slim", "{python}-slim-amd64")
    config = write_config(tmp_path, config_text(registry, repo, amd64_only))
    write_wheel_set(tmp_path / ".forkflow", packages())

    result = run_doit(config, "image", env=registry.env)

    assert result.returncode != 0
    assert "has no linux/arm64 image (its registry has linux/amd64)" in output(result), output(result)[-3000:]
    assert "docker manifest" in output(result) and "building" not in result.stdout
    assert registry.tags(repo) == []


def test_missing_emulation_says_what_to_install_and_pushes_nothing(tmp_path: Path, registry: Registry,
                                                                   multiarch_base: str) -> None:
    repo = f"t{SESSION}/noqemu"
    config = write_config(tmp_path, config_text(registry, repo, multiarch_base))
    write_wheel_set(tmp_path / ".forkflow", packages())
    empty = tmp_path / "binfmt_misc"  # a kernel without QEMU registered
    empty.mkdir()

    result = run_doit(config, "image", env={**registry.env, "FORKFLOW_BINFMT_DIR": str(empty)})

    assert result.returncode != 0
    text = output(result)
    assert "cannot build linux/arm64 images here" in text and "no QEMU emulation of aarch64" in text, text[-3000:]
    assert "apt-get install -y qemu-user-static binfmt-support" in text and "update-binfmts --enable qemu-aarch64" in text
    assert "building" not in result.stdout and registry.tags(repo) == []


def test_the_dashboard_is_checked_on_each_platform(tmp_path: Path, registry: Registry, multiarch_base: str) -> None:
    repo = f"t{SESSION}/multidash"
    config = write_config(tmp_path, config_text(registry, repo, multiarch_base) + UI_BUNDLE)
    write_wheel_set(tmp_path / ".forkflow", [server_core(200)])

    result = run_doit(config, "image", env=registry.env)

    ok(result)
    for platform in ("linux/amd64", "linux/arm64"):
        assert re.search(rf"smoke test passed on {platform} .*, dashboard GET / 200 text/html", output(result))
    dashboard = cell(config)["dashboard"]
    assert dashboard["status"] == 200 and set(dashboard["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert all(answer["status"] == 200 for answer in dashboard["platforms"].values())
    assert dashboard["seconds"] == max(answer["seconds"] for answer in dashboard["platforms"].values())
