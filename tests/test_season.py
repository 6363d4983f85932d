"""A season of a fork on the embedded demo, week by week, against the real index, registry, Prefect server
and Docker engine: an upstream release, a fork fix, a fork feature, a hotfix after a conflict resolved by
hand, a change to one integration only, and a CI runner's fresh clone of origin. After each week `doit`
ships everything, and nothing shipped before is ever replaced or lost."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import docker_reachable, need, run_doit, runner_config

pytestmark = [pytest.mark.docker, pytest.mark.services, pytest.mark.slow]

IDENTITY = {"GIT_AUTHOR_NAME": "Season", "GIT_AUTHOR_EMAIL": "season@example.org",
            "GIT_COMMITTER_NAME": "Season", "GIT_COMMITTER_EMAIL": "season@example.org"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **IDENTITY}, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


class Season:
    """The demo workspace, the services' addresses and credentials, and what was shipped so far."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.state = config.parent / ".forkflow"
        self.fork = self.state / "demo" / "fork"
        self.upstream_work = config.parent / "upstream-work"
        self.files: dict[str, str] = {}  # every file ever on the index -> its sha256
        self.images: dict[str, str] = {}  # every full image tag ever pushed -> its digest
        self.core_builds: list[str] = []  # the core's version, week by week

    def report(self, stage: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.state / "reports" / f"{stage}.json").read_text())
        return loaded

    def ship(self, week: str) -> subprocess.CompletedProcess[str]:
        result = run_doit(self.config)
        assert result.returncode == 0, f"{week}: " + result.stdout[-4000:] + result.stderr[-4000:]
        assert "Traceback" not in result.stdout + result.stderr, week
        self.check_nothing_shipped_changed(week)
        self.check_newest_core_installs(week)
        return result

    def upstream_commit(self, path: str, text: str, message: str, tag: str | None = None) -> None:
        if not self.upstream_work.exists():
            git(self.config.parent, "clone", "-q", str(self.state / "demo" / "upstream.git"), str(self.upstream_work))
        git(self.upstream_work, "pull", "-q", "--ff-only")
        append(self.upstream_work / path, text)
        git(self.upstream_work, "commit", "-q", "-am", message)
        if tag:
            git(self.upstream_work, "tag", tag)
        git(self.upstream_work, "push", "-q", "--tags", "origin", "HEAD:main")

    def fork_commit(self, path: str, text: str, message: str) -> None:
        git(self.fork, "checkout", "-q", "release")
        append(self.fork / path, text)
        git(self.fork, "add", path)
        git(self.fork, "commit", "-q", "-m", message)

    def versions(self) -> dict[str, str]:
        return {p["name"]: p["version"] for p in self.report("wheel")["packages"]}

    def index_files(self) -> dict[str, str]:
        folder = self.state / "services" / "index" / "packages"
        return {file.name: hashlib.sha256(file.read_bytes()).hexdigest() for file in folder.iterdir()}

    def check_nothing_shipped_changed(self, week: str) -> None:
        now = self.index_files()
        for name, digest in self.files.items():
            assert now.get(name) == digest, f"{week}: {name} was replaced or removed on the index"
        self.files.update(now)
        registry = Registry(self.state)
        for tag, digest in self.images.items():
            assert registry.digest(tag) == digest, f"{week}: image tag {tag} moved"
        for image in self.report("image")["images"]:
            full = image["tags"][0]
            assert image["status"] in ("built", "up-to-date"), f"{week}: {image}"
            found = registry.digest(full)
            assert found is not None, f"{week}: {full} is not in the registry"
            assert self.images.setdefault(full, found) == found
            assert full.startswith(image["version"].replace("+", "-") + "-python"), f"{week}: {full} names its version"

    def check_newest_core_installs(self, week: str) -> None:
        """`pip install orbit` from the index takes this week's build; every earlier week's still installs."""
        version = self.versions()["orbit"]
        assert pip_download(self.index_url(), "orbit", self.config.parent / "pip") == version, week
        if not self.core_builds or self.core_builds[-1] != version:
            self.core_builds.append(version)
        for earlier in self.core_builds[:-1]:
            assert pip_download(self.index_url(), f"orbit=={earlier}", self.config.parent / "pip") == earlier, week

    def index_url(self) -> str:
        port = re.search(r"\[services\.index\]\nport = (\d+)", self.config.read_text())
        assert port
        return f"http://127.0.0.1:{port.group(1)}/simple/"


class Registry:
    """The local registry, read with the credentials the services stage made."""

    def __init__(self, state: Path) -> None:
        creds = json.loads((state / "services" / "registry" / "credentials.json").read_text())
        self.auth = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
        image = json.loads((state / "reports" / "image.json").read_text())["images"][0]
        self.repository = image["repository"]

    def digest(self, tag: str) -> str | None:
        host, path = self.repository.split("/", 1)
        request = urllib.request.Request(f"http://{host}/v2/{path}/manifests/{tag}", method="HEAD")
        request.add_header("Authorization", f"Basic {self.auth}")
        request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json, "
                                     "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                digest: str | None = response.headers.get("Docker-Content-Digest")
                return digest
        except urllib.error.HTTPError:
            return None


