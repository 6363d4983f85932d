"""`version_info` as `prefect deploy` sends it: forkflow's answer against Prefect's own inference, run in the
checkout as the CLI runs it (a child process, so the environment and working directory are the CLI's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks.core.errors import ConfigError
from tasks.pipeline.prefect_rules import prefect_verdict
from tasks.pipeline.version_info import VersionInfos
from tests.test_flow_formats import fixture_repo

CI = ("GITHUB_SHA", "GITHUB_REF_NAME", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "CI_COMMIT_SHA", "BITBUCKET_COMMIT",
      "BUILD_SOURCEVERSION")
GITHUB = {"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF_NAME": "main",
          "GITHUB_REPOSITORY": "team/flows", "GITHUB_SERVER_URL": "https://github.com"}


def prefects_own(repo: Path, version_type: str | None, env: dict[str, str]) -> dict[str, Any] | None:
    script = ("import asyncio, json, sys\nfrom prefect._internal.versioning import VersionType, get_inferred_version_info\n"
              "kind = VersionType(sys.argv[1]) if sys.argv[1] else None  # as RunnerDeployment's field holds it\n"
              "found = asyncio.run(get_inferred_version_info(kind))\n"
              "print(json.dumps(found.model_dump(mode='json') if found else None))\n")
    done = subprocess.run([sys.executable, "-c", script, version_type or ""], cwd=repo, env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    found: dict[str, Any] | None = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(("version_type", "ci"), [(None, False), ("vcs:git", False), (None, True), ("vcs:github", True),
                                                 ("vcs:github", False), ("prefect:simple", True), ("vcs:git", True)])
def test_version_info_is_what_prefect_infers_in_the_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version_type: str | None, ci: bool) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    env = {key: value for key, value in os.environ.items() if key not in CI}
    for key in CI:
        monkeypatch.delenv(key, raising=False)
    if ci:
        env.update(GITHUB)
        for key, value in GITHUB.items():
            monkeypatch.setenv(key, value)
    ours = VersionInfos(repo, tmp_path / "infos.json").of(version_type)
    theirs = prefects_own(repo, version_type, env)
    assert ours == theirs
    assert VersionInfos(repo, tmp_path / "infos.json").of(version_type) == theirs, "as remembered"
    if version_type is None and not ci:
        assert ours is not None and ours["type"] == "vcs:git" and ours["url"] == str(tmp_path / "origin.git")


def test_a_version_type_prefect_does_not_know_is_refused_before_any_write() -> None:
    data = {"deployments": [{"name": "x", "entrypoint": "f.py:x", "version_type": "vcs:svn"}]}
    with pytest.raises(ConfigError, match=r"deployments.0\(x\).version_type: Unknown version type: vcs:svn"):
        prefect_verdict(data, "prefect.yaml")


def test_an_inference_is_remembered_by_what_it_was_inferred_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fixture_repo(tmp_path, "prefect_project")
    file = tmp_path / "infos.json"
    for key, value in GITHUB.items():
        monkeypatch.setenv(key, value)
    first = VersionInfos(repo, file).of("vcs:github")
    assert first is not None and first["commit_sha"] == GITHUB["GITHUB_SHA"]
    saved = json.loads(file.read_text())
    (key,) = saved
    file.write_text(json.dumps({key: {"info": {**first, "branch": "as-remembered"}}}))
    assert VersionInfos(repo, file).of("vcs:github")["branch"] == "as-remembered"  # type: ignore[index]
    monkeypatch.setenv("GITHUB_SHA", "f" * 40)  # another CI run: inferred again
    assert VersionInfos(repo, file).of("vcs:github")["commit_sha"] == "f" * 40  # type: ignore[index]
    assert len(json.loads(file.read_text())) == 2
