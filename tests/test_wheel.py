"""version + wheel on the real demo fork: versions from tags, real builds, incrementality.

The session's `built_demo` was built once with `doit -n 2 wheel`; each test
that changes the checkout restores it.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DEMO_VERSIONS, run_doit, runner_config


def state(config: Path) -> Path:
    return config.parent / ".forkflow"


def checkout(config: Path) -> Path:
    return state(config) / "demo" / "fork"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def report(config: Path, stage: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((state(config) / "reports" / f"{stage}.json").read_text())
    return loaded


def executed(config: Path, *targets: str) -> dict[str, str]:
    """Run doit with the JSON reporter; task name -> result ('success', 'up-to-date', ...)."""
    result = run_doit(config, "--reporter", "json", *targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    return {task["name"]: task["result"] for task in data["tasks"]}


def rebuilt(results: dict[str, str]) -> set[str]:
    return {name.split(":", 1)[1] for name, status in results.items()
            if name.startswith("wheel:") and name != "wheel:report" and status == "success"}


def test_versions_come_from_clean_tags_marked_by_the_newest_change(built_demo: Path) -> None:
    versions = {p["name"]: p for p in report(built_demo, "version")["packages"]}
    fork = checkout(built_demo)
    assert versions["orbit"]["version"] == DEMO_VERSIONS["orbit"], "1.1.0.dev1 is newer but not clean"
    assert versions["orbit"]["tag"] == "1.0.1" and versions["orbit"]["commits_since"] > 0
    assert versions["orbit"]["change"]["commit"] == git(fork, "log", "-1", "--format=%H", "--", "src/orbit/_fork.py")
    assert versions["orbit-client"]["version"] == versions["orbit"]["version"], "the client carries the core's version"
    assert versions["orbit-aws"]["version"] == DEMO_VERSIONS["orbit-aws"], "the fork's endpoint commit marks it"
    assert versions["orbit-gcp"]["version"] == DEMO_VERSIONS["orbit-gcp"], "0.2.0rc1 is a pre-release"
    assert versions["orbit-slack"]["version"] == "0.1.0", "unchanged since its tag: the tag's clean version"
    assert versions["orbit-slack"]["source"] == "tag" and versions["orbit"]["source"] == "commit"
    assert versions["orbit-flows"]["version"] == DEMO_VERSIONS["orbit-flows"], "a static version is marked too"
    assert versions["orbit-flows"]["next_version"] == "0.2.0", "a feat(flows) commit means a minor bump"


def test_every_package_is_built_with_its_version(built_demo: Path) -> None:
    packages = {p["name"]: p for p in report(built_demo, "wheel")["packages"]}
    assert set(packages) == {"orbit", "orbit-client", "orbit-aws", "orbit-gcp", "orbit-slack", "orbit-flows"}
    for package in packages.values():
        names = sorted(f["name"] for f in package["files"])
        assert len(names) == 2 and any(n.endswith(".whl") for n in names) and any(n.endswith(".tar.gz") for n in names)
        for file in package["files"]:
            assert f"-{package['version']}" in file["name"], file["name"]
            assert Path(file["path"]).exists() and len(file["sha256"]) == 64
    assert all(package["version"] == DEMO_VERSIONS[name] for name, package in packages.items())
    assert ".dirty" not in json.dumps(packages), "no dirty versions"


def test_every_wheel_has_an_sbom_from_its_metadata(built_demo: Path) -> None:
    from tasks.adapters.build import wheel_info

    for package in report(built_demo, "wheel")["packages"]:
        wheel = next(f for f in package["files"] if f["name"].endswith(".whl"))
        document = json.loads(Path(wheel["sbom"]).read_text())
        assert Path(wheel["sbom"]).parent == Path(wheel["path"]).parent, "next to the wheel"
        subject = document["metadata"]["component"]
        assert (subject["name"], subject["version"]) == (package["name"], package["version"])
        assert subject["hashes"] == [{"alg": "SHA-256", "content": wheel["sha256"]}]
        assert subject["purl"] == f"pkg:pypi/{package['name']}@{package['version']}"
        declared = [p["value"] for p in subject["properties"] if p["name"] == "org.forkflow:requires-dist"]
        assert declared == list(wheel_info(Path(wheel["path"])).requires), package["name"]


def test_client_is_trimmed_and_checkout_untouched(built_demo: Path) -> None:
    client = next(p for p in report(built_demo, "wheel")["packages"] if p["name"] == "orbit-client")
    wheel = next(Path(f["path"]) for f in client["files"] if f["name"].endswith(".whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "orbit/client/__init__.py" in names and "orbit/greeting.py" in names
    assert not any(n.startswith(("orbit/cli/", "orbit/server/models/", "orbit/testing/")) for n in names)
    assert "orbit/server/__init__.py" not in names, "build_client.sh deletes server/__init__.py"
    assert "orbit/server/api/__init__.py" in names, "build_client.sh keeps server/api, as Prefect's does"
    assert git(checkout(built_demo), "status", "--porcelain", "--ignored") == "", "builds never touch the checkout"


def test_second_run_builds_nothing(built_demo: Path) -> None:
    results = executed(built_demo, "wheel")
    assert rebuilt(results) == set()
    assert results["version"] == "up-to-date"
    assert all(status == "up-to-date" for name, status in results.items() if name.startswith("wheel:")), results


def test_a_fresh_clone_of_origin_builds_the_same_bytes(demo_config: Path, tmp_path: Path) -> None:
    """Each package is built from the commit its version names, so a runner's clone gives the same files as a
    working clone that built most of them before its HEAD moved."""
    assert run_doit(demo_config, "-n", "2", "wheel").returncode == 0
    fork = checkout(demo_config)
    cleanup = fork / "flows" / "orbit_flows" / "cleanup.py"
    cleanup.write_text(cleanup.read_text() + "\n# a later commit that touches the flows project only\n")
    git(fork, "commit", "-q", "-am", "fix(flows): comment")
    git(fork, "push", "-q", "origin", "release")
    assert rebuilt(executed(demo_config, "wheel")) == {"orbit-flows"}
    config = runner_config(demo_config, tmp_path / "runner")
    result = run_doit(config, "-n", "2", "wheel")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ours = {f["name"]: f["sha256"] for p in report(demo_config, "wheel")["packages"] for f in p["files"]}
    theirs = {f["name"]: f["sha256"] for p in report(config, "wheel")["packages"] for f in p["files"]}
    assert theirs == ours


@pytest.mark.parametrize("how", ["no tags", "shallow"])
def test_a_runner_clone_without_tags_or_history_does_not_build_in_ci(demo_config: Path, tmp_path: Path, how: str) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    config = runner_config(demo_config, tmp_path / "runner", *(["--depth", "1"] if how == "shallow" else []))
    clone = tmp_path / "runner" / "clone"
    if how == "no tags":
        for tag in git(clone, "tag").split():
            git(clone, "tag", "-d", tag)
    refused = run_doit(config, "wheel:orbit", env={"CI": "true"})
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in output
    why = "no version tag found (the fallback version)" if how == "no tags" else "versioned in a shallow clone"
    assert "not building in CI: orbit 0.0.0: " + why in output
    assert "fetch-depth: 0" in output and "git fetch --tags --unshallow origin" in output
    built = run_doit(config, "wheel:orbit", env={"CI": "false"})
    assert built.returncode == 0, "outside CI it builds, for local work"
    stamp = json.loads((config.parent / ".forkflow" / "dist" / "orbit" / "build.json").read_text())
    assert (stamp["version_source"], stamp["shallow"]) == ("fallback", how == "shallow")


def test_touching_one_integration_rebuilds_only_it(built_demo: Path) -> None:
    file = checkout(built_demo) / "src/integrations/orbit-gcp/orbit_gcp/__init__.py"
    original = file.read_text()
    try:
        file.write_text(original + "\n# uncommitted edit\n")
        assert rebuilt(executed(built_demo, "wheel")) == {"orbit-gcp"}
        gcp = next(p for p in report(built_demo, "wheel")["packages"] if p["name"] == "orbit-gcp")
        assert gcp["status"] == "built" and gcp["version"] == DEMO_VERSIONS["orbit-gcp"], "uncommitted edits keep HEAD's version"
        assert gcp["dirty"] is True, "a wheel built from uncommitted edits is marked as such"
        others = [p for p in report(built_demo, "wheel")["packages"] if p["name"] != "orbit-gcp"]
        assert not any(p["dirty"] for p in others), "other packages still come from the commit"
    finally:
        file.write_text(original)
    assert rebuilt(executed(built_demo, "wheel")) == {"orbit-gcp"}
    assert rebuilt(executed(built_demo, "wheel")) == set()


def test_new_core_tag_rebuilds_core_and_client_only(built_demo: Path) -> None:
    repo = checkout(built_demo)
    git(repo, "tag", "1.0.2")
    try:
        results = executed(built_demo, "wheel")
        assert rebuilt(results) == {"orbit", "orbit-client"}
        versions = {p["name"]: p["version"] for p in report(built_demo, "wheel")["packages"]}
        assert versions["orbit"] == versions["orbit-client"] == "1.0.2"
    finally:
        git(repo, "tag", "-d", "1.0.2")
    assert rebuilt(executed(built_demo, "wheel")) == {"orbit", "orbit-client"}


def test_version_print_and_prerelease_option(built_demo: Path, tmp_path: Path) -> None:
    printed = run_doit(built_demo, "version", "--print")
    assert printed.returncode == 0 and "orbit-flows" in printed.stdout and "0.2.0" in printed.stdout
    config = built_demo.read_text().replace("allow_prerelease = false", "allow_prerelease = true")
    from tasks.pipeline.settings import load_settings
    from tasks.stages.version import compute_versions

    other = built_demo.parent / "prerelease.toml"
    other.write_text(config)
    versions = {e["name"]: e["version"] for e in compute_versions(load_settings(other))}
    assert versions["orbit"].startswith("1.1.0.dev1+orbit.") and versions["orbit-gcp"] == "0.2.0rc1"


def test_check_version_guards_changed_packages(built_demo: Path) -> None:
    assert run_doit(built_demo, "check-version").returncode == 0, "scheme commit: every change has its own version"
    built_demo.write_text(built_demo.read_text().replace("allow_prerelease = false", 'allow_prerelease = false\nscheme = "tag"'))
    failed = run_doit(built_demo, "check-version")
    assert failed.returncode != 0
    for name in ("orbit:", "orbit-aws:", "orbit-flows:"):
        assert name in failed.stdout + failed.stderr
    assert "orbit-gcp:" not in failed.stdout + failed.stderr, "orbit-gcp did not change on release"
    repo = checkout(built_demo)
    pyproject = repo / "flows" / "pyproject.toml"
    original = pyproject.read_text()
    try:
        git(repo, "tag", "1.0.2")
        git(repo, "tag", "orbit-aws-0.2.1")
        pyproject.write_text(original.replace('version = "0.1.0"', 'version = "0.2.0"'))
        passed = run_doit(built_demo, "check-version")
        assert passed.returncode == 0, passed.stdout + passed.stderr
    finally:
        pyproject.write_text(original)
        git(repo, "tag", "-d", "1.0.2", "orbit-aws-0.2.1")
        built_demo.write_text(built_demo.read_text().replace('\nscheme = "tag"', ""))
    executed(built_demo, "wheel")


def test_real_tree_cases_build_like_upstream(built_demo: Path) -> None:
    """The demo carries what Prefect's tree has: a submodule, a versioningit write step,
    an integration whose subpackages only setuptools_scm's git file finder finds."""
    fork = checkout(built_demo)
    assert git(fork, "ls-files", "-s", "compat-tests").startswith("160000 "), "compat-tests is a gitlink"
    packages = {p["name"]: p for p in report(built_demo, "wheel")["packages"]}
    core = next(Path(f["path"]) for f in packages["orbit"]["files"] if f["name"].endswith(".whl"))
    build_info = zipfile.ZipFile(core).read("orbit/_build_info.py").decode()
    assert f'__version__ = "{DEMO_VERSIONS["orbit"]}"' in build_info
    named = git(fork, "log", "-1", "--format=%H", "--", "src/orbit")
    assert named != git(fork, "rev-parse", "HEAD"), "the demo's last commit does not touch the core"
    assert f'__git_commit__ = "{named}"' in build_info, "the commit the version names, from the write step"
    assert packages["orbit"]["commit"] == named and packages["orbit"]["dirty"] is False
    aws = next(Path(f["path"]) for f in packages["orbit-aws"]["files"] if f["name"].endswith(".whl"))
    names = zipfile.ZipFile(aws).namelist()
    assert {"orbit_aws/workers/__init__.py", "orbit_aws/workers/ecs.py", "orbit_aws/templates/task.json"} <= set(names)