def append(file: Path, text: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text((file.read_text() if file.exists() else "") + text)


def pip_download(index: str, requirement: str, folder: Path) -> str:
    """The version pip takes for `requirement` from the index alone."""
    for old in folder.glob("*") if folder.exists() else ():
        old.unlink()
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "--index-url", index, "-d", str(folder), requirement],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    wheel = next(folder.glob("*.whl"))
    return wheel.name.split("-")[1]


def season_config(demo_config: Path) -> Path:
    """The demo config, small: one Python, one flavor."""
    text = demo_config.read_text()
    text = text.replace('python = ["3.11", "3.12"]', 'python = ["3.12"]').replace(
        'flavors = ["base", "kubernetes"]', 'flavors = ["base"]').replace(  # its image holds the integration too
        'extra_packages = { kubernetes = ["orbit-aws"] }', 'extra_packages = { base = ["orbit-aws"] }')
    demo_config.write_text(text)
    return demo_config


def push_hint(output: str) -> str:
    """The `git push ...` line of sync's conflict advice."""
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("git push "))


def test_a_season_ships_every_week_and_never_reuses_a_version(demo_config: Path, tmp_path: Path) -> None:
    need(docker_reachable(), "a Docker engine")
    season = Season(season_config(demo_config))
    try:
        play(season, tmp_path)
    finally:
        run_doit(season.config, "services-stop")


def play(season: Season, tmp_path: Path) -> None:
    season.ship("week 0: the first release")
    first = season.versions()

    season.upstream_commit("src/orbit/greeting.py", "\n\ndef wave() -> str:\n    return 'o/'\n",
                           "feat(core): wave", tag="1.0.2")
    season.ship("week 1: upstream releases 1.0.2")
    week1 = season.versions()
    assert week1["orbit"].startswith("1.0.2+orbit."), "the fork's own core commit marks upstream's new release"
    assert git(season.fork, "describe", "--tags", "--match", "1.0.2", "--abbrev=0", "release") == "1.0.2"

    season.fork_commit("src/orbit/greeting.py", "\n# fork fix: week 2\n", "fix(core): fork fix")
    season.ship("week 2: a fork fix")
    week2 = season.versions()
    changed = {name for name in week2 if week2[name] != week1[name]}
    assert changed == {"orbit", "orbit-client"}, "exactly the packages the fix touched"

    season.fork_commit("src/integrations/orbit-aws/orbit_aws/feature.py", "FEATURE = True\n", "feat(aws): a feature")
    season.ship("week 3: a fork feature")
    week3 = season.versions()
    assert {name for name in week3 if week3[name] != week2[name]} == {"orbit-aws"}
    images = season.report("image")["images"]
    assert all(image["version"] != week2["orbit"] for image in images), "the image holding it has a new version"

    season.upstream_commit("src/orbit/greeting.py", "\n# upstream: week 4\n", "fix(core): upstream touches the end")
    conflict = run_doit(season.config)
    assert conflict.returncode != 0 and "stopped at a conflict" in conflict.stdout + conflict.stderr
    resolve_by_hand(season, push_hint(conflict.stdout + conflict.stderr))
    season.fork_commit("src/orbit/_fork.py", "\nHOTFIX = True\n", "fix(core): hotfix")
    season.ship("week 4: a hotfix after a conflict resolved by hand")
    week4 = season.versions()
    assert week4["orbit"] != week3["orbit"] and week4["orbit-slack"] == week3["orbit-slack"]

    season.fork_commit("src/integrations/orbit-slack/orbit_slack/__init__.py", "\n# slack only\n", "fix(slack): tweak")
    season.ship("week 5: one integration only")
    week5 = season.versions()
    assert {name for name in week5 if week5[name] != week4[name]} == {"orbit-slack"}

    runner = runner_config(season.config, tmp_path / "runner")
    built = run_doit(runner, "-n", "2", "wheel")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    theirs = json.loads((runner.parent / ".forkflow" / "reports" / "wheel.json").read_text())
    assert {p["name"]: p["version"] for p in theirs["packages"]} == week5, "a fresh clone versions as the working clone"
    for package in theirs["packages"]:
        for file in package["files"]:
            assert season.files[file["name"]] == file["sha256"], f"the runner's {file['name']} is the published one"
    assert first["orbit"] in season.core_builds


def resolve_by_hand(season: Season, push: str) -> None:
    """What a maintainer does after sync's conflict message: rebase, keep both sides, continue, push."""
    fork = season.fork
    git(fork, "checkout", "-q", "release")
    rebase = subprocess.run(["git", "rebase", "upstream/main"], cwd=fork, env={**os.environ, **IDENTITY},
                            capture_output=True, text=True, check=False)
    assert rebase.returncode != 0, "the rebase stops at the conflict"
    greeting = fork / "src" / "orbit" / "greeting.py"
    text = greeting.read_text()
    resolved = re.sub(r"<<<<<<< [^\n]*\n(.*?)=======\n(.*?)>>>>>>> [^\n]*\n", r"\1\2", text, flags=re.S)
    greeting.write_text(resolved)
    git(fork, "add", "src/orbit/greeting.py")
    done = subprocess.run(["git", "-c", "core.editor=true", "rebase", "--continue"], cwd=fork,
                          env={**os.environ, **IDENTITY, "GIT_EDITOR": "true"}, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    pushed = subprocess.run(push, shell=True, cwd=fork, env={**os.environ, **IDENTITY}, capture_output=True, text=True,
                            check=False)
    assert pushed.returncode == 0, f"{push}: {pushed.stderr}"
