"""Deploying a prefect.yaml of 400 deployments: forkflow vs `prefect --no-prompt deploy --all` vs a raw API loop.

One generated project (400 flows, one deployment each, half with a cron
schedule) is deployed whole by each contestant, each to a fresh Prefect
server of the same kind, nothing extrapolated:

- ours: `doit deploy` on a pipeline.toml whose flows folder holds the prefect.yaml;
- baseline: `prefect --no-prompt deploy --all` in that folder;
- floor: a plain sequential loop of the same 800 writes (400 flows, 400 deployments) over HTTP,
  with the bodies prefect deploy wrote (read back from its server), no reads, no checks.

Ours and the floor run in alternating rounds (FORKFLOW_BENCH_ROUNDS, default 3) and their
medians are compared: a server-bound run varies by a fifth from one sample to the next on a
shared machine. Each also reports the CPU time the server spent on its writes: no client of
that server can be faster than the server's own work.

Then a second `doit deploy` with nothing changed (0 writes) against `doit list`,
the median of 5 interleaved runs each, once the server is at rest (its event
services work off the first deploy's events for seconds); then `doit deploy`
after one deployment's parameters changed (a new value each run: one write)
against `doit list`, also the median of 5 interleaved runs, and the same after
one flow file's code changed (its deployment's version changes: one write). The servers' scheduler
service is off, so no contestant competes with runs being scheduled for the new schedules.
All of it on the SQLite server, then on a Prefect server backed by PostgreSQL
(Debian's postgresql, started here in a temporary cluster), which is what
teams with this many deployments run. Run alone with `python -m bench.prefect_yaml`;
`FORKFLOW_BENCH_DEPLOYMENTS` changes the count (e.g. 40 for a quick look), and
`FORKFLOW_BENCH_DATABASES=sqlite` (or `postgresql`) runs one half only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench.common import Result, free_port, interleaved_medians, print_results, sized, stopwatch

REPO = Path(__file__).resolve().parent.parent
COUNT = int(os.environ.get("FORKFLOW_BENCH_DEPLOYMENTS", sized("400", "6")))
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
        if "sqlite" in DATABASES:
            results += contest(root / "sqlite", project, "SQLite", None)
        if "postgresql" in DATABASES:
            with postgres(root / "pg") as databases:
                results += contest(root / "postgres", project, "PostgreSQL", databases)
    return results


DATABASES = os.environ.get("FORKFLOW_BENCH_DATABASES", "sqlite,postgresql").lower().split(",")


def contest(root: Path, project: Path, kind: str, databases: Iterator[str] | None) -> list[Result]:
    """`prefect deploy --all` once, then ROUNDS alternating rounds of ours and the raw loop, each against a fresh
    server of `kind`; the medians are compared (one sample of a server-bound run is mostly noise)."""
    root.mkdir()
    with prefect_server(root / "prefect", databases) as server:
        with stopwatch() as baseline:
            prefect_deploy(project, server.api)
        bodies = deployment_bodies(server.api)
    ours: list[Run] = []
    floor: list[Run] = []
    for number in range(ROUNDS):
        ours.append(our_round(root / f"ours-{number}", project, databases, noop=number == ROUNDS - 1))
        with prefect_server(root / f"raw-{number}", databases) as server:
            floor.append(measured(server, partial(raw_loop, bodies, server.api)))
    again, listing, second = ours[-1].noop
    changed, changed_listing, last_change = ours[-1].changed
    updated = [entry["name"] for entry in last_change["deployments"] if entry["status"] == "updated"]
    coded, coded_listing, last_code = ours[-1].code_changed
    recoded = [entry["name"] for entry in last_code["deployments"] if entry["status"] == "updated"]
    mine, raw = median_run(ours), median_run(floor)
    report = ours[-1].result
    written = sum(1 for entry in report["deployments"] if entry["status"] == "created")
    return [
        Result(f"prefect.yaml {kind}: first deploy, {COUNT} deployments vs a raw loop of the same writes", mine.seconds,
               raw.seconds, "<= 1.0", f"{written} created, {report['writes']} writes, {report['retries']} retried; "
               f"medians of {ROUNDS} alternating rounds, each against a fresh server; the raw loop is a sequential loop "
               f"of the same {len(bodies) * 2} writes over HTTP with the bodies prefect deploy wrote, no reads, no "
               f"checks, nothing else; ours is the whole `doit deploy` (start-up, flow discovery, Prefect's settings "
               f"and rules, the plan) in an empty state folder"),
        Result(f"prefect.yaml {kind}: first deploy, {COUNT} deployments vs the server's CPU for its writes",
               mine.seconds, mine.server_cpu, "<= 1.1 where the server is the bottleneck",
               f"the server's CPU seconds while ours ran (no client can be faster than the server's own work); the raw "
               f"loop: {raw.seconds:.1f}s against {raw.server_cpu:.1f}s of server CPU, ratio "
               f"{raw.seconds / raw.server_cpu:.2f}"),
        Result(f"prefect.yaml {kind}: first deploy, {COUNT} deployments vs prefect deploy --all", mine.seconds,
               baseline(), "reported only", "the same project deployed by `prefect --no-prompt deploy --all`, "
               "once, against a fresh server"),
        Result(f"prefect.yaml {kind}: second deploy, nothing changed vs doit list (median of 5)", again, listing, "under 1.2",
               "up to date: the servers' signals unchanged, 0 API writes; measured once the server is at rest" if second["up_to_date"]
               else f"ran: {second['writes']} API writes"),
        Result(f"prefect.yaml {kind}: deploy with one changed deployment vs doit list (median of 5)", changed,
               changed_listing, "<= 2.0", f"updated: {', '.join(updated) or 'none'}, {last_change['writes']} API writes; "
               "the whole `doit deploy` (flows and deploy tasks) after one deployment's parameters changed"),
        Result(f"prefect.yaml {kind}: deploy after one flow's code changed vs doit list (median of 5)", coded,
               coded_listing, "<= 2.0", f"updated: {', '.join(recoded) or 'none'}, {last_code['writes']} API writes; "
               "the whole `doit deploy` after one of the 400 flow files changed (its deployment's version is the "
               "file's hash, as prefect deploy makes it outside a git checkout with a remote)"),
    ]


ROUNDS = int(os.environ.get("FORKFLOW_BENCH_ROUNDS", sized("3", "1")))


def our_round(folder: Path, project: Path, databases: Iterator[str] | None, noop: bool) -> Run:
    """`doit deploy` against a fresh server; with `noop`, then the no-op runs against `doit list`."""
    with prefect_server(folder / "server", databases) as server:
        config = write_config(folder, project, server.api)
        run = measured(server, partial(doit, config, "deploy"))
        if noop:
            settle(server)
            medians = interleaved_medians(partial(doit, config, "deploy"), partial(doit, config, "list", report=False))
            changed = interleaved_medians(partial(changed_deploy, config, project, iter(range(1000, 2000))),
                                          partial(doit, config, "list", report=False))
            (project / "prefect.yaml").write_text(ORIGINAL[project], encoding="utf-8")
            coded = interleaved_medians(partial(code_changed_deploy, config, project, iter(range(1000, 2000))),
                                        partial(doit, config, "list", report=False))
            (project / "flows" / "flow_0.py").write_text(FLOW.format(index=0), encoding="utf-8")
            run = dataclasses.replace(run, noop=medians, changed=changed, code_changed=coded)
    return run


ORIGINAL: dict[Path, str] = {}


def changed_deploy(config: Path, project: Path, values: Iterator[int]) -> dict[str, Any]:
    """`doit deploy` after the first deployment's parameters changed (a new value each call: one write)."""
    file = project / "prefect.yaml"
    text = ORIGINAL.setdefault(project, file.read_text(encoding="utf-8"))
    data = yaml.safe_load(text)
    data["deployments"][0]["parameters"]["x"] = next(values)
    file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return doit(config, "deploy")


