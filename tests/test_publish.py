"""publish against a real pypiserver with upload auth: idempotent, safe, retried, checked."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import DEMO_VERSIONS, free_port, kill_after_line, run_doit


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def index_packages(config: Path) -> Path:
    return state(config) / "services" / "index" / "packages"


def publish_report(config: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((state(config) / "reports" / "publish.json").read_text())
    return loaded


def statuses(config: Path) -> dict[str, str]:
    return {f["name"]: f["status"] for f in publish_report(config)["files"]}


def publish(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    (state(config) / "reports" / "publish.json").unlink(missing_ok=True)
    return run_doit(config, "publish", *args, env=env)


def test_uploads_installs_then_skips(index: Path) -> None:
    first = publish(index)
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(statuses(index).values()) == {"uploaded"} and len(statuses(index)) == 13
    assert sorted(p.name for p in index_packages(index).iterdir()) == sorted(statuses(index))
    checked = {c["package"]: c for c in publish_report(index)["install_check"]}
    assert set(checked) == {"orbit-pins", "orbit", "orbit-aws", "orbit-client"} and all(c["ok"] for c in checked.values())
    assert checked["orbit"]["installed"] == DEMO_VERSIONS["orbit"]

    again = run_doit(index, "publish")
    assert again.returncode == 0 and "-- publish" in again.stdout, "nothing changed: doit reports up to date"
    rerun = publish(index)
    assert rerun.returncode == 0, rerun.stderr
    assert set(statuses(index).values()) == {"up-to-date"}
    assert "0 uploaded, 13 already there" in rerun.stdout


def test_partial_upload_is_completed(index: Path) -> None:
    assert publish(index).returncode == 0
    missing = sorted(index_packages(index).iterdir())[:3]
    for file in missing:
        file.unlink()
    rerun = publish(index)
    assert rerun.returncode == 0, rerun.stderr
    uploaded = {name for name, status in statuses(index).items() if status == "uploaded"}
    assert uploaded == {file.name for file in missing}


def commit_core_fix(fork: Path, message: str) -> None:
    source = fork / "src" / "orbit" / "greeting.py"
    source.write_text(source.read_text() + f"\n# {message}\n")
    git(fork, "commit", "-q", "-am", message)


def test_a_committed_fix_ships_as_new_versions_of_what_it_touched(index: Path) -> None:
    assert publish(index).returncode == 0
    before = {p.name: p.read_bytes() for p in index_packages(index).iterdir()}
    fork = state(index) / "demo" / "fork"
    head = git(fork, "rev-parse", "HEAD")
    try:
        commit_core_fix(fork, "fix(core): a fork fix, no tag")
        shipped = publish(index)
        assert shipped.returncode == 0, shipped.stdout[-3000:] + shipped.stderr[-3000:]
        after = {p.name: p.read_bytes() for p in index_packages(index).iterdir()}
        assert all(after[name] == data for name, data in before.items()), "no file was replaced or removed"
        distance = git(fork, "rev-list", "--count", "1.0.1..HEAD")
        version = f"1.0.1+orbit.{distance}.g{git(fork, 'rev-parse', '--short=7', 'HEAD')}"
        assert set(after) - set(before) == {f"orbit-{version}-py3-none-any.whl", f"orbit-{version}.tar.gz",
                                            f"orbit_client-{version}-py3-none-any.whl", f"orbit_client-{version}.tar.gz",
                                            f"orbit_pins-{version}-py3-none-any.whl"}
    finally:
        git(fork, "reset", "-q", "--hard", head)


def test_scheme_tag_refuses_same_name_other_content_and_says_so_at_the_start(index: Path) -> None:
    original = index.read_text()
    index.write_text(original.replace("allow_prerelease = false", 'allow_prerelease = false\nscheme = "tag"'))
    fork = state(index) / "demo" / "fork"
    head = git(fork, "rev-parse", "HEAD")
    try:
        assert publish(index).returncode == 0
        on_index = (index_packages(index) / "orbit-1.0.1-py3-none-any.whl").read_bytes()
        commit_core_fix(fork, "fix: change core without a new tag")
        refused = run_doit(index, "publish")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert "orbit: commit" in refused.stderr and "the index already has 1.0.1" in refused.stderr
        assert re.search(r"^version +ran", refused.stdout, re.M), "said by the version stage, before anything is built"
        assert "orbit-1.0.1-py3-none-any.whl" in output and "never overwritten" in output
        assert output.count("sha256") >= 2
        assert (index_packages(index) / "orbit-1.0.1-py3-none-any.whl").read_bytes() == on_index
    finally:
        git(fork, "reset", "-q", "--hard", head)
        restored = run_doit(index, "publish")
        index.write_text(original)
    assert restored.returncode == 0, "a rebuild of the same inputs gives the same bytes, so nothing conflicts"


def test_a_fallback_version_is_never_published(index: Path) -> None:
    fork = state(index) / "demo" / "fork"
    tags = [line.split() for line in git(fork, "show-ref", "--tags").splitlines() if "/orbit-slack-" in line]
    try:
        git(fork, "tag", "-d", *(name.removeprefix("refs/tags/") for _, name in tags))
        refused = publish(index, env={"CI": "false"})  # in CI the wheel stage refuses first (tests/test_wheel.py)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "Traceback" not in output, output[-3000:]
        assert "not publishing: these versions do not name their content" in output, output[-3000:]
        assert "orbit-slack 0.0.0: no version tag found (the fallback version)" in output
        assert "git fetch --tags --unshallow origin" in output and "doit sync" in output
        assert not list(index_packages(index).iterdir()), "nothing was uploaded"
    finally:
        for sha, name in tags:
            git(fork, "update-ref", name, sha)
    assert publish(index).returncode == 0


def test_uncommitted_changes_are_never_published(index: Path) -> None:
    source = state(index) / "demo" / "fork" / "src" / "integrations" / "orbit-slack" / "orbit_slack" / "__init__.py"
    original = source.read_text()
    try:
        source.write_text(original + "\n# work in progress\n")
        refused = publish(index)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert "orbit-slack built from uncommitted changes" in output and "commit" in output
        assert list(index_packages(index).iterdir()) == [], "nothing is uploaded"
    finally:
        source.write_text(original)
    assert publish(index).returncode == 0


def test_dry_run_uploads_nothing(index: Path) -> None:
    dry = publish(index, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would upload") == 13
    assert list(index_packages(index).iterdir()) == []
    real = run_doit(index, "publish")
    assert real.returncode == 0 and len(list(index_packages(index).iterdir())) == 13


def test_wrong_password_is_clear_and_never_printed(index: Path) -> None:
    secret = "Wrong-Secret-7f3a9c"
    result = publish(index, env={"TWINE_USERNAME": "forkflow", "TWINE_PASSWORD": secret})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refused the credentials" in output and "TWINE_PASSWORD" in output
    assert secret not in output
    assert list(index_packages(index).iterdir()) == []


class FlakyProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the index; the first upload reaches it but the client gets a 500."""

    target = ""
    failures_left = 1

    def do_GET(self) -> None:
        self.forward()

    def do_POST(self) -> None:
        self.forward()

    def do_HEAD(self) -> None:
        self.forward()

    def forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        response = httpx.request(self.command, self.target + self.path, content=body, headers=headers, timeout=30)
        status, content = response.status_code, response.content
        if self.command == "POST" and FlakyProxy.failures_left > 0:
            FlakyProxy.failures_left -= 1
            status, content = 500, b"injected failure"
        self.send_response(status)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Content-Type", response.headers.get("content-type", "text/plain"))
        if "location" in response.headers:
            self.send_header("Location", response.headers["location"])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        return


