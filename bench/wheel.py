"""wheel stage on a Prefect-shaped monorepo (core + client + 18 integrations).

(a) full build: `doit -n 2 wheel` vs a sequential `python -m build` loop over
the same packages (the usual release script: isolated builds, one by one);
(b) no change: a second `doit wheel` (target under 1 s, zero builds);
(c) one integration touched: `doit wheel` vs one `python -m build` of it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, doit_json, print_results, stopwatch
from bench.monorepo import generate, package_dirs

REPO = Path(__file__).resolve().parent.parent


def builds(results: dict[str, str]) -> int:
    return sum(1 for name, status in results.items()
               if name.startswith("wheel:") and name != "wheel:report" and status == "success")


def build_script(dirs: list[Path], outdir: Path) -> None:
    for folder in dirs:
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(outdir), str(folder)],
                       capture_output=True, check=True)


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-wheel-") as tmp:
        config = generate(Path(tmp))
        doit_json(config, "checkout")
        fork = Path(tmp) / "fork"
        with stopwatch() as baseline:
            build_script(package_dirs(fork), Path(tmp) / "baseline-dist")
        with stopwatch() as ours:
            full = doit_json(config, "-n", "2", "wheel")
        with stopwatch() as noop:
            second = doit_json(config, "wheel")
        touched = fork / "src" / "integrations" / "orbit-redis" / "orbit_redis" / "module_3.py"
        touched.write_text("VALUE = 'changed'\n")
        with stopwatch() as one:
            incremental = doit_json(config, "wheel")
        with stopwatch() as single:
            build_script([touched.parent.parent], Path(tmp) / "single-dist")
    return [
        Result("wheel (a) full build, 20 packages", ours(), baseline(), "<= 0.40 (2.5x faster)",
               f"{builds(full)} builds with doit -n 2 vs sequential isolated python -m build"),
        Result("wheel (b) no change", noop(), ours(), "under 1 s, 0 builds",
               f"{builds(second)} builds; baseline is the full build"),
        Result("wheel (c) one integration touched", one(), single(), "<= 1.2",
               f"{builds(incremental)} build(s); baseline is one python -m build of that package"),
    ]


if __name__ == "__main__":
    print_results(run())
