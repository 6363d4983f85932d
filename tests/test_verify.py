"""verify on the demo: every wheel installed into a fresh venv per Python and imported; failures block publish."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_doit


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_every_wheel_installs_and_imports_on_each_python(built_demo: Path) -> None:
    result = run_doit(built_demo, "-n", "2", "verify")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((state(built_demo) / "reports" / "verify.json").read_text())
    packages = {p["name"]: p for p in report["packages"]}
    assert set(packages) == {"orbit", "orbit-client", "orbit-aws", "orbit-gcp", "orbit-slack", "orbit-flows"}
    for package in packages.values():
        assert package["ok"] and set(package["pythons"]) == {"3.11", "3.12"}, package
        assert all(r["status"] == "passed" for r in package["pythons"].values()), package
    core = packages["orbit"]["pythons"]["3.12"]
    assert core["version_command"] == "orbit version"
    assert core["imported"] >= 6, "subpackages are imported, not only the top level"
    aws = packages["orbit-aws"]["pythons"]["3.11"]
    assert aws["imported"] == 2, "orbit_aws and orbit_aws.workers"
    again = run_doit(built_demo, "--reporter", "json", "verify")
    assert again.returncode == 0, again.stderr
    results = {t["name"]: t["result"] for t in json.loads(again.stdout)["tasks"] if t["name"].startswith("verify:")}
    assert results and set(results.values()) == {"up-to-date"}, results


@pytest.mark.services  # publish starts the local package index first
def test_a_package_that_does_not_import_is_never_published(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    fork = state(demo_config) / "demo" / "fork"
    module = fork / "src" / "integrations" / "orbit-slack" / "orbit_slack" / "__init__.py"
    module.write_text(module.read_text() + "\nfrom orbit_slack import _not_shipped  # noqa\n")
    git(fork, "commit", "-q", "-am", "fix(slack): import a helper that is not there")
    try:
        result = run_doit(demo_config, "publish")
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "orbit-slack failed verification" in output and "orbit_slack" in output
        assert "Traceback" not in output.split("failed verification")[0]
        packages = state(demo_config) / "services" / "index" / "packages"
        assert not packages.exists() or list(packages.iterdir()) == [], "nothing is uploaded"
        saved = json.loads((state(demo_config) / "verify" / "orbit-slack.json").read_text())
        assert saved["ok"] is False and saved["pythons"]["3.12"]["status"] == "failed"
    finally:
        run_doit(demo_config, "services-stop")
