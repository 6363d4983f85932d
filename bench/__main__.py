"""Run every benchmark in bench/ and write bench/RESULTS.md.

`python -m bench` runs them all; `python -m bench wheel sync` runs some.
Each line is ours vs a baseline measured in the same run, and the ratio.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from bench.common import Result

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


def run_module(name: str) -> tuple[str, bool]:
    """One module's section: its results (ours vs baseline, ratio), when and where they were measured."""
    stamp = f"measured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}"
    try:
        results: list[Result] = importlib.import_module(f"bench.{name}").run()
    except Exception:
        traceback.print_exc()
        return f"- FAILED ({stamp}; see the bench output)", False
    for result in results:
        print(result.line(), flush=True)
    return "\n".join([f"_{stamp}_", "", *(f"- {result.line()}" for result in results)]), True


def main(selected: list[str]) -> int:
    sections = previous_sections()
    failed = 0
    for name in modules(selected):
        print(f"== bench.{name}", flush=True)
        sections[name], ok = run_module(name)
        failed += not ok
    lines = ["# Benchmark results", "", "Each line: ours vs a baseline measured in the same run, and the ratio.", ""]
    for name in sorted(sections):
        lines += [f"## {name}", "", sections[name], ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
