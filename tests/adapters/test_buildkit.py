"""BuildKit's plain progress as forkflow reads it, the build's command line, and where the registry API is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.adapters import registry
from tasks.adapters.buildkit import Builder, BuildProgress, BuildRequest, build_argv

PLAIN = """#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#4 [stage-0 1/4] FROM docker.io/forkflow/python-local:3.12
#4 CACHED
#5 [stage-0 2/4] WORKDIR /opt/flows
#5 CACHED
#6 [stage-0 3/4] RUN --mount=type=cache,target=/root/.cache/pip python -m pip --version
#6 0.512 pip 24.0
#6 DONE 0.6s
#7 [4/4] COPY orbit_flows ./orbit_flows
#7 DONE 0.0s
#8 exporting to image
"""


def test_steps_and_cache_hits_are_read_from_the_plain_progress() -> None:
    seen = BuildProgress()
    announced = [line for line in (seen.read(text) for text in PLAIN.splitlines()) if line]
    assert announced == ["step 1/4 FROM docker.io/forkflow/python-local:3.12", "step 2/4 WORKDIR /opt/flows",
                         "step 3/4 RUN --mount=type=cache,target=/root/.cache/pip python -m pip --version",
                         "step 4/4 COPY orbit_flows ./orbit_flows"]
    assert len(seen.steps) == 4 and seen.cached == {"4", "5"}, "internal vertices are not steps"


def test_a_long_step_is_cut_to_one_short_line() -> None:
    line = BuildProgress().read("#9 [2/3] RUN " + "x" * 300)
    assert line is not None and len(line) == 100 and line.endswith("...")


def test_the_build_command_line() -> None:
    builder = Builder(("/usr/bin/docker", "build"), {"DOCKER_BUILDKIT": "1"}, "docker 20.10")
    request = BuildRequest(Path("/ctx"), "repo:tag", buildargs={"PYTHON_VERSION": "3.12", "BASE_IMAGE": "b"},
                           labels={"org.forkflow.input-hash": "abc"})
    argv = build_argv(builder, request, Path("/logs/x.iid"))
    assert argv[:2] == ["/usr/bin/docker", "build"] and argv[-1] == "/ctx"
    assert argv[argv.index("--file") + 1] == "/ctx/Dockerfile"
    assert argv[argv.index("--iidfile") + 1] == "/logs/x.iid" and "--progress=plain" in argv
    assert [argv[i + 1] for i, part in enumerate(argv) if part == "--build-arg"] == ["BASE_IMAGE=b", "PYTHON_VERSION=3.12"]
    assert "org.forkflow.input-hash=abc" in argv
    absolute = build_argv(builder, BuildRequest(Path("/ctx"), "t", dockerfile="/flows/Dockerfile"), Path("/x.iid"))
    assert absolute[absolute.index("--file") + 1] == "/flows/Dockerfile"


def test_the_registry_api_is_plain_http_only_on_this_machine() -> None:
    assert registry.base_url("127.0.0.1:5001") == "http://127.0.0.1:5001/v2"
    assert registry.base_url("localhost:5000/") == "http://localhost:5000/v2"
    assert registry.base_url("registry.acme.internal") == "https://registry.acme.internal/v2"


def test_platform_pull_and_the_registry_cache_reach_the_command_line() -> None:
    from tasks.adapters.buildkit import buildx_driver

    request = BuildRequest(Path("/ctx"), "t", platform="linux/arm64", pull=True, cache_images=("r/x:1", "r/x:latest"),
                           cache_ref="r/x:buildcache-3.11-base-arm64", auths={"r": {"username": "u", "password": "p"}})
    builtin = build_argv(Builder(("/usr/bin/docker", "build"), {}, "docker 20.10"), request, Path("/x.iid"))
    assert builtin[builtin.index("--platform") + 1] == "linux/arm64" and "--pull" in builtin
    assert [builtin[i + 1] for i, part in enumerate(builtin) if part == "--cache-from"] == ["r/x:1", "r/x:latest"]
    assert "BUILDKIT_INLINE_CACHE=1" in builtin and "--cache-to" not in builtin, "the engine's BuildKit: inline cache"
    assert "p" not in builtin and "u" not in builtin, "credentials never in argv"

    container = Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx", registry_cache=True)
    argv = build_argv(container, request, Path("/x.iid"))
    assert argv[argv.index("--cache-to") + 1] == \
        "type=registry,ref=r/x:buildcache-3.11-base-arm64,mode=max,ignore-error=true", "a cache export never fails a build"
    assert "type=registry,ref=r/x:buildcache-3.11-base-arm64" in argv
    assert buildx_driver("Name:   ci\nDriver: docker-container\nNodes:\n") == "docker-container"
    assert buildx_driver("Name: default\nDriver:        docker\n") == "docker"


def test_build_credentials_go_in_a_private_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tasks.adapters.buildkit import docker_config

    home = tmp_path / "home"
    (home / "cli-plugins").mkdir(parents=True)
    (home / "buildx").mkdir()
    (home / "config.json").write_text(json.dumps({"credHelpers": {"ghcr.io": "gh", "127.0.0.1:5000": "x"},
                                                  "credsStore": "desktop", "currentContext": "ci"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    folder = docker_config(tmp_path / "build", {"127.0.0.1:5000": {"username": "u", "password": "p"}})
    data = json.loads((folder / "config.json").read_text())
    assert data["credHelpers"] == {"ghcr.io": "gh"}, "the user's own helpers stay, but not for the hosts given"
    assert "credsStore" not in data and data["currentContext"] == "ci", "a store would be asked instead"
    assert (folder / "buildx").is_symlink(), "the user's buildx builders stay"
    assert data["auths"]["127.0.0.1:5000"]["auth"] == "dTpw"
    assert (folder / "config.json").stat().st_mode & 0o077 == 0 and (folder / "cli-plugins").is_symlink()


def test_provenance_is_asked_of_builders_that_can_attach_it_and_refused_where_they_cannot() -> None:
    from tasks.core.errors import ForkflowError

    stored = Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker-container driver)",
                     registry_cache=True, attestations=True, containerd_store=True)
    container = Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker-container driver)",
                        registry_cache=True)
    plain = Builder(("docker", "buildx", "build", "--load"), {}, "docker buildx (docker driver)")
    builtin = Builder(("/usr/bin/docker", "build"), {"DOCKER_BUILDKIT": "1"}, "docker 20.10")

    def provenance(builder: Builder, mode: str) -> list[str]:
        argv = build_argv(builder, BuildRequest(Path("/ctx"), "t", provenance=mode), Path("/x.iid"))
        return [part for part in argv if part.startswith("--provenance")]

    assert provenance(stored, "off") == ["--provenance=false"]
    assert provenance(stored, "max") == ["--provenance=mode=max"]
    assert provenance(stored, "min") == ["--provenance=mode=min"]
    assert provenance(container, "off") == ["--provenance=false"], "off unless asked for: a --load would fail"
    assert provenance(plain, "off") == ["--provenance=false"]
    assert provenance(builtin, "off") == [], "docker 20.10 has no --provenance"
    for builder in (container, plain, builtin):
        with pytest.raises(ForkflowError) as refused:
            provenance(builder, "max")
        assert refused.value.where == "[images] provenance" and "containerd image store" in (refused.value.fix or "")


def test_the_containerd_image_store_is_read_from_the_engine_driver_status() -> None:
    from tasks.adapters.buildkit import containerd_store

    assert containerd_store('[["driver-type","io.containerd.snapshotter.v1"]]')
    assert not containerd_store('[["Backing Filesystem","extfs"],["Supports d_type","true"]]'), "overlay2: no"
    assert not containerd_store(""), "no answer from the engine"
    assert not containerd_store("null") and not containerd_store("not json")
