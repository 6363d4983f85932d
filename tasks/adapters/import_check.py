"""Run by a fresh virtual environment's Python: import every package of one installed distribution.

Standalone (standard library only): `python import_check.py <distribution>` prints one JSON
line with the installed version, the packages imported, those that failed (with the error),
and subpackages that need a module no installed distribution provides (an optional
dependency). A top-level package must always import. Run it with `python -I` so that
nothing beside this file shadows what is installed.
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib import metadata


def packages_of(dist: metadata.Distribution) -> list[str]:
    """Dotted names of the distribution's packages (folders with __init__.py) and top-level modules."""
    names = set()
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
            continue
        if file.name == "__init__.py":
            names.add(".".join(parts[:-1]))
        elif len(parts) == 1 and file.suffix == ".py":
            names.add(file.stem)
    return sorted(names)


def check(name: str) -> dict[str, object]:
    dist = metadata.distribution(name)
    packages = packages_of(dist)
    own = {package.split(".")[0] for package in packages}
    imported, failed, optional = [], {}, {}
    for package in packages:
        try:
            importlib.import_module(package)
            imported.append(package)
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if missing.split(".")[0] in own or "." not in package:
                failed[package] = f"ModuleNotFoundError: {err}"
            else:
                optional[package] = missing
        except Exception as err:  # any error at import time is the package's failure, reported by name
            failed[package] = f"{type(err).__name__}: {err}"
    return {"version": dist.version, "imported": imported, "failed": failed, "optional": optional}


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1])))