def test_500_is_retried_after_rechecking_the_index(index: Path) -> None:
    import tomllib

    port = tomllib.loads(index.read_text())["services"]["index"]["port"]
    FlakyProxy.target, FlakyProxy.failures_left = f"http://127.0.0.1:{port}", 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxied = index.parent / "proxied.toml"
    proxied.write_text(index.read_text().replace(f'url = "http://127.0.0.1:{port}"',
                                                 f'url = "http://127.0.0.1:{server.server_address[1]}"'))
    creds = json.loads((state(index) / "services" / "index" / "credentials.json").read_text())
    try:
        result = publish(proxied, env={"TWINE_USERNAME": creds["username"], "TWINE_PASSWORD": creds["password"]})
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert FlakyProxy.failures_left == 0, "the failure was injected"
    assert "landed in an earlier attempt" in result.stdout or "on the index after all" in result.stdout
    assert set(statuses(proxied).values()) == {"uploaded"}
    assert len(list(index_packages(index).iterdir())) == 13


def test_killed_upload_is_completed_by_a_rerun(index: Path) -> None:
    (state(index) / "reports" / "publish.json").unlink(missing_ok=True)
    kill_after_line(index, "uploaded ", "publish")
    landed = {p.name for p in index_packages(index).iterdir()}
    assert len(landed) >= 1, "the run was killed after its first upload"
    rerun = run_doit(index, "publish")
    assert rerun.returncode == 0 and "Traceback" not in rerun.stdout + rerun.stderr, rerun.stdout + rerun.stderr
    files = statuses(index)
    assert len(list(index_packages(index).iterdir())) == len(files) == 13
    assert {name for name, status in files.items() if status == "up-to-date"} == landed
    local = {f["name"]: f["sha256"] for f in publish_report(index)["files"]}
    import hashlib

    for file in index_packages(index).iterdir():
        assert hashlib.sha256(file.read_bytes()).hexdigest() == local[file.name]


