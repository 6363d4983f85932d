"""httpx, imported without the parts forkflow never runs.

Importing httpx imports its command line (`httpx._main`: click, rich,
pygments) whenever those are installed, as they are beside Prefect, and the
first client imports httpcore, which imports trio whenever trio is installed,
for async code under trio. forkflow's requests are synchronous, so neither is
used; together they are most of httpx's start (about 0.1-0.2 s of a deploy that
writes one deployment). Both are held out while httpx and httpcore load and
are importable again afterwards.
"""

from __future__ import annotations

import importlib
import sys

UNUSED = ("httpx._main", "trio")


def load_httpx() -> None:
    """Import httpx and httpcore (once per process) without their unused parts; then `import httpx` is free."""
    if "httpcore" in sys.modules and "httpx" in sys.modules:
        return
    held = [name for name in UNUSED if name not in sys.modules]
    for name in held:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError meanwhile
    try:
        importlib.import_module("httpx")
        importlib.import_module("httpcore")
    finally:
        for name in held:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
