"""Run doit with a chosen multiprocessing start method: `python tests/start_method.py spawn -n 2 wheel`.

Python's default is fork on Linux up to 3.13, forkserver from 3.14, spawn on macOS; `doit -n N` must work with each.
"""

from __future__ import annotations

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1], force=True)
    from doit.doit_cmd import DoitMain

    sys.argv = ["doit", *sys.argv[2:]]
    sys.exit(DoitMain().run(sys.argv[1:]))
