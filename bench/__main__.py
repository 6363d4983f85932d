"""Run every benchmark in bench/ and write bench/RESULTS.md.

`python -m bench` runs them all; `python -m bench wheel sync` runs some.
Each line is ours vs a baseline measured in the same run, and the ratio;
each section says when, on what, under which load and whether byte-code
caches were there. `python -m bench --smoke` runs every bench at a small
size to prove it still runs, and leaves RESULTS.md alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from bench.common import SMOKE_ENV, Result

HERE = Path(__file__).parent
SKIP = {"__init__", "__main__", "common", "monorepo"}


def modules(selected: list[str]) -> list[str]:
    found = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP)
    return [m for m in found if not selected or m in selected]


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def previous_sections() -> dict[str, str]:
    """Sections of an earlier RESULTS.md, by module, so a partial run keeps the others."""
    file = HERE / "RESULTS.md"
    if not file.exists():
        return {}
    sections = {}
    for chunk in file.read_text(encoding="utf-8").split("\n## ")[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body.strip()
    return sections


def bytecode_caches() -> str:
    """Whether forkflow's modules and its dependencies (doit's, as their sample) start from byte-code caches (a CI
    image with PYTHONDONTWRITEBYTECODE does not; uv installs packages without them)."""
    tag = sys.implementation.cache_tag
    spec = importlib.util.find_spec("doit")
    doit_dir = Path(spec.origin).parent if spec is not None and spec.origin else HERE
    found = {"forkflow": any((HERE.parent / "tasks").rglob(f"__pycache__/*.{tag}.pyc")),
             "dependencies": any(doit_dir.glob(f"__pycache__/*.{tag}.pyc"))}
    writes = "" if not os.environ.get("PYTHONDONTWRITEBYTECODE") else ", not written"
    if all(found.values()):
        return f"byte-code caches present{writes}"
    absent = " and ".join(name for name, cached in found.items() if not cached)
    return f"byte-code caches absent for {absent}{writes}"


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_module(name: str) -> tuple[str, bool]:
    """One module's section: its results (ours vs baseline, ratio), when and where they were measured, the load
    before and after, and whether byte-code caches were there."""
    before, caches = load(), bytecode_caches()
    environ = dict(os.environ)
    try:
        results: list[Result] = importlib.import_module(f"bench.{name}").run()
    except Exception:
        traceback.print_exc()
        return f"- FAILED ({time.strftime('%Y-%m-%d %H:%M')} on {machine()}; see the bench output)", False
    finally:  # what one bench sets (FORKFLOW_ENVIRONMENT, credentials) is not the next one's
        os.environ.clear()
        os.environ.update(environ)
    stamp = (f"measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; {before} before, {load()} after; "
             f"{caches}")
    for result in results:
        print(result.line(), flush=True)
    return "\n".join([f"_{stamp}_", "", *(f"- {result.line()}" for result in results)]), True


def smoke_run(selected: list[str]) -> int:
    """Every selected bench at its small size; a failure fails the run, nothing is written."""
    os.environ[SMOKE_ENV] = "1"
    failed = []
    for name in modules(selected):
        print(f"== bench.{name} (smoke size)", flush=True)
        if not run_module(name)[1]:
            failed.append(name)
    print(f"smoke: {len(modules(selected)) - len(failed)} of {len(modules(selected))} benches ran"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def main(selected: list[str]) -> int:
    if "--smoke" in selected:
        return smoke_run([name for name in selected if name != "--smoke"])
    unknown = sorted(set(selected) - set(modules([])))
    if unknown:
        print(f"bench: no bench named {', '.join(unknown)}; there are: {', '.join(modules([]))}", file=sys.stderr)
        return 2
    sections = previous_sections()
    failed = 0
    for name in modules(selected):
        print(f"== bench.{name}", flush=True)
        sections[name], ok = run_module(name)
        failed += not ok
        write_results(sections)  # after each bench: a run stopped later keeps what it measured
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


def write_results(sections: dict[str, str]) -> None:
    lines = ["# Benchmark results", "", "Each line: ours vs a baseline measured in the same run, and the ratio.", ""]
    for name in sorted(sections):
        lines += [f"## {name}", "", sections[name], ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
