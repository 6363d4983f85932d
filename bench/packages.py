"""A no-op `doit wheel` on a 100-package monorepo vs `doit list` of the same config.

The monorepo is the benchmarks' Prefect-shaped one (bench/monorepo.py) with
98 integrations instead of 18: core, client and 98 integrations, each with its
own tag. Every wheel is built once (`doit -n 2 wheel`); then, alternating in one
run, `doit wheel` with nothing to do against `doit list` (target: at most
1.2x), so start-up and the up-to-date checks cannot grow with the packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, doit_json, interleaved_medians, print_results, sized
from bench.monorepo import generate

REPO = Path(__file__).resolve().parent.parent
INTEGRATIONS = sized(98, 3)
ROUNDS = sized(9, 1)


def doit(config: Path, *args: str) -> None:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                   env=env, capture_output=True, check=True)


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-packages-") as tmp:
        names = tuple(f"part{index:03d}" for index in range(INTEGRATIONS))
        config = generate(Path(tmp), names)
        doit_json(config, "checkout")
        first = doit_json(config, "-n", "2", "wheel")
        built = sum(1 for name, status in first.items()
                    if name.startswith("wheel:") and name != "wheel:report" and status == "success")
        noop, listing, _ = interleaved_medians(lambda: doit(config, "wheel"), lambda: doit(config, "list"), ROUNDS)
        second = doit_json(config, "wheel")
    ran = sorted(name for name, status in second.items() if status == "success")
    return [
        Result(f"no-op doit wheel, {INTEGRATIONS + 2} packages, vs doit list", noop, listing, "<= 1.2",
               f"median of {ROUNDS} interleaved runs; the first run built {built} packages; "
               f"tasks that still executed: {', '.join(ran) or 'none'}"),
    ]


if __name__ == "__main__":
    print_results(run())
