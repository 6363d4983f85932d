"""Deploying a prefect.yaml of 400 deployments: forkflow vs `prefect --no-prompt deploy --all` vs a raw API loop.

One generated project (400 flows, one deployment each, half with a cron
schedule) is deployed whole by each contestant, each to a fresh Prefect
server of the same kind, nothing extrapolated:

- ours: `doit deploy` on a pipeline.toml whose flows folder holds the prefect.yaml;
- baseline: `prefect --no-prompt deploy --all` in that folder;
- floor: a plain sequential loop of the same 800 writes (400 flows, 400 deployments) over HTTP.

Then a second `doit deploy` with nothing changed (0 writes) against `doit list`,
the median of 5 interleaved runs each. The servers' scheduler service is off, so
no contestant competes with runs being scheduled for the new schedules.
All of it on the SQLite server, then on a Prefect server backed by PostgreSQL
(Debian's postgresql, started here in a temporary cluster), which is what
teams with this many deployments run. Run alone with `python -m bench.prefect_yaml`;
`FORKFLOW_BENCH_DEPLOYMENTS` changes the count (e.g. 40 for a quick look).
"""

from __future__ import annotations

import dataclasses
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

from bench.common import Result, free_port, interleaved_medians, print_results, stopwatch

REPO = Path(__file__).resolve().parent.parent
COUNT = int(os.environ.get("FORKFLOW_BENCH_DEPLOYMENTS", "400"))
POOL = "bench-pool"
IDENTITY = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
FLOW = '''from prefect import flow


@flow(name="flow-{index}")
def flow_{index}(x: int = 1, label: str = "bench") -> int:
    """Generated flow {index}."""
    return x
'''


def run() -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-prefect-yaml-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # the postgres user must reach its cluster inside
        project = generate(root / "repo")
        results += contest(root / "sqlite", project, "SQLite", None)
        with postgres(root / "pg") as databases:
            results += contest(root / "postgres", project, "PostgreSQL", databases)
    return results


def contest(root: Path, project: Path, kind: str, databases: Iterator[str] | None) -> list[Result]:
    """The three contestants, each against a fresh server of `kind`."""
    root.mkdir()
    with prefect_server(root / "ours", databases) as api:
        config = write_config(root, project, api)
        with stopwatch() as ours:
            report = doit(config, "deploy")
        written = sum(1 for entry in report["deployments"] if entry["status"] == "created")
        again, listing, second = interleaved_medians(lambda: doit(config, "deploy"),
                                                     lambda: doit(config, "list", report=False))
    with prefect_server(root / "prefect", databases) as api, stopwatch() as baseline:
        prefect_deploy(project, api)
    with prefect_server(root / "raw", databases) as api, stopwatch() as floor:
        raw_loop(project, api)
    return [
        Result(f"prefect.yaml {kind}: first deploy, {COUNT} deployments vs prefect deploy --all", ours(), baseline(),
               "<= 0.1 on PostgreSQL" if kind == "PostgreSQL" else "at or under the raw loop",
               f"{written} created; raw sequential loop of the same {2 * COUNT} writes: {floor():.1f}s "
               f"(ours/raw {ours() / floor():.2f})"),
        Result(f"prefect.yaml {kind}: second deploy, nothing changed vs doit list (median of 5)", again, listing, "under 1.2",
               "up to date: the servers' signals unchanged, 0 API writes" if second["up_to_date"]
               else f"ran: {second['writes']} API writes"),
    ]


# ---------------------------------------------------------------- the project


def generate(repo: Path) -> Path:
    """A git repository whose root holds flows/ and a prefect.yaml with COUNT deployments."""
    flows = repo / "flows"
    flows.mkdir(parents=True)
    for index in range(COUNT):
        (flows / f"flow_{index}.py").write_text(FLOW.format(index=index))
    deployments = []
    for index in range(COUNT):
        entry: dict[str, Any] = {"name": f"deployment-{index}", "entrypoint": f"flows/flow_{index}.py:flow_{index}",
                                 "parameters": {"x": index}, "tags": ["bench"], "work_pool": {"name": POOL}}
        if index % 2 == 0:
            entry["schedules"] = [{"cron": f"{index % 60} 6 * * *", "timezone": "Europe/Berlin"}]
        deployments.append(entry)
    pull = [{"prefect.deployments.steps.set_working_directory": {"directory": str(repo)}}]
    (repo / "prefect.yaml").write_text(yaml.safe_dump({"name": "bench", "pull": pull, "deployments": deployments},
                                                      sort_keys=False))
    env = {**os.environ, **IDENTITY}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "flows"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    return repo


