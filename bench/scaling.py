"""How forkflow's costs grow with the number of deployments: the curves, size by size.

For each size (flows with one deployment each, one environment, on a local
Prefect server of the bench's own):
- start-up: `doit list` at this size vs `doit list` at the smallest size
  (target: within 1.15x at the largest);
- a no-op `doit deploy` (flows and deploy up to date) vs `doit list` of the
  same config (target: <= 1.2);
- `doit deploy --dry-run` (the whole plan against the server, no write) and
  the first deploy, each per deployment: flat or falling means linear or
  better.
Medians of interleaved runs; one line per size and case, so the curve reads
top to bottom. Run alone with `python -m bench.scaling`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, interleaved_medians, print_results, sized, stopwatch
from bench.deploy import ensure_pools, generate_flows, prefect_server

REPO = Path(__file__).resolve().parent.parent
SIZES = sized((100, 1000, 5000), (5, 20))
ROUNDS = sized(5, 1)


def write_config(folder: Path, api: str) -> Path:
    config = folder / "pipeline.toml"
    config.write_text(f"""[project]
name = "scale"

[flows]
path = "repo/flows"
config = "repo/flows/deployments.yaml"

[environments.dev]
prefect_api_url = "{api}"
work_pool = "bench-dev"
branch = "*"
""")
    return config


def doit(config: Path, *args: str) -> str:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                          env=env, capture_output=True, text=True, check=False, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"doit {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def measure(folder: Path, size: int, api: str) -> dict[str, float]:
    generate_flows(folder / "repo" / "flows", size)
    config = write_config(folder, api)
    with stopwatch() as first:
        doit(config, "deploy")
    noop, listing, _ = interleaved_medians(lambda: doit(config, "deploy"), lambda: doit(config, "list"), ROUNDS)
    with stopwatch() as plan:
        doit(config, "deploy", "--dry-run")
    return {"first": first(), "noop": noop, "list": listing, "plan": plan()}


def run() -> list[Result]:
    results: list[Result] = []
    os.environ["FORKFLOW_ENVIRONMENT"] = "dev"
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-scaling-") as tmp, prefect_server(Path(tmp)) as api:
        ensure_pools(api)
        curve = {size: measure(Path(tmp) / f"size-{size}", size, api) for size in SIZES}
    smallest = curve[SIZES[0]]
    for size, figures in curve.items():
        results += [
            Result(f"scaling {size} deployments: doit list vs doit list at {SIZES[0]}", figures["list"],
                   smallest["list"], "<= 1.15 at the largest", f"median of {ROUNDS}"),
            Result(f"scaling {size} deployments: no-op doit deploy vs doit list", figures["noop"], figures["list"],
                   "<= 1.2", f"median of {ROUNDS} interleaved runs"),
            Result(f"scaling {size} deployments: deploy --dry-run per deployment vs at {SIZES[0]}",
                   figures["plan"] / size, smallest["plan"] / SIZES[0], "<= 1.0 (linear or better)",
                   f"{figures['plan']:.2f}s in all"),
            Result(f"scaling {size} deployments: first deploy per deployment vs at {SIZES[0]}",
                   figures["first"] / size, smallest["first"] / SIZES[0], "<= 1.0 (linear or better)",
                   f"{figures['first']:.2f}s in all"),
        ]
    return results


if __name__ == "__main__":
    print_results(run())