def code_changed_deploy(config: Path, project: Path, values: Iterator[int]) -> dict[str, Any]:
    """`doit deploy` after the first flow's code changed (a new body each call: its deployment's version changes)."""
    text = FLOW.format(index=0).replace("    return x\n", f"    return x + {next(values)}\n")
    (project / "flows" / "flow_0.py").write_text(text, encoding="utf-8")
    return doit(config, "deploy")


def settle(server: Server, limit: float = 60.0) -> None:
    """Wait until the server has worked off what the first deploy left it (its event services handle the
    800 writes' events for seconds afterwards): under 5% of a core over a second, at most `limit` seconds.
    The no-op runs then measure a second deploy against a server at rest, as a later run finds it."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.cpu()
        time.sleep(1.0)
        if server.cpu() - before < 0.05:
            return


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    server_cpu: float
    result: Any = None
    noop: Any = None
    changed: Any = None
    code_changed: Any = None


def measured(server: Server, work: Callable[[], Any]) -> Run:
    """Wall time of `work` and the CPU seconds the server spent meanwhile."""
    before = server.cpu()
    with stopwatch() as elapsed:
        result = work()
    return Run(elapsed(), server.cpu() - before, result)


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda run: run.seconds)
    return ordered[len(ordered) // 2]


# ---------------------------------------------------------------- the project


def generate(repo: Path, count: int = COUNT) -> Path:
    """A git repository whose root holds flows/ and a prefect.yaml with `count` deployments."""
    flows = repo / "flows"
    flows.mkdir(parents=True)
    for index in range(count):
        (flows / f"flow_{index}.py").write_text(FLOW.format(index=index))
    deployments = []
    for index in range(count):
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
    done = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args], check=False,
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
    done = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], check=False, cwd=project, capture_output=True, text=True,
                          env={**os.environ, "PREFECT_API_URL": api}, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def deployment_bodies(api: str) -> list[dict[str, Any]]:
    """What `prefect deploy` wrote, as the create bodies that would write it again (flow name included)."""
    from tasks.adapters.prefect import client

    keep = ("name", "entrypoint", "description", "version", "parameters", "parameter_openapi_schema",
            "enforce_parameter_schema", "tags", "work_pool_name", "work_queue_name", "job_variables", "pull_steps",
            "paused", "concurrency_limit")
    items: list[dict[str, Any]] = []
    flows: dict[str, str] = {}
    with client(api) as http:
        for path, found in (("deployments/filter", items), ("flows/filter", None)):
            page: list[dict[str, Any]] = [{}]
            offset = 0
            while page:
                page = http.post(path, json={"limit": 200, "offset": offset}).json()
                offset += len(page)
                if found is not None:
                    found.extend(page)
                else:
                    flows.update({flow["id"]: flow["name"] for flow in page})
    return [{**{key: item.get(key) for key in keep}, "flow_name": flows[item["flow_id"]],
             "schedules": [{key: s.get(key) for key in ("schedule", "active", "parameters", "slug")}
                           for s in item.get("schedules") or []]} for item in items]


def raw_loop(bodies: list[dict[str, Any]], api: str) -> None:
    """The floor: one request after another, a flow then its deployment, the same bodies, no reads, no checks."""
    from tasks.adapters.prefect import client

    with client(api) as http:
        for body in bodies:
            flow_id = post(http, "flows/", {"name": body["flow_name"]})["id"]
            post(http, "deployments/", {**{k: v for k, v in body.items() if k != "flow_name"}, "flow_id": flow_id})


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


@dataclasses.dataclass(frozen=True)
class Server:
    api: str
    pid_file: Path

    def cpu(self) -> float:
        """CPU seconds used so far by the server's processes (its process group)."""
        return group_cpu_seconds(int(self.pid_file.read_text().split()[0]))


def group_cpu_seconds(group: int) -> float:
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def prefect_server(folder: Path, databases: Iterator[str] | None) -> Iterator[Server]:
    """A fresh local Prefect server (SQLite, or the next PostgreSQL database) with the bench's work pool."""
    from tasks.adapters import services as svc
    from tasks.adapters.prefect import ensure_work_pool
    from tasks.pipeline.credentials import local_prefect_auth
    from tasks.pipeline.settings import load_settings
    from tasks.stages.services import prepare, service_spec

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
        yield Server(api, spec.pid_file)
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
