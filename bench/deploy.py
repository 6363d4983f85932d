"""Deploying 200 flows to 2 environments: forkflow vs `prefect deploy --all`.

Both run as commands against one local Prefect server (SQLite) started for
the benchmark. Cases:

- first deploy of 400 deployments: `doit deploy` vs `prefect --no-prompt deploy --all`
  on an equivalent prefect.yaml. To keep the run short the baseline is timed
  on two subsets (BASELINE_SIZES flows x 2 environments) and extrapolated
  along the line through them (start-up cost plus a cost per deployment;
  prefect deploys one deployment after another); the note says so.
- second deploy with nothing changed: `doit deploy` (whole command, and the
  apply step alone) vs the baseline's own redeploy, also scaled. forkflow
  must make zero writes: checked by its write count and by the server's
  `updated` timestamps.

Run alone with `python -m bench.deploy`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench.common import Result, print_results, sized, stopwatch

REPO = Path(__file__).resolve().parent.parent
FLOWS = sized(200, 3)
ENVIRONMENTS = ("dev", "prod")
BASELINE_SIZES = sized((5, 20), (1, 2))
IDENTITY = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

FLOW_TEMPLATE = '''"""Generated flow {index}."""

from prefect import flow


@flow(name="flow-{index}", description="Generated flow number {index}.")
def flow_{index}(x: int = 1, label: str = "bench") -> int:
    return x
'''


def run() -> list[Result]:
    both_environments()
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-deploy-") as folder, prefect_server(Path(folder)) as api:
        root = Path(folder)
        flows = generate_flows(root / "repo" / "flows", FLOWS)
        config = write_config(root, api, "bench")
        ensure_pools(api)
        measured = {size: baseline(root, flows, api, size) for size in BASELINE_SIZES}
        first = timed_doit(config)
        report = json.loads((root / ".forkflow" / "reports" / "deploy.json").read_text())
        created = sum(1 for entry in report["deployments"] if entry["status"] == "created")
        before = updated_stamps(api, "bench--")
        report_file = root / ".forkflow" / "reports" / "deploy.json"
        written_at = report_file.stat().st_mtime_ns
        second = timed_doit(config)
        # an up-to-date deploy task does not run, so it writes neither the server nor its report
        again = json.loads(report_file.read_text()) if report_file.stat().st_mtime_ns != written_at else {"writes": 0}
        engine = engine_seconds(config)
        untouched = updated_stamps(api, "bench--") == before
    baseline_first = extrapolate({size: times[0] for size, times in measured.items()})
    baseline_second = extrapolate({size: times[1] for size, times in measured.items()})
    subset = "baseline: " + "; ".join(f"{size * 2} deployments {times[0]:.1f}s first, {times[1]:.1f}s again"
                                      for size, times in measured.items()) + f", extrapolated to {FLOWS * 2}"
    return [
        Result(f"deploy: first deploy, {FLOWS} flows x 2 environments", first, baseline_first,
               "reported only: the floor is the raw loop of the same writes (floors, prefect_yaml)",
               f"{created} created; {subset}; the earlier target, 0.1x prefect deploy, lies below the server's own "
               "CPU for the writes"),
        Result("deploy: second deploy, nothing changed (whole doit command)", second, baseline_second,
               "under 1 s, zero writes",
               f"{again['writes']} API writes, server timestamps {'unchanged' if untouched else 'CHANGED'}; "
               "includes interpreter and doit start-up and the flows task"),
        Result("deploy: second deploy, nothing changed (plan and apply only)", engine, baseline_second,
               "under 1 s, zero writes", "the deploy action in-process, after flows.json exists"),
    ]


def extrapolate(times: dict[int, float]) -> float:
    """Seconds for FLOWS flows on the line through the measured (flows, seconds) points."""
    (small, t_small), (large, t_large) = sorted(times.items())
    per_flow = max((t_large - t_small) / (large - small), 0.0)
    return float(t_small + per_flow * (FLOWS - small))


@contextmanager
def prefect_server(folder: Path) -> Iterator[str]:
    from tasks.adapters import services as svc
    from tasks.pipeline.credentials import local_prefect_auth
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prepare, service_spec

    server_dir = folder / "server"
    server_dir.mkdir()
    (server_dir / "pipeline.toml").write_text(
        f'[project]\nname = "bench"\n[services.prefect]\nport = {free_port()}\n'
        f'[services.index]\nport = {free_port()}\n[services.registry]\nport = {free_port()}\n')
    current = load_settings(server_dir / "pipeline.toml")
    spec = service_spec(current, "prefect")
    prepare(current, "prefect")
    svc.start(spec)
    api = spec.url + "/api"
    saved = os.environ.get("PREFECT_API_AUTH_STRING")
    # the local server asks for its generated credentials: forkflow, the baseline and the bench's own reads use them
    os.environ["PREFECT_API_AUTH_STRING"] = local_prefect_auth(current, api) or ""
    try:
        yield api
    finally:
        svc.stop(spec)
        if saved is None:
            os.environ.pop("PREFECT_API_AUTH_STRING", None)
        else:
            os.environ["PREFECT_API_AUTH_STRING"] = saved


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate_flows(flows: Path, count: int) -> Path:
    package = flows / "bench_flows"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for index in range(count):
        (package / f"flow_{index}.py").write_text(FLOW_TEMPLATE.format(index=index))
    (flows / "pyproject.toml").write_text('[project]\nname = "bench-flows"\nversion = "0.1.0"\n')
    (flows / "deployments.yaml").write_text(yaml.safe_dump(deployment_specs(count), sort_keys=False))
    repo = flows.parent
    env = {**os.environ, **IDENTITY}
    for argv in (["git", "init", "-q", "-b", "release"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "flows"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    return flows


def deployment_specs(count: int) -> dict[str, Any]:
    flows: dict[str, Any] = {}
    for index in range(count):
        entry: dict[str, Any] = {"parameters": {"x": index}}
        if index % 2 == 0:
            entry["schedules"] = [{"cron": f"{index % 60} 6 * * *", "timezone": "Europe/Berlin"}]
        flows[f"flow-{index}"] = entry
    return {"defaults": {"tags": ["bench"]}, "flows": flows}


def write_config(root: Path, api: str, project: str) -> Path:
    config = root / "pipeline.toml"
    config.write_text(f"""[project]