def test_a_wheel_missing_tracked_modules_is_refused(demo_config: Path) -> None:
    assert run_doit(demo_config, "checkout").returncode == 0
    fork = checkout(demo_config)
    pyproject = fork / "flows" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('packages = ["orbit_flows"]',
                                                       'packages = ["orbit_flows"]\nexclude = ["orbit_flows/etl"]'))
    result = run_doit(demo_config, "wheel:orbit-flows")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "lacks 2 git-tracked modules" in output and "orbit_flows/etl/extract.py" in output
    assert "Traceback" not in output
    assert not (state(demo_config) / "dist" / "orbit-flows").exists(), "nothing half-built is kept"


def test_fork_label_names_the_fork_in_every_changed_version(demo_config: Path) -> None:
    marked = demo_config.read_text().replace("allow_prerelease = false", 'allow_prerelease = false\nfork_label = "acme"')
    demo_config.write_text(marked)
    result = run_doit(demo_config, "-n", "2", "wheel")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    versions = {p["name"]: p["version"] for p in report(demo_config, "wheel")["packages"]}
    expected = {name: version.replace("+orbit.", "+acme.") for name, version in DEMO_VERSIONS.items()}
    assert versions == expected
    core = next(Path(f["path"]) for f in report(demo_config, "wheel")["packages"][0]["files"] if f["name"].endswith(".whl"))
    assert core.name == f"orbit-{expected['orbit']}-py3-none-any.whl"
    assert f'__version__ = "{expected["orbit"]}"' in zipfile.ZipFile(core).read("orbit/_build_info.py").decode()