def write_config(root: Path, project: Path, api: str) -> Path:
    config = root / "pipeline.toml"
    config.write_text(f"""[project]
name = "bench"

[flows]
path = "{project}"

[environments.dev]
prefect_api_url = "{api}"
branch = "*"
schedules = true
""")
    return config


# ---------------------------------------------------------------- contestants


def doit(config: Path, *args: str, report: bool = True) -> dict[str, Any]:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if not report:
        return {}
    loaded: dict[str, Any] = json.loads((config.parent / ".forkflow" / "reports" / "deploy.json").read_text())
    loaded["up_to_date"] = "-- deploy" in done.stdout
    return loaded


def prefect_deploy(project: Path, api: str) -> None:
    prefect = str(Path(sys.executable).parent / "prefect")
    done = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "PREFECT_API_URL": api}, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def raw_loop(project: Path, api: str) -> None:
    """The floor: one request after another, the same flows and deployments, no reads, no checks."""
    from tasks.adapters.prefect import client

    data = yaml.safe_load((project / "prefect.yaml").read_text())
    with client(api) as http:
        for entry in data["deployments"]:
            flow_id = post(http, "flows/", {"name": entry["entrypoint"].rsplit(":", 1)[1].replace("_", "-")})["id"]
            body = {"name": entry["name"], "flow_id": flow_id, "entrypoint": entry["entrypoint"],
                    "parameters": entry["parameters"], "tags": entry["tags"], "work_pool_name": POOL,
                    "pull_steps": data["pull"], "schedules": [{"schedule": s, "active": True} for s in entry.get("schedules", [])]}
            post(http, "deployments/", body)


def post(http: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST, retrying a busy server (503/429) as Prefect's own client does."""
    import time

    for attempt in range(8):
        response = http.post(path, json=body)
        if response.status_code not in (429, 503):
            response.raise_for_status()
            found: dict[str, Any] = response.json()
            return found
        time.sleep(min(0.2 * 2**attempt, 5.0))
    response.raise_for_status()
    return {}


# ---------------------------------------------------------------- servers


@contextmanager
def prefect_server(folder: Path, databases: Iterator[str] | None) -> Iterator[str]:
    """A fresh local Prefect server (SQLite, or the next PostgreSQL database) with the bench's work pool."""
    from tasks.adapters import services as svc
    from tasks.adapters.prefect import ensure_work_pool
    from tasks.context import load_settings
    from tasks.credentials import local_prefect_auth
    from tasks.services import prepare, service_spec

    folder.mkdir(parents=True)
    (folder / "pipeline.toml").write_text(
        f'[project]\nname = "bench"\n[services.prefect]\nport = {free_port()}\n'
        f'[services.index]\nport = {free_port()}\n[services.registry]\nport = {free_port()}\n')
    current = load_settings(folder / "pipeline.toml")
    spec = service_spec(current, "prefect")
    # the scheduler would fill the database with runs of the new schedules while the contestants write
    env = {**spec.env, "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    if databases is not None:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = next(databases)
    spec = dataclasses.replace(spec, env=env)
    prepare(current, "prefect")
    svc.start(spec)
    api = spec.url + "/api"
    saved = os.environ.get("PREFECT_API_AUTH_STRING")
    os.environ["PREFECT_API_AUTH_STRING"] = local_prefect_auth(current, api) or ""
    try:
        ensure_work_pool(api, POOL)
        yield api
    finally:
        svc.stop(spec)
        if saved is None:
            os.environ.pop("PREFECT_API_AUTH_STRING", None)
        else:
            os.environ["PREFECT_API_AUTH_STRING"] = saved


@contextmanager
def postgres(folder: Path) -> Iterator[Iterator[str]]:
    """A temporary PostgreSQL cluster (Debian's postgresql), owned by the postgres user; yields fresh database URLs."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries or shutil.which("runuser") is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    bin_dir = binaries[-1]
    folder.mkdir(parents=True)
    shutil.chown(folder, "postgres", "postgres")
    port = free_port()

    def as_postgres(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    as_postgres(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "prefect", "--auth=trust")
    as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o",
                f"-p {port} -k {folder} -h 127.0.0.1 -c max_connections=200", "start")

    def databases() -> Iterator[str]:
        for number in range(100):
            name = f"prefect_{number}"
            as_postgres(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", name)
            yield f"postgresql+asyncpg://prefect@127.0.0.1:{port}/{name}"

    try:
        yield databases()
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop")


if __name__ == "__main__":
    print_results(run())
