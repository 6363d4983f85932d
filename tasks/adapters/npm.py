"""Thin adapter over node and npm: find them, `npm ci`, `npm run build`."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Sequence
from pathlib import Path

from tasks.adapters.run import run
from tasks.core.errors import ForkflowError

TIMEOUT = 1800


def require_tools(what: str, fix: str) -> None:
    """Stop with `fix` when node or npm is not on PATH (before anything else is done)."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        raise ForkflowError(f"{what} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                            "not on PATH", fix=fix)


@functools.cache
def node_version() -> str:
    return run(["node", "--version"], timeout=60).stdout.strip()


def npm(folder: Path, command: Sequence[str], fix: str) -> str:
    """Run an npm command in `folder`; its output (quiet unless it fails)."""
    proc = run(list(command), cwd=folder, env={"CI": "true", "npm_config_update_notifier": "false"},
               timeout=TIMEOUT, fix=fix)
    return (proc.stdout + proc.stderr).strip()
