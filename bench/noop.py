"""A no-op run of the embedded demo vs `doit list`, and `doit list` vs doit's own floor.

The demo pipeline runs once in full (services, wheels, images, deploys); then,
alternating in one run, a second `doit` (nothing to do, the command a user
runs) against `doit list` on the same config (target: at most 1.2x), and
`doit list` against `python3 -m doit --version` (doit's own start-up; target:
at most 3x, and reported so `doit list` cannot be made slower to flatter the
first ratio).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, doit_json, interleaved_medians, print_results, sized

REPO = Path(__file__).resolve().parent.parent
ROUNDS = sized(15, 1)


def demo_config(folder: Path) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.conftest import demo_config_text
    from tests.helpers import free_port

    config = folder / "pipeline.toml"
    config.write_text(demo_config_text({name: free_port() for name in ("index", "registry", "prefect")}))
    return config


def doit(config: Path, *args: str) -> None:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                   env=env, capture_output=True, check=True)


def version_only() -> None:
    subprocess.run([sys.executable, "-m", "doit", "--version"], capture_output=True, check=True)


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp:
        config = demo_config(Path(tmp))
        try:
            doit_json(config, "-n", "2")
            noop, listing, _ = interleaved_medians(lambda: doit(config), lambda: doit(config, "list"), ROUNDS)
            second = doit_json(config)
            listed, floor, _ = interleaved_medians(lambda: doit(config, "list"), version_only, ROUNDS)
        finally:
            doit(config, "services-stop")
    ran = sorted(name for name, status in second.items() if status == "success")
    return [
        Result("no-op demo run vs doit list", noop, listing, "<= 1.2",
               f"median of {ROUNDS} interleaved runs; tasks that still executed: {', '.join(ran) or 'none'}"),
        Result("doit list vs python3 -m doit --version", listed, floor, "<= 3",
               f"median of {ROUNDS} interleaved runs; doit's own start-up is the floor"),
    ]


if __name__ == "__main__":
    print_results(run())
