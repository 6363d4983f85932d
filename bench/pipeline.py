"""The whole pipeline on a generated Prefect-shaped workspace.

Core, client and 18 integrations; images for 2 Python versions x 2 flavors;
200 flows deployed to 2 environments; local index, registry and Prefect
server. Three runs of `doit`:

- full run (baseline for the others);
- no-op run: target under 1.5 s and zero tasks executed (fetches and
  service health checks aside);
- one integration changed (a commit and a new tag): target one wheel, the
  images containing it, its upload, nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import Result, doit_json, free_port, print_results, sized, stopwatch
from bench.deploy import FLOW_TEMPLATE, both_environments, deployment_specs, flows_sections
from bench.monorepo import generate, git

REPO = Path(__file__).resolve().parent.parent
FLOWS = sized(200, 3)
ALWAYS_RUN = ("sync:fetch", "services:", "matrix")


def add_flows(work: Path) -> None:
    flows = work / "flows"
    shutil.rmtree(flows / "orbit_flows")
    package = flows / "bench_flows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for index in range(FLOWS):
        (package / f"flow_{index}.py").write_text(FLOW_TEMPLATE.format(index=index))
    (flows / "deployments.yaml").write_text(yaml.safe_dump(deployment_specs(FLOWS), sort_keys=False))
    dockerfile = flows / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("orbit_flows", "bench_flows"))


def extend_config(config: Path) -> None:
    ports = {name: free_port() for name in ("index", "registry", "prefect")}
    api = f"http://127.0.0.1:{ports['prefect']}/api"
    config.write_text(config.read_text() + f"""
[index]
url = "http://127.0.0.1:{ports['index']}"

[images]
registry = "127.0.0.1:{ports['registry']}"
python = ["3.11", "3.12"]
flavors = ["base", "kubernetes"]
base_image = "python:{{python}}-slim"
default_python = "3.12"
{flows_sections(api, "fork/flows")}
[services.index]
port = {ports['index']}

[services.registry]
port = {ports['registry']}

[services.prefect]
port = {ports['prefect']}
""")


def prepare(folder: Path) -> Path:
    config = generate(folder)
    work = folder / "work"
    git(work, "checkout", "-q", "release")
    add_flows(work)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "feat(flows): 200 flows")
    git(work, "push", "-q", str(folder / "origin.git"), "release")
    extend_config(config)
    return config


def executed(results: dict[str, str]) -> list[str]:
    return sorted(name for name, status in results.items()
                  if status == "success" and not name.startswith(ALWAYS_RUN))


def change_one_integration(folder: Path, config: Path) -> None:
    fork = config.parent / "fork"
    module = fork / "src" / "integrations" / "orbit-redis" / "orbit_redis" / "module_3.py"
    module.write_text("VALUE = 'changed'\n")
    git(fork, "commit", "-q", "-am", "fix(redis): new value")
    git(fork, "tag", "orbit-redis-0.4.1")


def stop_services(config: Path) -> None:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), "services-stop"], check=False,
                   env=env, capture_output=True)


def run() -> list[Result]:
    both_environments()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        config = prepare(Path(tmp))
        try:
            with stopwatch() as full:
                doit_json(config, "-n", "2")
            with stopwatch() as noop:
                second = doit_json(config)
            change_one_integration(Path(tmp), config)
            with stopwatch() as one:
                third = doit_json(config, "-n", "2")
        finally:
            stop_services(config)
    return [
        Result("pipeline no-op run", noop(), full(), "under 1.5 s, 0 tasks",
               f"{len(executed(second))} tasks executed {executed(second)[:5]}; baseline is the full run"),
        Result("pipeline one integration changed", one(), full(), "one wheel + its images + its upload",
               f"executed: {', '.join(executed(third))}; baseline is the full run"),
    ]


if __name__ == "__main__":
    print_results(run())
