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


def main(selected: list[str]) -> int:
    lines = ["# Benchmark results\n", f"- date: {time.strftime('%Y-%m-%d %H:%M')}", f"- machine: {machine()}", ""]
    failed = 0
    for name in modules(selected):
        print(f"== bench.{name}", flush=True)
        try:
            results: list[Result] = importlib.import_module(f"bench.{name}").run()
        except Exception:
            failed += 1
            traceback.print_exc()
            lines.append(f"- {name}: FAILED (see the bench output)")
            continue
        for result in results:
            print(result.line(), flush=True)
            lines.append(f"- {result.line()}")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
