"""A two-platform image built one platform at a time, each in its own state folder (as on its own runner),
then joined by `doit image-join`: the same index, digests and SBOM as one run that builds both. arm64 runs
under QEMU; the registry is the local docker-registry, the hand-off between the runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tasks.stages.image.setup import PLATFORM_ENV
from tests.helpers import run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_config, write_wheel_set
from tests.test_image import copy_wheels
from tests.test_image_evidence import sbom_from_registry

pytestmark = [pytest.mark.docker]

SESSION = uuid.uuid4().hex[:10]
TWO = ("linux/amd64", "linux/arm64")
INDEX = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
EPOCH = "1767225600"  # SOURCE_DATE_EPOCH: the `created` label of every run below


def config_text(registry: Registry, repo: str, base: str) -> str:
    return image_config_text(registry.address, repo, python=("3.11",), flavors=("base",),
                             extra=f'platforms = {json.dumps(list(TWO))}\nbase_image = "{base}"\n')


def cell(config: Path) -> dict[str, Any]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return next(item for item in data["images"] if item["name"] == "3.11-base")


def remove_images_of(input_hash: str) -> None:
    """Delete the engine's images of these inputs (as a fresh runner has none); its build cache stays."""
    from tasks.adapters.docker import connect

    client = connect()
    try:
        for image in client.sdk.images.list(filters={"label": f"org.forkflow.input-hash={input_hash}"}):
            client.sdk.images.remove(image.id, force=True)
    finally:
        client.close()


def index_digest(registry: Registry, repo: str, tag: str) -> str | None:
    status, headers, _ = registry.get(f"{repo}/manifests/{tag}", accept=INDEX, method="HEAD")
    return headers.get("Docker-Content-Digest") if status == 200 else None


def ok(result: Any) -> None:
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]


def test_platforms_built_apart_and_joined_give_the_index_of_one_run(tmp_path: Path, registry: Registry,
                                                                   multiarch_base: str) -> None:
    env = {**registry.env, "SOURCE_DATE_EPOCH": EPOCH}
    first = write_config(tmp_path / "one", config_text(registry, f"t{SESSION}one/orbit", multiarch_base))
    write_wheel_set(tmp_path / "one" / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"')])
    ok(run_doit(first, "image", env=env))
    one = cell(first)
    assert one["status"] == "built" and set(one["platforms"]) == set(TWO)

    remove_images_of(one["input_hash"])  # each split run builds its platform again (BuildKit's cache stays)
    repo = f"t{SESSION}split/orbit"  # another repository with the same name: the image (its title label) is the same
    text = config_text(registry, repo, multiarch_base)
    for platform in TWO:  # each platform in its own state folder, given only the wheels
        folder = tmp_path / platform.replace("/", "-")
        config = write_config(folder, text)
        copy_wheels(tmp_path / "one" / ".forkflow", folder / ".forkflow")
        result = run_doit(config, "image", env={**env, PLATFORM_ENV: platform})
        ok(result)
        part = cell(config)
        assert part["split"] == platform and set(part["platforms"]) == {platform} and part["digest"] is None, part
        assert part["platforms"][platform] == one["platforms"][platform], "the same image as the one-run build's"
        assert f"smoke test passed on {platform}" in result.stdout and f"building t{SESSION}" in result.stdout
        other = next(p for p in TWO if p != platform)
        assert f"built for {other}" not in result.stdout and f"built for {platform}" in result.stdout, "only its own"
    assert index_digest(registry, repo, one["tags"][0]) is None, "no tag of the cell before the join"

    joiner = write_config(tmp_path / "join", text)  # the join job: the wheels (for the tags) and the registry
    copy_wheels(tmp_path / "one" / ".forkflow", tmp_path / "join" / ".forkflow")
    planned = run_doit(joiner, "image-join", "--dry-run", env=env)
    ok(planned)
    assert "would put the index of linux/amd64" in planned.stdout, planned.stdout[-2000:]
    assert index_digest(registry, repo, one["tags"][0]) is None, "a dry run puts nothing"
    ok(run_doit(joiner, "image-join", env=env))
    joined = cell(joiner)
    assert joined["status"] == "built" and joined["digest"] == one["digest"], (joined, one["digest"])
    assert joined["platforms"] == one["platforms"]
    assert {tag: index_digest(registry, repo, tag) for tag in one["tags"]} == dict.fromkeys(one["tags"], one["digest"])
    split_sbom = sbom_from_registry(registry, repo, joined["digest"])
    one_sbom = sbom_from_registry(registry, f"t{SESSION}one/orbit", one["digest"])
    assert split_sbom["components"] == one_sbom["components"], "the index's SBOM lists what the one-run build's does"
    assert split_sbom["metadata"]["properties"] == one_sbom["metadata"]["properties"]

    again = run_doit(joiner, "image-join", env=env)
    ok(again)
    assert cell(joiner)["status"] == "up-to-date" and cell(joiner)["digest"] == one["digest"]


def test_join_without_a_platform_image_says_which_to_build(tmp_path: Path, registry: Registry,
                                                          multiarch_base: str) -> None:
    config = write_config(tmp_path, config_text(registry, f"t{SESSION}/missing", multiarch_base))
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"')])
    result = run_doit(config, "image-join", env=registry.env)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "no linux/amd64, linux/arm64 image in the registry" in out and f"{PLATFORM_ENV}=linux/amd64 doit image:3.11-base" in out


def test_a_platform_that_is_not_configured_is_refused_before_anything_is_built(tmp_path: Path, registry: Registry,
                                                                               multiarch_base: str) -> None:
    config = write_config(tmp_path, config_text(registry, f"t{SESSION}/bad", multiarch_base))
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"')])
    result = run_doit(config, "image", env={**registry.env, PLATFORM_ENV: "linux/s390x"})
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"{PLATFORM_ENV}=linux/s390x" in out and "linux/amd64, linux/arm64" in out and "building" not in out


def test_the_native_platform_of_a_split_build_needs_no_emulation(tmp_path: Path, registry: Registry,
                                                                multiarch_base: str) -> None:
    """An amd64 runner without QEMU builds the amd64 platform; arm64 there is refused before any build."""
    repo = f"t{SESSION}noqemu/orbit"
    config = write_config(tmp_path, config_text(registry, repo, multiarch_base))
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"')])
    empty = tmp_path / "binfmt_misc"  # a kernel without QEMU registered
    empty.mkdir()
    env = {**registry.env, "FORKFLOW_BINFMT_DIR": str(empty)}
    refused = run_doit(config, "image", env={**env, PLATFORM_ENV: "linux/arm64"})
    assert refused.returncode != 0 and "no QEMU emulation of aarch64" in refused.stdout + refused.stderr
    ok(run_doit(config, "image", env={**env, PLATFORM_ENV: "linux/amd64"}))
    assert cell(config)["status"] in ("built", "up-to-date") and set(cell(config)["platforms"]) == {"linux/amd64"}