def test_scheme_tag_keeps_clean_versions_and_says_so_at_the_start(demo_config: Path) -> None:
    demo_config.write_text(demo_config.read_text().replace("allow_prerelease = false",
                                                           'allow_prerelease = false\nscheme = "tag"'))
    result = run_doit(demo_config, "version")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    versions = {p["name"]: p["version"] for p in report(demo_config, "version")["packages"]}
    assert versions == {"orbit": "1.0.1", "orbit-client": "1.0.1", "orbit-aws": "0.2.0", "orbit-gcp": "0.1.0",
                        "orbit-slack": "0.1.0", "orbit-flows": "0.1.0"}
    output = result.stdout + result.stderr
    assert "orbit-aws: commit" in output and "scheme `tag` keeps version 0.2.0" in output
    assert "git tag <new version>" in output and 'scheme = "commit"' in output
    assert "orbit-slack: commit" not in output, "an unchanged package is not reported"


def test_client_by_paths_keeps_what_client_keep_names(demo_config: Path) -> None:
    recipe = ('client_recipe = "paths"\nclient_remove = ["src/orbit/cli", "src/orbit/server", "src/orbit/testing"]\n'
              'client_keep = ["src/orbit/server/api"]\n')
    demo_config.write_text(demo_config.read_text().replace('client = "client"\n', 'client = "client"\n' + recipe))
    result = run_doit(demo_config, "wheel:orbit-client")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "client tree made by [packages] client_remove/client_keep" in result.stdout
    wheel = next((state(demo_config) / "dist" / "orbit-client").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "orbit/server/api/__init__.py" in names and "orbit/client/__init__.py" in names
    assert not any(n.startswith(("orbit/cli/", "orbit/server/models/", "orbit/testing/")) for n in names)
    assert next(n for n in names if n.endswith("METADATA")).startswith("orbit_client-1.0.1")


def test_skipped_integrations_get_no_tasks_and_a_wrong_name_stops_the_run(demo_config: Path) -> None:
    text = demo_config.read_text()
    demo_config.write_text(text.replace('integrations = "src/integrations/*"\n',
                                        'integrations = "src/integrations/*"\nskip = ["orbit-gcp"]\n'))
    assert run_doit(demo_config, "checkout").returncode == 0
    listed = run_doit(demo_config, "list", "--all")
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    assert "wheel:orbit-aws" in listed.stdout and "verify:orbit-aws" in listed.stdout
    assert "orbit-gcp" not in listed.stdout
    built = run_doit(demo_config, "-n", "2", "wheel")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    names = {p["name"] for p in report(demo_config, "wheel")["packages"]}
    assert names == {"orbit", "orbit-client", "orbit-aws", "orbit-slack", "orbit-flows"}
    assert not (state(demo_config) / "dist" / "orbit-gcp").exists()

    demo_config.write_text(text.replace('integrations = "src/integrations/*"\n',
                                        'integrations = "src/integrations/*"\nskip = ["orbit-gpc"]\n'))
    wrong = run_doit(demo_config, "wheel")
    output = wrong.stdout + wrong.stderr
    assert wrong.returncode == 2, "a config error"
    assert "no package named orbit-gpc in the fork" in output and "[packages] skip" in output
    assert "orbit-gcp" in output and "Traceback" not in output
