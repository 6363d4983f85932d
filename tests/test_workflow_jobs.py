"""The rendered release and deploy workflows, run here job by job as GitHub would run them.

Each job starts from a fresh checkout with an empty state folder (as every
runner does); artifacts go from job to job as files; the fork's origin, the
package index, the registry and the Prefect server are shared, as they are
in CI. Afterwards one `doit` run of the whole pipeline, from another fresh
checkout against the same services, finds nothing to add: the jobs together
left what a single run leaves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_github import fake_github
from tests.helpers import REPO, free_port, prefect_http
from tests.image_helpers import Registry
from tests.test_sync import add_commit
from tests.workflow_runner import Runner, copy_checkout

pytestmark = [pytest.mark.docker, pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A pypiserver with upload auth on a free port; its URL and the credentials as the publish job's secrets."""
    from tasks.adapters import services as svc
    from tasks.pipeline.credentials import local_credentials
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prepare, service_spec

    folder = tmp_path / "index-service"
    folder.mkdir()
    (folder / "pipeline.toml").write_text(f'[project]\nname = "index"\n[services.index]\nport = {free_port()}\n'
                                          f'[services.registry]\nport = {free_port()}\n'
                                          f'[services.prefect]\nport = {free_port()}\n')
    current = load_settings(folder / "pipeline.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # passlib, which writes the htpasswd, imports crypt
        prepare(current, "index")
    spec = service_spec(current, "index")
    svc.start(spec)
    creds = local_credentials(current.services_dir / "index", "index")
    try:
        yield spec.url, {"TWINE_USERNAME": creds.username, "TWINE_PASSWORD": creds.password}
    finally:
        svc.stop(spec)


def config_text(project: str, demo: Path, index_url: str, registry: Registry, api: str) -> str:
    return f"""state_dir = ".forkflow"

[project]
name = "{project}"

[fork]
path = "fork"
upstream = "{demo / 'upstream.git'}"
origin = "{demo / 'origin.git'}"

[packages]
core = "."
client = "client"
integrations = "src/integrations/*"

[index]
url = "{index_url}"

[images]
registry = "{registry.address}"
repository = "{project}/orbit"
python = ["3.12"]
flavors = ["base"]
base_image = "python:{{python}}-slim"

[flows]
path = "fork/flows"
config = "fork/flows/deployments.yaml"
# each runner checks out elsewhere; the process workers see the flows here
worker_path = "/srv/flows"

[environments.dev]
prefect_api_url = "{api}"
work_pool = "ff-dev"
branch = "*"

[environments.prod]
prefect_api_url = "{api}"
work_pool = "ff-prod"
branch = "main"

[github]
workflows = ["release", "deploy", "pull-request", "sync-upstream"]
"""


def one_run_config(config: Path) -> None:
    """The config a single run uses: the same, with its writes made rather than planned (the workflows name them)."""
    config.write_text('default_writes = ["publish", "image", "deploy"]\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")


def flows_repository(folder: Path, config: str) -> Path:
    """The repository that runs forkflow: forkflow's files, the config in ci/ and the workflows `doit workflows`
    renders for it."""
    copy_checkout(REPO, folder)
    (folder / "ci").mkdir()
    (folder / "ci" / "pipeline.toml").write_text(config, encoding="utf-8")
    env = {**os.environ, "FORKFLOW_CONFIG": str(folder / "ci" / "pipeline.toml")}
    done = subprocess.run([sys.executable, "-m", "doit", "-f", str(folder / "dodo.py"), "-d", str(folder), "workflows"],
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(folder / "ci" / ".forkflow")
    return folder


def failed_jobs(results: dict[str, list[Any]]) -> str:
    return "\n\n".join(f"== {job} ({item.result})\n{item.log[-6000:]}" for job, items in results.items()
                       for item in items if item.result == "failure")


def one_run(repo: Path, folder: Path, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`doit` (every stage) from a fresh checkout, as one run would."""
    copy_checkout(repo, folder)
    one_run_config(folder / "ci" / "pipeline.toml")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FORKFLOW_", "PREFECT_", "TWINE_"))}
    env.update(secrets, FORKFLOW_CONFIG=str(folder / "ci" / "pipeline.toml"), FORKFLOW_BRANCH="release")
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(folder / "dodo.py"), "-d", str(folder)], env=env,
                          capture_output=True, text=True, check=False, timeout=3600)


def report(folder: Path, stage: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "ci" / ".forkflow" / "reports" / f"{stage}.json").read_text())
    return loaded


def test_release_then_deploy_job_by_job_leaves_what_one_run_leaves(
        tmp_path: Path, demo_workspace: Path, index: tuple[str, dict[str, str]], registry: Registry, prefect_api: str,
        base_images: list[str]) -> None:
    project = "wf" + uuid.uuid4().hex[:8]
    index_url, index_secrets = index
    repo = flows_repository(tmp_path / "repo", config_text(project, demo_workspace, index_url, registry, prefect_api))
    auth = os.environ["FORKFLOW_PREFECT_USERNAME"] + ":" + os.environ["FORKFLOW_PREFECT_PASSWORD"]
    secrets = {**index_secrets, **registry.env, "PREFECT_API_AUTH_STRING": auth, "PLAN_PREFECT_API_AUTH_STRING": auth}
    runner = Runner(repo, tmp_path / "runs", secrets=secrets)
    workflows = repo / ".github" / "workflows"

    with fake_github() as github:
        release = runner.run(workflows / "release.yml", "workflow_dispatch", {"publish": True, "images": True},
                             ref="release", extra_env={"GITHUB_API_URL": github.url})
    assert {job: [r.result for r in items] for job, items in release.items()} == {
        "changes": ["success"], "build": ["success"], "attest-wheels": ["success"], "publish": ["success"],
        "matrix": ["success"], "images": ["success"], "summary": ["success"], "attest-images": ["success"],
        "github-release": ["success"], "remember": ["skipped"]}, failed_jobs(release)
    assert any(s.endswith(".whl") for s in release["attest-wheels"][0].attested)
    assert [s.split("@")[1] for s in release["attest-images"][0].attested] == [
        json.loads((runner.runs["release"] / "images" / "image.json").read_text())["images"][0]["digest"]]
    shipped = report(release["build"][0].workspace or tmp_path, "version")
    core = next(p["version"] for p in shipped["packages"] if p["name"] == "orbit")
    assert core.startswith(f"1.0.1+{project}.") and [r["tag_name"] for r in github.releases.values()] == [core]
    summary = release["summary"][0].summary
    assert "### Uploads" in summary and "### Images" in summary and "| 3.12-base | built |" in summary
    images = json.loads((runner.runs["release"] / "images" / "image.json").read_text())
    assert [image["name"] for image in images["images"]] == ["3.12-base"] and images["images"][0]["digest"]

    deploy = runner.run(workflows / "deploy.yml", "push", ref="release")
    assert [r.result for r in deploy["deploy"]] == ["success"], failed_jobs(deploy)
    assert deploy["route"][0].outputs == {"environments": '["dev"]'}
    deployed = report(deploy["deploy"][0].workspace or tmp_path, "deploy")
    assert deployed["deployments"] and {d["status"] for d in deployed["deployments"]} == {"created"}

    uploaded = {f["name"]: f["sha256"] for f in report(release["publish"][0].workspace or tmp_path, "publish")["files"]}
    assert uploaded and all(name.startswith(("orbit", project)) for name in uploaded)

    single = one_run(repo, tmp_path / "one-run", secrets)
    assert single.returncode == 0, single.stdout[-6000:] + single.stderr[-3000:]
    again = report(tmp_path / "one-run", "publish")["files"]
    assert {f["name"]: f["sha256"] for f in again} == uploaded
    assert {f["status"] for f in again} == {"up-to-date"}, again  # identical files already in the index
    assert index_files(index_url) == uploaded, "the index holds what one run publishes, and nothing else"
    built = report(tmp_path / "one-run", "image")["images"]
    assert [(i["name"], i["digest"], i["status"]) for i in built] == [
        ("3.12-base", images["images"][0]["digest"], "up-to-date")]
    assert built[0]["tags"] == images["images"][0]["tags"], "the same tags"
    sbom = built[0]["digest"].replace(":", "-") + ".sbom"
    assert registry.tags(f"{project}/orbit") == sorted([*built[0]["tags"], sbom]), "every tag and the SBOM, nothing else"
    assert report(tmp_path / "one-run", "deploy")["writes"] == 0
    with prefect_http(prefect_api) as http:
        found = http.post("deployments/filter", json={"deployments": {"name": {"like_": project}}}).json()
    assert sorted(d["name"] for d in found) == sorted(d["name"] for d in deployed["deployments"])

    shipped_state = index_files(index_url), registry.tags(f"{project}/orbit")
    assert all(shipped_state), shipped_state
    a_second_scheduled_run_builds_nothing(runner, workflows / "release.yml")
    assert (index_files(index_url), registry.tags(f"{project}/orbit")) == shipped_state, "nothing pushed, nothing uploaded"

    change_a_deployment(demo_workspace / "origin.git", tmp_path / "change")
    changes = runner.run(only_the_changes_job(workflows / "release.yml", tmp_path / "gate"), "schedule", ref="release")
    assert changes["changes"][0].outputs["build"] == "true", "a push to the release branch: the next scheduled run builds"
    pull = {"base_ref": "release", "head_ref": "feature/x", "event": {"pull_request": {
        "number": 7, "head": {"repo": {"full_name": "acme/flows"}}}}}
    with fake_github() as github:
        github.pulls[7] = {"number": 7, "repo": "acme/flows", "state": "open", "head": "feature/x", "base": "release"}
        for _ in range(2):
            planned = runner.run(workflows / "pull-request.yml", "pull_request", ref="feature/x", github_extra=pull,
                                 extra_env={"GITHUB_API_URL": github.url})
            assert {job: [r.result for r in items] for job, items in planned.items()} == {
                "plan": ["success"], "comment": ["success"]}, failed_jobs(planned)
    assert len(github.comments[7]) == 1, "one comment, kept up to date"
    plan = github.comments[7][0]
    assert plan.startswith("<!-- forkflow-plan -->") and "all checks passed" in plan and plan in planned["plan"][0].summary
    # the change, and the new code version every deployment of the branch gets with it
    assert f"- `{project}--release--hello--dev`: parameters, tags, version" in plan
    assert "### Deploy to dev: 4 to update" in plan
    with prefect_http(prefect_api) as http:
        after = http.post("deployments/filter", json={"deployments": {"name": {"like_": project}}}).json()
    assert {d["name"]: d["updated"] for d in after} == {d["name"]: d["updated"] for d in found}, "the plan wrote nothing"

    upstream_main = subprocess.run(["git", "rev-parse", "main"], cwd=demo_workspace / "upstream.git", capture_output=True,
                                   text=True, check=True).stdout.strip()
    with fake_github() as github:
        synced = runner.run(workflows / "sync-upstream.yml", "workflow_dispatch", {"dry_run": False, "force_sync": True},
                            ref="release", extra_env={"GITHUB_API_URL": github.url})
    assert {job: [r.result for r in items] for job, items in synced.items()} == {
        "plan": ["skipped"], "sync": ["success"], "report": ["success"]}, failed_jobs(synced)
    merged = subprocess.run(["git", "merge-base", "--is-ancestor", upstream_main, "release"], cwd=demo_workspace / "origin.git",
                            check=False)
    assert merged.returncode == 0, "origin's release is on top of upstream's main"
    assert github.issues == {} and "## Sync" in synced["sync"][0].summary

    conflicts_open_one_issue_and_a_clean_sync_closes_it(runner, workflows / "sync-upstream.yml", demo_workspace,
                                                        tmp_path / "resolve")


def a_second_scheduled_run_builds_nothing(runner: Runner, release: Path) -> None:
    """The first scheduled run builds (no scheduled or release run before it kept a fingerprint; a manual run does
    not count) and keeps the fingerprint; the second, with the same inputs, runs nothing but the decision."""
    with fake_github() as github:
        first = runner.run(release, "schedule", ref="release", extra_env={"GITHUB_API_URL": github.url})
    assert first["changes"][0].outputs["build"] == "true", first["changes"][0].log[-3000:]
    assert {job: [r.result for r in items] for job, items in first.items()} == {
        "changes": ["success"], "build": ["success"], "attest-wheels": ["success"], "publish": ["success"],
        "matrix": ["success"], "images": ["success"], "summary": ["success"], "attest-images": ["success"],
        "github-release": ["success"], "remember": ["success"]}, failed_jobs(first)
    assert github.writes() == [], "the run published nothing new: the release is left alone"
    kept = (runner.runs["release"] / "release-inputs" / "release-inputs.txt").read_text().strip()
    assert kept == first["changes"][0].outputs["fingerprint"]

    with fake_github() as github:
        second = runner.run(release, "schedule", ref="release", extra_env={"GITHUB_API_URL": github.url})
    assert {job: [r.result for r in items] for job, items in second.items()} == {
        "changes": ["success"], **{job: ["skipped"] for job in first if job != "changes"}}, failed_jobs(second)
    assert "nothing to build, push or release" in second["changes"][0].summary
    assert github.requests == []
    assert (runner.runs["release"] / "release-inputs" / "release-inputs.txt").read_text().strip() == kept, \
        "the fingerprint is kept again for the run after"


def only_the_changes_job(release: Path, folder: Path) -> Path:
    """release.yml with its first job only: the decision, without building what it decides."""
    workflow = yaml.safe_load(release.read_text(encoding="utf-8"))
    workflow["jobs"] = {"changes": workflow["jobs"]["changes"]}
    folder.mkdir()
    (folder / "release.yml").write_text(yaml.safe_dump(workflow), encoding="utf-8")
    return folder / "release.yml"


def index_files(url: str) -> dict[str, str]:
    """Every file the package index serves: name -> sha256 (read from pypiserver's listing)."""
    with urllib.request.urlopen(url.rstrip("/") + "/packages/", timeout=30) as response:  # noqa: S310 - the test's index
        return dict(re.findall(r'href="[^"#]*/([^"/#]+)#sha256=([0-9a-f]{64})"', response.read().decode()))


def conflicts_open_one_issue_and_a_clean_sync_closes_it(runner: Runner, sync: Path, demo: Path, work: Path) -> None:
    """The scheduled sync-upstream on a conflict: its sync job fails, its report job opens one issue, then updates
    it on the next conflict; once a maintainer has resolved it, the next scheduled run closes it."""
    add_commit(demo / "upstream.git", "main", {"src/orbit/_fork.py": "DEFAULT_NAME = 'upstream'\n"},
               "feat: upstream takes _fork.py")
    with fake_github() as github:
        for _ in range(2):
            done = runner.run(sync, "schedule", ref="release", extra_env={"GITHUB_API_URL": github.url})
            assert {job: [r.result for r in items] for job, items in done.items()} == {
                "plan": ["skipped"], "sync": ["failure"], "report": ["success"]}, failed_jobs(done)
        (issue,) = github.issues.values()
        assert issue["state"] == "open" and "`src/orbit/_fork.py`" in issue["body"] and "git rebase" in issue["body"]
        assert github.writes().count(("POST", "/repos/acme/flows/issues")) == 1, "updated, never a second issue"
        assert ("PATCH", f"/repos/acme/flows/issues/{issue['number']}") in github.writes()

        resolve_keeping_the_fork(demo, work)
        done = runner.run(sync, "schedule", ref="release", extra_env={"GITHUB_API_URL": github.url})
        assert {job: [r.result for r in items] for job, items in done.items()} == {
            "plan": ["skipped"], "sync": ["success"], "report": ["success"]}, failed_jobs(done)
        assert github.issues[issue["number"]]["state"] == "closed" and len(github.issues) == 1


def resolve_keeping_the_fork(demo: Path, work: Path) -> None:
    """What the issue asks of a maintainer: release rebased onto upstream's main, the fork's side kept, pushed."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "clone", "-q", "--branch", "release", str(demo / "origin.git"), str(work)], check=True)
    for command in (["fetch", "-q", str(demo / "upstream.git"), "main"], ["rebase", "-q", "-X", "theirs", "FETCH_HEAD"],
                    ["push", "-q", "--force", "origin", "FETCH_HEAD:refs/heads/main", "release"]):
        subprocess.run(["git", *command], cwd=work, check=True, env=env)


def change_a_deployment(origin: Path, work: Path) -> None:
    """A pushed change on the release branch: hello's parameters in dev."""
    subprocess.run(["git", "clone", "-q", "--branch", "release", str(origin), str(work)], check=True)
    specs = work / "flows" / "deployments.yaml"
    specs.write_text(specs.read_text().replace("      name: orbit\n", "      name: pull-request\n", 1))
    identity = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
                "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "commit", "-qam", "feat(flows): hello greets the pull request"], cwd=work, check=True,
                   env=identity)
    subprocess.run(["git", "push", "-q", "origin", "release"], cwd=work, check=True)
