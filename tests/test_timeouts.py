"""Every wait is bounded: a remote that accepts and never answers fails in time, saying what did not answer,
which setting bounds it and what to do (a listener per kind: git over http, index, registry, Prefect, engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.adapters import limits
from tasks.core.errors import ForkflowError
from tasks.pipeline.settings import read_json
from tests.flows_repo import IDENTITY
from tests.helpers import have_program, need, run_doit
from tests.hung import hung_listener, hung_unix_socket


@pytest.fixture
def small_bounds() -> Iterator[None]:
    before = limits.limits()
    limits.configure(limits.Limits(git=2, index=2, registry=2, prefect=2, engine=2))
    yield
    limits.configure(before)


def fails_with(call: object, *needles: str) -> str:
    with pytest.raises(ForkflowError) as caught:
        call()  # type: ignore[operator]
    text = str(caught.value)
    for needle in needles:
        assert needle in text, text
    return text


def test_sync_with_a_git_remote_that_never_answers(tmp_path: Path, demo_workspace: Path) -> None:
    with hung_listener() as port:
        remote = f"http://127.0.0.1:{port}"
        config = tmp_path / "pipeline.toml"
        config.write_text(f'[project]\nname = "orbit"\n\n[fork]\npath = "fork"\nupstream = "{remote}/upstream.git"\n'
                          f'origin = "{remote}/origin.git"\n\n[timeouts]\ngit = 2\n', encoding="utf-8")
        result = run_doit(config, "sync", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "remote did not answer within 2 s" in output and f"{remote}/" in output
    assert "the bound is [timeouts] git" in output and "raise [timeouts] git" in output
    assert "Traceback" not in output
    assert not (tmp_path / "fork").exists()

    config.write_text(config.read_text().replace(f"{remote}/upstream.git", str(demo_workspace / "upstream.git"))
                      .replace(f"{remote}/origin.git", str(demo_workspace / "origin.git")))
    rerun = run_doit(config, "sync", env=IDENTITY)  # the remotes answer now: the same state folder syncs
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert read_json(tmp_path / ".forkflow" / "reports" / "sync.json") is not None


def test_doctor_with_every_remote_hung_names_each_and_ends(tmp_path: Path) -> None:
    """`doit doctor` asked a hung engine through the docker CLI (`docker buildx inspect`) with no bound and never
    ended; each of its checks is bounded by its kind's [timeouts] setting."""
    need(have_program("docker"), "a docker CLI")
    with hung_listener() as port, hung_unix_socket(tmp_path / "docker.sock") as socket_path:
        remote = f"http://127.0.0.1:{port}"
        config = tmp_path / "pipeline.toml"
        config.write_text(f'[project]\nname = "orbit"\n\n[fork]\npath = "fork"\nupstream = "{remote}/up.git"\n'
                          f'origin = "{remote}/origin.git"\n\n[index]\nurl = "{remote}"\n\n[images]\n'
                          f'registry = "127.0.0.1:{port}"\npython = ["3.12"]\nflavors = ["base"]\n\n'
                          f'[environments.dev]\nprefect_api_url = "{remote}/api"\nwork_pool = "ff-dev"\n\n'
                          "[timeouts]\ngit = 2\nindex = 2\nregistry = 2\nprefect = 2\nengine = 2\n", encoding="utf-8")
        result = run_doit(config, "doctor", env={"DOCKER_HOST": f"unix://{socket_path}"}, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    failed = {line[6:29].strip(): line for line in result.stdout.splitlines() if line.startswith("FAIL")}
    assert set(failed) == {"docker engine", "buildkit", "package index", "registry", "prefect (dev)", "fork upstream",
                           "fork origin"}, output
    for name in ("docker engine", "buildkit"):
        assert f"the Docker engine at unix://{socket_path}" in failed[name] and "within 2 s" in failed[name], output
    assert "(git ls-remote) did not answer within 2 s" in failed["fork origin"], output
    assert "raise [timeouts] git (now 2 s)" in output and "raise [timeouts] engine (now 2 s)" in output


def test_a_deploy_to_a_prefect_server_that_never_answers_then_completes(tmp_path: Path, prefect_api: str) -> None:
    from tests.flows_repo import flows_repo, unique_project
    from tests.flows_repo import write_config as flows_config

    flows_repo(tmp_path)
    project = unique_project()
    with hung_listener() as port:
        hung = f"http://127.0.0.1:{port}/api"
        config = flows_config(tmp_path, hung, project=project, extra="\n[timeouts]\nprefect = 2\n")
        result = run_doit(config, "deploy", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert f"the Prefect API at {hung} did not answer within 2 s" in output and "[timeouts] prefect" in output

    config.write_text(config.read_text().replace(hung, prefect_api))
    rerun = run_doit(config, "deploy")
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    report = read_json(tmp_path / ".forkflow" / "reports" / "deploy.json")
    assert report is not None and report["deployments"], report
    assert {entry["status"] for entry in report["deployments"]} == {"created"}, report


def test_git_fetch_push_and_clone_are_bounded(tmp_path: Path, small_bounds: None) -> None:
    from tasks.adapters.git import Git, init_repo

    repo = init_repo(tmp_path / "repo")
    repo.write("-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "one")
    with hung_listener() as port:
        url = f"http://127.0.0.1:{port}/x.git"
        for args in (("fetch", "--quiet", url), ("push", url, "HEAD:refs/heads/x"), ("ls-remote", url),
                     ("clone", "-q", url, str(tmp_path / "clone"))):
            fails_with(lambda args=args: repo.write(*args), f"the remote {url} (git {args[0]}) did not answer within 2 s",
                       "[timeouts] git")
    assert isinstance(repo, Git)


def test_an_index_that_never_answers(tmp_path: Path, small_bounds: None) -> None:
    from tasks.adapters import index

    wheel = tmp_path / "orbit-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not read: the index does not answer")
    with hung_listener() as port:
        url = f"http://127.0.0.1:{port}"
        for call in (lambda: index.remote_files(url, "orbit"), lambda: index.download(url, "orbit", wheel.name),
                     lambda: index.listed_files(url, ["orbit"])):
            fails_with(call, f"the package index at {url} did not answer within 2 s", "[index] url",
                       "raise [timeouts] index")


def test_a_registry_that_never_answers(small_bounds: None) -> None:
    from tasks.adapters import registry

    with hung_listener() as port:
        fails_with(lambda: registry.tagged(f"127.0.0.1:{port}", "orbit/core", ["1.0"], None),
                   f"the registry 127.0.0.1:{port} (GET /v2/orbit/core/manifests/1.0) did not answer within 2 s",
                   "[images] registry", "[timeouts] registry")
        fails_with(lambda: registry.tag_names(f"127.0.0.1:{port}", "orbit/core", None),
                   f"the registry 127.0.0.1:{port} (GET /v2/orbit/core/tags/list) did not answer within 2 s",
                   "[images] registry", "[timeouts] registry")


def test_a_prefect_api_that_never_answers(small_bounds: None) -> None:
    from tasks.adapters.prefect import PrefectApi
    from tasks.adapters.prefect_settings import connect

    with hung_listener() as port:
        url = f"http://127.0.0.1:{port}/api"
        with PrefectApi(url, connection=connect(url, environ={})) as api:
            fails_with(lambda: api.read_deployments(name_like="x"), f"the Prefect API at {url} did not answer within 2 s",
                       "[timeouts] prefect")


def test_a_docker_engine_that_never_answers(tmp_path: Path, small_bounds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.adapters import docker, engine_view

    with hung_unix_socket(tmp_path / "docker.sock") as path:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        fails_with(docker.connect, f"the Docker engine at unix://{path} (GET /_ping) did not answer within 2 s",
                   "DOCKER_HOST", "[timeouts] engine")
        fails_with(lambda: engine_view.look(["orbit:*"], "linux/amd64", {}),
                   f"the Docker engine at unix://{path} (GET /images/json) did not answer within 2 s", "DOCKER_HOST",
                   "[timeouts] engine")


def test_an_image_run_with_a_docker_engine_that_never_answers(tmp_path: Path) -> None:
    from tests.image_helpers import image_config_text, unused_registry, write_config

    config = write_config(tmp_path, image_config_text(unused_registry(), "orbit", python=("3.12",), flavors=("base",),
                                                      extra="\n[timeouts]\nengine = 2\n"))
    with hung_unix_socket(tmp_path / "docker.sock") as socket_path:
        result = run_doit(config, "image-base", env={"DOCKER_HOST": f"unix://{socket_path}"}, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert f"the Docker engine at unix://{socket_path} (GET /_ping) did not answer within 2 s" in output, output[-3000:]
    assert "raise [timeouts] engine (now 2 s)" in output and "summary:" in result.stdout


@pytest.mark.docker
def test_an_image_push_to_a_registry_that_never_answers_then_completes(tmp_path: Path, registry: Any,
                                                                       base_images: list[str]) -> None:
    import uuid

    from tests.image_helpers import TinyPackage, image_config_text, write_config, write_wheel_set

    session = uuid.uuid4().hex[:10]
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{session}"')])
    with hung_listener() as port:
        config = write_config(tmp_path, image_config_text(f"127.0.0.1:{port}", f"t{session}/hung", python=("3.12",),
                                                          flavors=("base",), extra="\n[timeouts]\nregistry = 2\n"))
        result = run_doit(config, "image", env=registry.env, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert f"the registry 127.0.0.1:{port}" in output and "did not answer within 2 s" in output, output[-3000:]
    assert "[timeouts] registry" in output and "summary:" in result.stdout, output[-3000:]

    config.write_text(config.read_text().replace(f"127.0.0.1:{port}", registry.address))
    rerun = run_doit(config, "image", env=registry.env)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, rerun.stdout[-3000:]
    report = read_json(tmp_path / ".forkflow" / "reports" / "image.json")
    assert report is not None and [(r["name"], r["status"]) for r in report["images"]] == [("3.12-base", "built")], report
    assert registry.get(f"t{session}/hung/tags/list")[0] == 200
    again = run_doit(config, "image", env=registry.env)
    assert again.returncode == 0 and "warning" not in again.stdout + again.stderr
    kept = read_json(tmp_path / ".forkflow" / "reports" / "image.json")
    assert kept is not None and kept["images"][0]["digest"] == report["images"][0]["digest"], "pushed once"
