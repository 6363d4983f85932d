"""Image references, per-platform tags and platform names, as rules."""

from __future__ import annotations

import pytest

from tasks.core.image_tags import DOCKER_HUB, base_content, cpu, lists_all, pinned, platform_tag, same_platform, split_reference


@pytest.mark.parametrize(("ref", "parts"), [
    ("python:3.11-slim", (DOCKER_HUB, "library/python", "3.11-slim")),
    ("python", (DOCKER_HUB, "library/python", "latest")),
    ("prefecthq/prefect:3-python3.12", (DOCKER_HUB, "prefecthq/prefect", "3-python3.12")),
    ("127.0.0.1:5000/base/python:3.11-slim", ("127.0.0.1:5000", "base/python", "3.11-slim")),
    ("localhost/python:3.11", ("localhost", "python", "3.11")),
    ("ghcr.io/acme/prefect@sha256:abc", ("ghcr.io", "acme/prefect", "sha256:abc")),
    ("registry.example.com:443/a/b/c", ("registry.example.com:443", "a/b/c", "latest")),
    ("docker.io/python:3.11", (DOCKER_HUB, "library/python", "3.11")),
    ("index.docker.io/prefecthq/prefect:3", (DOCKER_HUB, "prefecthq/prefect", "3")),
])
def test_split_reference_reads_references_as_docker_does(ref: str, parts: tuple[str, str, str]) -> None:
    assert split_reference(ref) == parts


def test_a_pinned_reference_names_the_digest_not_the_tag() -> None:
    assert pinned("127.0.0.1:5000/base/python:3.11-slim", "sha256:ab") == "127.0.0.1:5000/base/python@sha256:ab"
    assert pinned("python", "sha256:ab") == "python@sha256:ab"
    assert pinned("127.0.0.1:5000/python@sha256:old", "sha256:ab") == "127.0.0.1:5000/python@sha256:ab"


def test_platform_tags_name_the_architecture() -> None:
    assert platform_tag("1.0.1-python3.11", "linux/arm64") == "1.0.1-python3.11-arm64"
    assert platform_tag("1-latest", "linux/arm64/v8") == "1-latest-arm64v8"
    assert platform_tag("x", "linux/amd64") == "x-amd64"


def test_platform_names_compare_by_cpu() -> None:
    assert same_platform("linux/arm64", "linux/arm64/v8")
    assert same_platform("linux/amd64", "linux/x86_64")
    assert not same_platform("linux/amd64", "linux/arm64")
    assert cpu("unknown/unknown") == ("unknown", "unknown"), "an attestation entry of an index is not an error"
    assert lists_all(("linux/amd64", "linux/arm64/v8", "unknown/unknown"), ("linux/arm64", "linux/amd64"))
    assert not lists_all(("linux/amd64",), ("linux/amd64", "linux/arm64"))


def test_the_base_counts_by_its_digest_per_platform_in_any_order() -> None:
    one = base_content({"linux/arm64": "sha256:b", "linux/amd64": "sha256:a"})
    assert one == base_content({"linux/amd64": "sha256:a", "linux/arm64": "sha256:b"})
    assert one != base_content({"linux/amd64": "sha256:a", "linux/arm64": "sha256:c"})
