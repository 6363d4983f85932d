"""BuildKit's plain progress as forkflow reads it, the build's command line, and where the registry API is."""

from __future__ import annotations

from pathlib import Path

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
