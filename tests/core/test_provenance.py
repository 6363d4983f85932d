"""`[images] provenance`: every row of docs/image.md's Provenance table, and that the `auto` default leaves
every existing image as it was where it makes no attestation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.adapters.buildkit import Builder, BuildRequest, build_argv
from tasks.core.config import parse_config_text
from tasks.core.provenance import JOINED, NO_BUILDX, NO_CONTAINERD_STORE, BuilderFacts, Provenance, decide, summary

STORE = BuilderFacts(buildx=True, containerd_store=True)  # buildx, engine with the containerd image store (any driver)
NO_STORE = BuilderFacts(buildx=True, containerd_store=False)  # buildx, classic store: --load cannot keep one
BUILTIN = BuilderFacts(buildx=False, containerd_store=False)  # docker 20.10 with DOCKER_BUILDKIT=1
JOINED_PLATFORM = BuilderFacts(buildx=True, containerd_store=True, joined=True)  # one platform of an index


def test_auto_makes_min_only_where_the_build_can_make_and_keep_it() -> None:
    assert decide("auto", STORE) == Provenance("min")
    assert decide("auto", NO_STORE) == Provenance("off", NO_CONTAINERD_STORE)
    assert decide("auto", BUILTIN) == Provenance("off", NO_BUILDX)
    assert decide("auto", JOINED_PLATFORM) == Provenance("off", JOINED)
    assert "docker/buildx#1714" in NO_CONTAINERD_STORE


def test_off_is_off_everywhere_with_nothing_to_explain() -> None:
    for facts in (STORE, NO_STORE, BUILTIN, JOINED_PLATFORM):
        assert decide("off", facts) == Provenance("off")


@pytest.mark.parametrize("mode", ["min", "max"])
def test_min_and_max_are_made_where_supported_and_refused_elsewhere(mode: str) -> None:
    assert decide(mode, STORE) == Provenance(mode)
    assert decide(mode, NO_STORE) == Provenance(mode, NO_CONTAINERD_STORE, refused=True)
    assert decide(mode, BUILTIN) == Provenance(mode, NO_BUILDX, refused=True)
    assert decide(mode, JOINED_PLATFORM) == Provenance(mode, JOINED, refused=True)


def test_the_summary_says_what_is_made_or_why_not() -> None:
    assert summary("auto", STORE) == "provenance attestation mode=min ([images] provenance = auto)"
    assert summary("auto", BUILTIN) == f"no provenance attestation ([images] provenance = auto): {NO_BUILDX}"
    assert summary("off", STORE) == "no provenance attestation ([images] provenance = off)"
    assert summary("max", NO_STORE).startswith("[images] provenance = max is refused here: ")


def test_the_auto_default_leaves_images_where_it_resolves_to_off_as_they_were() -> None:
    """An existing setup (no provenance key, formerly `off`) must keep its images' input hashes and command
    lines: otherwise every image would be rebuilt under the same version and refused as other content."""
    base = '[project]\nname = "orbit"\n[images]\nregistry = "127.0.0.1:5001"\n'
    default = parse_config_text(base, "p.toml").images
    off = parse_config_text(base + 'provenance = "off"\n', "p.toml").images
    assert default is not None and off is not None and default.provenance == "auto"
    assert default.model_copy(update={"provenance": "off"}) == off, "provenance is the only difference"
    buildx = Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker-container driver)",
                     registry_cache=True)
    builtin = Builder(("/usr/bin/docker", "build"), {"DOCKER_BUILDKIT": "1"}, "docker 20.10")
    for builder in (buildx, builtin):
        facts = BuilderFacts(builder.buildx, builder.containerd_store)
        resolved = decide(default.provenance, facts)
        assert resolved.mode == "off"
        request = BuildRequest(Path("/ctx"), "t", labels={"a": "b"}, provenance=resolved.mode)
        assert build_argv(builder, request, Path("/x.iid")) == build_argv(
            builder, BuildRequest(Path("/ctx"), "t", labels={"a": "b"}, provenance="off"), Path("/x.iid"))
    root = Path(__file__).resolve().parents[2] / "tasks"
    readers = sorted(str(p.relative_to(root)) for p in (root / "stages" / "image").glob("*.py")
                     if "provenance" in p.read_text(encoding="utf-8"))
    assert readers == ["stages/image/build.py", "stages/image/evidence.py"], "only the build request reads it"
    assert "provenance" not in (root / "core" / "images.py").read_text(encoding="utf-8"), "never a build input"
