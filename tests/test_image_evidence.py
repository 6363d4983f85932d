"""Evidence for every artefact: an image's SBOM, made from what forkflow installed and served by the registry;
a wheel's SBOM from its metadata. Against the real Docker engine and the local docker-registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tasks.core import sbom
from tests.helpers import run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_config, write_wheel_set

SESSION = uuid.uuid4().hex[:10]
LIST_SCRIPT = ("import importlib.metadata as md, json; "
               "print(json.dumps(sorted([d.metadata['Name'], d.version] for d in md.distributions())))")


def ok(result: Any) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def report(config: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((config.parent / ".forkflow" / "reports" / "image.json").read_text())
    return {item["name"]: item for item in data["images"]}


def installed_in(reference: str) -> dict[str, str]:
    """Every distribution in the image, read in a container from it: name -> version."""
    from tasks.adapters.docker import connect, run_container

    client = connect()
    try:
        code, output = run_container(client, reference, ["python", "-c", LIST_SCRIPT])
    finally:
        client.close()
    assert code == 0, output
    return {name: version for name, version in json.loads(output.strip().splitlines()[-1])}


def sbom_from_registry(registry: Registry, repository: str, subject: str) -> dict[str, Any]:
    """The SBOM the registry serves for `subject`: the artifact under `sha256-<hex>.sbom`, read over HTTP."""
    tag = subject.replace(":", "-") + ".sbom"
    status, headers, body = registry.get(f"{repository}/manifests/{tag}", accept="application/vnd.oci.image.manifest.v1+json")
    assert status == 200, f"no SBOM under {repository}:{tag}"
    manifest = json.loads(body)
    assert manifest["artifactType"] == sbom.MEDIA_TYPE and manifest["subject"]["digest"] == subject
    status, _, blob = registry.get(f"{repository}/blobs/{manifest['layers'][0]['digest']}")
    assert status == 200
    document: dict[str, Any] = json.loads(blob)
    return document


def listed(document: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["version"] for item in document["components"]}


def source_of(document: dict[str, Any], name: str) -> str:
    item = next(i for i in document["components"] if i["name"] == name)
    return str(next(p["value"] for p in item["properties"] if p["name"] == sbom.SOURCE))


def test_every_image_has_an_sbom_of_what_is_installed_and_the_registry_serves_it(
        tmp_path: Path, registry: Registry, base_images: list[str]) -> None:
    repo = f"t{SESSION}/sbom"
    text = image_config_text(registry.address, repo, python=("3.12",), flavors=("base", "kubernetes"))
    config = write_config(tmp_path / "first", text)
    tiny = [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{SESSION}"'),
            TinyPackage("orbit-aws", "0.2.0", "integration", f'SESSION = "{SESSION}"', ["orbit>=1.0.0"])]
    write_wheel_set(tmp_path / "first" / ".forkflow", tiny)
    ok(run_doit(config, "image", env=registry.env))
    for key, item in report(config).items():
        entry = item["sbom"]
        assert entry["format"] == "CycloneDX 1.5" and entry["subject"] == item["digest"], entry
        served = sbom_from_registry(registry, repo, item["digest"])
        assert served == json.loads(Path(entry["file"]).read_text()), "the registry serves the file image.json names"
        assert entry["reference"] == f"{registry.address}/{repo}:{item['digest'].replace(':', '-')}.sbom"
        in_image = installed_in(f"{registry.address}/{repo}@{item['digest']}")
        assert listed(served) == in_image, f"{key}: every distribution in the image, with its version"
        assert source_of(served, "orbit") == "project wheel"
        assert source_of(served, "pip") == "base image"
        orbit = next(i for i in served["components"] if i["name"] == "orbit")
        assert orbit["hashes"] == [{"alg": "SHA-256", "content": item["packages"][0]["sha256"]}]
        assert orbit["purl"] == "pkg:pypi/orbit@1.0.1"
    assert "orbit-aws" in listed(sbom_from_registry(registry, repo, report(config)["3.12-kubernetes"]["digest"]))
    assert "orbit-aws" not in listed(sbom_from_registry(registry, repo, report(config)["3.12-base"]["digest"]))

    fresh = write_config(tmp_path / "fresh", text)  # a fresh runner: nothing built, the SBOM found in the registry
    write_wheel_set(tmp_path / "fresh" / ".forkflow", tiny)
    ok(run_doit(fresh, "image", env=registry.env))
    for key, item in report(fresh).items():
        assert item["status"] == "up-to-date", item
        assert item["sbom"]["reference"] == report(config)[key]["sbom"]["reference"], item["sbom"]


def test_image_components_match_what_forkflow_installed() -> None:
    installed = {"linux/amd64": [("orbit", "1.0.1"), ("pydantic-core", "2.1.0"), ("pip", "24.0")],
                 "linux/arm64": [("orbit", "1.0.1"), ("pydantic-core", "2.1.0"), ("pip", "24.0"), ("uvloop", "0.2")]}
    project = [("orbit", "1.0.1", "orbit-1.0.1-py3-none-any.whl", "a" * 64)]
    wheelhouse = [("pydantic_core-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "b" * 64),
                  ("pydantic_core-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl", "c" * 64),
                  ("uvloop-0.2-cp312-cp312-manylinux_2_17_aarch64.whl", "d" * 64)]
    items = {i["name"]: i for i in sbom.image_components(installed, project, wheelhouse)}
    assert set(items) == {"orbit", "pydantic-core", "pip", "uvloop"}
    assert items["orbit"]["hashes"][0]["content"] == "a" * 64
    assert "hashes" not in items["pydantic-core"], "one wheel per platform: each named, no single hash"
    wheels = [p["value"] for p in items["pydantic-core"]["properties"] if p["name"] == "org.forkflow:wheel"]
    assert len(wheels) == 2
    assert {"name": "org.forkflow:platform", "value": "linux/arm64"} in items["uvloop"]["properties"]
    assert {"name": sbom.SOURCE, "value": "base image"} in items["pip"]["properties"]
    one = sbom.image_components({"": [("Orbit", "1.0.1")]}, project, ())
    assert one[0]["purl"] == "pkg:pypi/orbit@1.0.1" and one[0]["hashes"][0]["content"] == "a" * 64


def test_the_same_inputs_give_the_same_document() -> None:
    items = sbom.image_components({"": [("orbit", "1.0.1")]}, [], [])
    first = sbom.image_document("r/orbit", "1.0.1", "3.12", "base", "python:3.12-slim", items, "abc")
    again = sbom.image_document("r/orbit", "1.0.1", "3.12", "base", "python:3.12-slim", items, "abc")
    assert sbom.dumps(first) == sbom.dumps(again) and first["serialNumber"].startswith("urn:uuid:")
    other = sbom.image_document("r/orbit", "1.0.1", "3.12", "base", "python:3.12-slim", items, "abd")
    assert other["serialNumber"] != first["serialNumber"]


@pytest.mark.parametrize("line", ["installed []", "imported 3 top-level modules"])
def test_installed_line_of_the_smoke_test(line: str) -> None:
    assert sbom.installed_from_output(f"python 3.12\n{line}\n") == []
    assert sbom.installed_from_output('installed [["orbit", "1.0.1"]]\n') == [("orbit", "1.0.1")]


def test_an_index_lists_each_platforms_wheel_and_what_only_some_platforms_have() -> None:
    project = [("orbit", "1.0.1", "orbit-1.0.1-py3-none-any.whl", "a" * 64)]
    wheelhouse = [("pydantic_core-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "b" * 64),
                  ("pydantic_core-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl", "c" * 64),
                  ("uvloop-0.2-cp312-cp312-manylinux_2_17_aarch64.whl", "d" * 64)]
    amd = sbom.image_components({"linux/amd64": [("orbit", "1.0.1"), ("pydantic_core", "2.1.0")]}, project, wheelhouse)
    arm = sbom.image_components({"linux/arm64": [("orbit", "1.0.1"), ("pydantic_core", "2.1.0"), ("uvloop", "0.2")]},
                                project, wheelhouse)
    assert next(i for i in arm if i["name"] == "pydantic_core")["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}], \
        "a platform's image names the wheel of its CPU"
    merged = {i["name"]: i for i in sbom.merge_components({"linux/amd64": amd, "linux/arm64": arm})}
    assert merged["orbit"]["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}], "one file on both: its hash"
    assert "hashes" not in merged["pydantic_core"], "a wheel per CPU: each named, no single hash"
    assert len([p for p in merged["pydantic_core"]["properties"] if p["name"] == "org.forkflow:wheel"]) == 2
    assert {"name": "org.forkflow:platform", "value": "linux/arm64"} in merged["uvloop"]["properties"]
    assert not any(p["name"] == "org.forkflow:platform" for p in merged["orbit"]["properties"])


def test_a_wheel_sbom_names_its_license_only_when_it_is_a_name() -> None:
    fields = {"name": "orbit", "version": "1.0.1", "requires_dist": ["httpx>=0.27"], "license": "Apache-2.0"}
    subject = sbom.wheel_document(fields, "orbit-1.0.1-py3-none-any.whl", "a" * 64)["metadata"]["component"]
    assert subject["licenses"] == [{"license": {"name": "Apache-2.0"}}]
    assert {"name": "org.forkflow:requires-dist", "value": "httpx>=0.27"} in subject["properties"]
    text = sbom.wheel_document({**fields, "license": "Copyright ...\nPermission is hereby granted"}, "f.whl", "a" * 64)
    assert "licenses" not in text["metadata"]["component"], "a license's full text is not a license name"
    expression = sbom.wheel_document({**fields, "license_expression": "MIT"}, "f.whl", "a" * 64)
    assert expression["metadata"]["component"]["licenses"] == [{"expression": "MIT"}]


def test_the_image_stage_resolves_provenance_records_it_and_says_why_not_once(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.adapters import buildkit
    from tasks.core.config import parse_config_text
    from tasks.core.errors import ForkflowError
    from tasks.core.provenance import JOINED, NO_CONTAINERD_STORE
    from tasks.stages.image import evidence
    from tasks.stages.image.setup import ImageSetup

    def setup(value: str) -> ImageSetup:
        text = f'[project]\nname = "orbit"\n[images]\nregistry = "127.0.0.1:5001"\nprovenance = "{value}"\n'
        images = parse_config_text(text, "p.toml").images
        assert images is not None
        return ImageSetup(None, images)  # type: ignore[arg-type]  # only [images] is read

    stored = buildkit.Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker driver)",
                              attestations=True, containerd_store=True)
    classic = buildkit.Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker-container driver)")
    monkeypatch.setattr(evidence, "ANNOUNCED", set())
    monkeypatch.setattr(buildkit, "builder", lambda: stored)
    record: dict[str, Any] = {}
    assert evidence.provenance(setup("auto"), None, record) == "min"
    assert record["provenance"] == {"setting": "auto", "mode": "min"}
    assert evidence.provenance(setup("auto"), "linux/arm64", record) == "off"
    assert record["provenance"] == {"setting": "auto", "mode": "off", "reason": JOINED}
    monkeypatch.setattr(buildkit, "builder", lambda: classic)
    for _ in range(2):
        assert evidence.provenance(setup("auto"), None, record) == "off"
    assert capsys.readouterr().out.count(NO_CONTAINERD_STORE) == 1, "said once, not once per cell"
    with pytest.raises(ForkflowError) as refused:
        evidence.provenance(setup("min"), None, record)
    assert refused.value.where == "[images] provenance" and NO_CONTAINERD_STORE in refused.value.what