name = "{project}"
{flows_sections(api, "repo/flows")}""")
    return config


def flows_sections(api: str, flows: str) -> str:
    """[flows] at `flows` and the two bench environments (dev, prod) on one Prefect server; both are deployed in
    one run through FORKFLOW_ENVIRONMENT (see `both_environments`)."""
    return f"""
[flows]
path = "{flows}"
config = "{flows}/deployments.yaml"

[environments.dev]
prefect_api_url = "{api}"
work_pool = "bench-dev"
branch = "*"

[environments.prod]
prefect_api_url = "{api}"
work_pool = "bench-prod"
branch = "main"
schedules = true
"""


def both_environments() -> None:
    """Deploy to dev and prod in each run, whatever the branch (as `nox -s deploy -- dev,prod` does)."""
    os.environ["FORKFLOW_ENVIRONMENT"] = ",".join(ENVIRONMENTS)


def ensure_pools(api: str) -> None:
    from tasks.adapters.prefect import ensure_work_pool

    for env in ENVIRONMENTS:
        ensure_work_pool(api, f"bench-{env}")


def doit(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args], check=False,
                            env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def timed_doit(config: Path) -> float:
    with stopwatch() as elapsed:
        doit(config, "deploy")
    return elapsed()


def engine_seconds(config: Path) -> float:
    """The deploy action alone, in this process (no interpreter or doit start-up)."""
    from tasks.pipeline.settings import settings
    from tasks.stages.deploy.stage import deploy_action

    old = os.environ.get("FORKFLOW_CONFIG")
    os.environ["FORKFLOW_CONFIG"] = str(config)
    settings.cache_clear()
    try:
        with stopwatch() as elapsed:
            deploy_action()
        return elapsed()
    finally:
        if old is None:
            os.environ.pop("FORKFLOW_CONFIG", None)
        else:
            os.environ["FORKFLOW_CONFIG"] = old
        settings.cache_clear()


def updated_stamps(api: str, prefix: str) -> dict[str, str]:
    stamps: dict[str, str] = {}
    from tasks.adapters.prefect import client

    with client(api, timeout=60) as http:
        while True:
            page = http.post("deployments/filter", json={"deployments": {"name": {"like_": prefix}},
                                                         "limit": 200, "offset": len(stamps)}).json()
            stamps.update({item["name"]: item["updated"] for item in page})
            if len(page) < 200:
                return stamps


def baseline(root: Path, flows: Path, api: str, size: int) -> tuple[float, float]:
    """`prefect deploy --all` on a prefect.yaml equivalent to `size` flows' deployments: first run, then again."""
    project = root / f"baseline-{size}"
    shutil.copytree(flows, project, ignore=shutil.ignore_patterns("deployments.yaml"))
    (project / "prefect.yaml").write_text(yaml.safe_dump(prefect_yaml(project, size), sort_keys=False))
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_CLI_PROMPT": "false"}
    times = []
    for _ in range(2):
        with stopwatch() as elapsed:
            result = subprocess.run([str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"], check=False,
                                    cwd=project, env=env, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"prefect deploy --all failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        times.append(elapsed())
    return times[0], times[1]


def prefect_yaml(project: Path, count: int) -> dict[str, Any]:
    deployments = []
    for env in ENVIRONMENTS:
        for index in range(count):
            name = f"base{count}--release--flow-{index}--{env}"
            entry: dict[str, Any] = {
                "name": name,
                "entrypoint": f"bench_flows/flow_{index}.py:flow_{index}",
                "description": f"Generated flow number {index}.",
                "version": "0.1.0",
                "tags": ["bench", "PACKAGE_VERSION=0.1.0", "COMMIT_HASH=0000000"],
                "parameters": {"x": index},
                "work_pool": {"name": f"bench-{env}", "work_queue_name": "default",
                              "job_variables": {"env": {"DEPLOYMENT_NAME": name}}},
            }
            if index % 2 == 0:
                entry["schedules"] = [{"cron": f"{index % 60} 6 * * *", "timezone": "Europe/Berlin",
                                       "active": env == "prod"}]
            deployments.append(entry)
    return {
        "name": "baseline",
        "prefect-version": "3",
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}],
        "deployments": deployments,
    }


if __name__ == "__main__":
    print_results(run())
