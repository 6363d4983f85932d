"""First deploys at the floor, size by size: ours against the raw loop of the same writes.

For each size (100 and 1,600 deployments in a prefect.yaml project, as in
bench/prefect_yaml.py, which measures 400) and each database (SQLite and
PostgreSQL): ROUNDS alternating rounds, each against a fresh server, of
- ours: the whole `doit deploy` in an empty state folder (start-up, flow
  discovery, Prefect's settings and rules, the plan, the writes);
- the raw loop: one request after another, a flow then its deployment, with
  the bodies ours wrote (read back from the server of ours' first round), no
  reads, no checks, nothing else.
The medians are compared (target: ours/raw <= 1.0). The load average is
recorded with every figure: on a loaded machine SQLite answers 'server busy'
(503) and both sides wait it out. `FORKFLOW_BENCH_DATABASES=sqlite` (or
`postgresql`) runs one half only.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from bench.common import Result, print_results, sized
from bench.prefect_yaml import (
    DATABASES,
    deployment_bodies,
    doit,
    generate,
    measured,
    postgres,
    prefect_server,
    raw_loop,
    write_config,
)

SIZES = sized((100, 1600), (4,))
ROUNDS = sized(3, 1)


def run() -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="forkflow-bench-floors-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # the postgres user must reach its cluster inside
        for size in SIZES:
            project = generate(root / f"repo-{size}", size)
            if "sqlite" in DATABASES:
                results.append(contest(root / f"sqlite-{size}", project, size, "SQLite", None))
            if "postgresql" in DATABASES:
                with postgres(root / f"pg-{size}") as databases:
                    results.append(contest(root / f"postgres-{size}", project, size, "PostgreSQL", databases))
    return results


def contest(root: Path, project: Path, size: int, kind: str, databases: Iterator[str] | None) -> Result:
    ours: list[float] = []
    raw: list[float] = []
    bodies: list[dict[str, object]] = []
    writes = retries = 0
    for number in range(ROUNDS):
        folder = root / f"ours-{number}"
        with prefect_server(folder / "server", databases) as server:
            run = measured(server, partial(doit, write_config(folder, project, server.api), "deploy"))
            ours.append(run.seconds)
            writes, retries = run.result["writes"], retries + run.result["retries"]
            if not bodies:
                bodies = deployment_bodies(server.api)
        with prefect_server(root / f"raw-{number}", databases) as server:
            raw.append(measured(server, partial(raw_loop, bodies, server.api)).seconds)
    if len(bodies) != size:
        raise RuntimeError(f"{kind}: ours made {len(bodies)} deployments, not {size}")
    return Result(f"first deploy, {size} deployments, {kind}: ours vs a raw loop of the same writes",
                  statistics.median(ours), statistics.median(raw), "<= 1.0",
                  f"medians of {ROUNDS} alternating rounds, each against a fresh server; {writes} writes a round, "
                  f"{retries} retried in all; the raw loop sends ours' bodies, a flow then its deployment, one after "
                  f"another")


if __name__ == "__main__":
    print_results(run())
