"""A prefect.yaml's own Docker build and push steps (prefect-docker's), built by forkflow with BuildKit, pushed to
the environment's registry, pinned by digest, and run on a Docker worker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tasks.core.docker_steps import BUILD_STEP, PUSH_STEP, ImageBuild, image_builds
from tasks.core.errors import ConfigError
from tests.flows_repo import commit_all, unique_project
from tests.helpers import run_doit
from tests.image_helpers import Registry, TinyPackage, image_config_text, write_wheel_set
from tests.test_flow_formats import (
    PREFECT,
    deployments_on,
    fixture_repo,
    pipeline,
    registry_login,
    run_stages,
    run_state,
    start_run,
)

BUILD = {BUILD_STEP: {"id": "build-image", "image_name": "registry.example.com/team/app", "tag": "dev",
                      "dockerfile": "docker/Dockerfile", "path": ".", "platform": "amd64",
                      "buildargs": {"PY": "3.12"}, "additional_tags": ["v1"]}}
PUSH = {PUSH_STEP: {"image_name": "{{ build-image.image_name }}", "tag": "{{ build-image.tag }}"}}


def test_a_build_step_is_read_as_prefect_docker_reads_it() -> None:
    (build,) = image_builds([BUILD, PUSH], "prefect.yaml: deployments.0(app)")
    assert build == ImageBuild(step_id="build-image", image_name="registry.example.com/team/app", tag="dev",
                               dockerfile="docker/Dockerfile", buildargs=(("PY", "3.12"),), platform="linux/amd64",
                               additional_tags=("v1",), push=True)
    assert build.repository("127.0.0.1:5001") == "127.0.0.1:5001/team/app", "the environment's registry, the path kept"
    assert ImageBuild("b", "team/app").repository("reg.example.com/ns") == "reg.example.com/ns/team/app"
    (unpushed,) = image_builds([BUILD], "prefect.yaml")
    assert not unpushed.push, "no push step: built, not pushed (as prefect deploy)"
    same = build.key("r:5000", "FROM x\n", "c1")
    assert same == build.key("r:5000", "FROM x\n", "c1") != build.key("r:5000", "FROM x\n", "c2")


def test_docker_steps_forkflow_cannot_build_are_refused_with_every_problem() -> None:
    bad = {BUILD_STEP: {"image_name": "team/app", "dockerfile": "auto", "buildarg": {}, "tag": "{{ get-commit.stdout }}"}}
    stray = {PUSH_STEP: {"image_name": "other/image"}}
    with pytest.raises(ConfigError) as caught:
        image_builds([bad, stray], "prefect.yaml: deployments.0(app)")
    text = str(caught.value)
    for part in ("steps.0(build_docker_image).buildarg: unknown key; allowed: id, requires, image_name",
                 "steps.0(build_docker_image): needs an `id`",
                 "dockerfile: `auto` (a Dockerfile prefect-docker writes) is not built by forkflow",
                 "tag: '{{ get-commit.stdout }}' is filled only at deploy time",
                 "steps.1(push_docker_image): pushes 'other/image', which no build step of this deployment makes"):
        assert part in text, text


@pytest.mark.docker
@pytest.mark.services
@pytest.mark.slow
def test_a_docker_build_step_is_built_pushed_pinned_and_runs_on_a_docker_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry, base_images: list[str],
        prefect_api: str) -> None:
    """The image stage makes a base with Prefect in it; the project's own Dockerfile builds FROM it (no Docker
    Hub here); forkflow builds the step once for three deployments, pushes it, pins it by digest, a Docker worker
    runs the flow in it; a second deploy builds nothing, a changed context builds again."""
    import prefect

    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    repo = fixture_repo(tmp_path, "prefect_docker_project")
    base_repository = f"t{os.urandom(4).hex()}/base"
    images = image_config_text(registry.address, base_repository, python=("3.12",), flavors=("base",))
    config = pipeline(tmp_path, prefect_api, pool="ff-docker-dev", extra=images[images.index("[images]"):],
                      project=unique_project())
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", requires=[
        f"prefect=={prefect.__version__}", "fastapi==0.150.0"])])
    made = run_doit(config, "image:3.12-base", env=registry.env)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    (base,) = json.loads((tmp_path / ".forkflow" / "reports" / "image.json").read_text())["images"]
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("prefecthq/prefect:3-python3.12",
                                                         f"{registry.address}/{base_repository}:{base['tags'][0]}"))
    text = (repo / "prefect.yaml").read_text()
    (repo / "prefect.yaml").write_text(text.replace("        image_pull_policy: IfNotPresent\n",
                                                    "        image_pull_policy: IfNotPresent\n        network_mode: host\n"))
    commit_all(repo, "build from the fork's image; the worker's container reaches the local server")

    report = run_stages(config, monkeypatch, "deploy")
    assert {e["name"]: e["status"] for e in report["deployments"]} == {
        "from-build-step": "created", "pool-default": "created", "by-tag": "created"}
    builds = json.loads((tmp_path / ".forkflow" / "docker-steps.json").read_text())
    (built,) = builds.values()  # one build for the three deployments
    digest = registry.digest("team/docker-project", "latest")
    assert digest and built["digest"] == digest, "pushed to the environment's registry, its path kept"
    pinned = f"{registry.address}/team/docker-project@{digest}"
    server = deployments_on(prefect_api)
    assert server["hello/from-build-step"]["job_variables"] == {
        "image": pinned, "image_pull_policy": "IfNotPresent", "network_mode": "host"}
    assert server["hello/pool-default"]["job_variables"] == {"image": pinned}, "a container pool gets the built image"
    assert server["hello/by-tag"]["version"] == "latest"
    assert server["hello/by-tag"]["job_variables"] == {"image": f"{registry.address}/team/docker-project:latest"}

    docker_config = tmp_path / "docker-config"
    registry_login(registry, docker_config)
    flow_run = start_run(prefect_api, server["hello/from-build-step"]["id"], {"name": "worker"})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", "ff-docker-dev", "--type", "docker", "--run-once"],
                            check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "PREFECT_API_URL": prefect_api, "DOCKER_CONFIG": str(docker_config)})
    assert run_state(prefect_api, flow_run) == "COMPLETED", worker.stdout[-4000:] + worker.stderr[-4000:]

    again = run_stages(config, monkeypatch, "deploy")
    assert again["writes"] == 0 and json.loads((tmp_path / ".forkflow" / "docker-steps.json").read_text()) == builds
    dry = run_stages(config, monkeypatch, "deploy", dry_run=True)
    assert {e["status"] for e in dry["deployments"]} == {"unchanged"}, "a dry run finds the pushed image by its digest"

    hello = repo / "flows" / "hello.py"
    hello.write_text(hello.read_text().replace('"docker"', '"rebuilt"'))
    commit_all(repo, "a change in the build context")
    changed = run_stages(config, monkeypatch, "deploy")
    assert {e["name"]: e["status"] for e in changed["deployments"]}["from-build-step"] == "updated"
    new_digest = registry.digest("team/docker-project", "latest")
    assert new_digest != digest, "the context changed: built and pushed again"
    assert deployments_on(prefect_api)["hello/from-build-step"]["job_variables"]["image"].endswith(f"@{new_digest}")


def test_builds_that_differ_in_tag_or_push_are_different_builds() -> None:
    base = ImageBuild("b", "team/app", tag="dev")
    key = base.key("r:5000", "FROM x\n", "c")
    assert key != ImageBuild("b", "team/app", tag="prod").key("r:5000", "FROM x\n", "c")
    assert key != ImageBuild("b", "team/app", tag="dev", push=True).key("r:5000", "FROM x\n", "c")
    assert key == ImageBuild("other-id", "team/app", tag="dev").key("r:5000", "FROM x\n", "c"), "the step id is no part"


def test_validate_only_says_what_it_would_build_and_asks_no_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fixture_repo(tmp_path, "prefect_docker_project")
    from tasks.pipeline.settings import settings
    from tasks.stages.deploy.stage import deploy_action

    config = pipeline(tmp_path, "http://127.0.0.1:9/api", pool="ff-docker-dev", extra='registry = "127.0.0.1:9/flows"\n')
    run_stages(config, monkeypatch)
    monkeypatch.setenv("FORKFLOW_CONFIG", str(config))
    settings.cache_clear()
    assert deploy_action(validate_only=True) == {"made": "valid (3 deployments)"}
    settings.cache_clear()
    out = capsys.readouterr().out
    assert "would build 127.0.0.1:9/flows/team/docker-project:latest and push it" in out, out
    assert not (tmp_path / ".forkflow" / "docker-steps.json").exists(), "nothing built, nothing remembered"


def test_a_push_without_a_registry_is_refused_before_anything_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture_repo(tmp_path, "prefect_docker_project")
    with pytest.raises(ConfigError, match=r"a push_docker_image step pushes the image, and environment 'dev' has no registry"):
        run_stages(pipeline(tmp_path, "http://127.0.0.1:9/api", pool="ff-docker-dev"), monkeypatch, "deploy",
                   validate_only=True)