def impostor_wheel(folder: Path) -> Path:
    """A wheel named like the fork's core, same version, other content: what a public index may hold."""
    project = folder / "impostor"
    (project / "orbit").mkdir(parents=True)
    (project / "orbit" / "__init__.py").write_text("IMPOSTOR = True\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "orbit"\nversion = "1.0.1"\ndescription = "not the fork\'s orbit"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["orbit"]\n')
    out = folder / "upstream-packages"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(project)],
                   check=True, capture_output=True)
    return out


@pytest.fixture
def upstream_index(tmp_path: Path) -> Iterator[str]:
    """A real pypiserver holding an impostor orbit 1.0.1, falling back to PyPI for everything else."""
    packages = impostor_wheel(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pypiserver", "run", "-p", str(port), "-i", "127.0.0.1", "-a", ".",
                             "-P", ".", "--fallback-url", "https://pypi.org/simple/", str(packages)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "orbit/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def test_fork_packages_never_come_from_upstream(index: Path, upstream_index: str, tmp_path: Path) -> None:
    config = index.parent / "pipeline-upstream.toml"
    config.write_text(index.read_text().replace("[index]\n", f'[index]\nupstream = "{upstream_index}"\n'))
    run_doit(index, "services-stop:index")  # the local index now falls back to the upstream holding the impostor
    result = publish(config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(statuses(config).values()) == {"uploaded"}, "upstream's orbit 1.0.1 is not mistaken for the index's"
    checked = {c["package"]: c for c in publish_report(config)["install_check"]}
    assert checked["orbit"]["installed"] == DEMO_VERSIONS["orbit"] and checked["orbit"]["same_metadata"] is True
    # the impostor is really there: an installer that asked upstream first would have taken it
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
    subprocess.run(["uv", "pip", "install", "-q", "--no-cache", "--python", str(venv / "bin" / "python"),
                    "--index", upstream_index, "--default-index", f"{index_url(index)}/simple/", "orbit==1.0.1"],
                   check=True, capture_output=True)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import orbit; print(getattr(orbit, 'IMPOSTOR', False))"], check=False,
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "True"
    run_doit(config, "services-stop:index")


def index_url(config: Path) -> str:
    import tomllib

    url: str = tomllib.loads(config.read_text())["index"]["url"]
    return url.rstrip("/")


def test_a_failed_publish_replaces_the_last_green_report(index: Path) -> None:
    assert publish(index).returncode == 0
    removed = sorted(index_packages(index).iterdir())[:2]
    for file in removed:
        file.unlink()
    secret = "Wrong-Secret-51d2e8"
    run_doit(index, "forget", "publish")
    failed = run_doit(index, "publish", env={"TWINE_USERNAME": "forkflow", "TWINE_PASSWORD": secret})
    assert failed.returncode == 1, failed.stdout + failed.stderr
    report = publish_report(index)
    assert report["status"] == "failed" and "install_check" not in report
    assert secret not in json.dumps(report) and report["error"]
    names = {file.name for file in removed}
    assert {n for n, s in statuses(index).items() if s == "failed"} == names, "the files it could not upload"
    assert {s for n, s in statuses(index).items() if n not in names} == {"up-to-date"}
    summary = (state(index) / "reports" / "summary.md").read_text()
    assert "`publish.json`: **FAILED**" in summary

    again = run_doit(index, "publish")
    assert again.returncode == 0, again.stdout + again.stderr
    assert publish_report(index)["status"] == "ok"
    assert {n for n, s in statuses(index).items() if s == "uploaded"} == names


def test_a_no_op_publish_asks_the_index_once_and_a_file_deleted_there_is_uploaded_again(index: Path) -> None:
    import tomllib

    from tests.counting_proxy import CountingProxy

    port = tomllib.loads(index.read_text())["services"]["index"]["port"]
    creds = json.loads((state(index) / "services" / "index" / "credentials.json").read_text())
    env = {"TWINE_USERNAME": creds["username"], "TWINE_PASSWORD": creds["password"]}
    with CountingProxy(f"127.0.0.1:{port}") as proxy:
        counted = index.parent / "counted.toml"
        counted.write_text(index.read_text().replace(f'url = "http://127.0.0.1:{port}"',
                                                     f'url = "http://{proxy.address}"'))
        first = publish(counted, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        proxy.reset()

        noop = run_doit(counted, "publish", env=env)

        assert noop.returncode == 0 and "-- publish" in noop.stdout, noop.stdout + noop.stderr
        assert proxy.seen() == [("GET", "/packages/")], "one question to the index: pypiserver's list of its files"

        gone = sorted(index_packages(index).iterdir())[0]
        gone.unlink()
        again = run_doit(counted, "publish", env=env)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "no longer on the index" in again.stdout and gone.name in again.stdout
    assert {name for name, status in statuses(counted).items() if status == "uploaded"} == {gone.name}
    assert gone.is_file(), "uploaded again"
