"""`nox -s <session> [-- args]` as the workflows call it: the session of ./noxfile.py, run in this interpreter's
environment (forkflow is installed already) instead of a fresh virtualenv."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any


class Session:
    def __init__(self, posargs: list[str]) -> None:
        self.posargs = posargs

    def install(self, *args: str, **kwargs: Any) -> None:
        """Nothing to install: the runner's interpreter has forkflow and its dependencies."""

    def run(self, *args: str, env: dict[str, str] | None = None, silent: bool = False, **kwargs: Any) -> str | None:
        import os

        program = {"doit": [sys.executable, "-m", "doit"], "python": [sys.executable],
                   "pytest": [sys.executable, "-m", "pytest"]}.get(args[0], [args[0]])
        done = subprocess.run([*program, *args[1:]], env={**os.environ, **(env or {})}, check=False,
                              capture_output=silent, text=True)
        if done.returncode != 0:
            if silent:
                sys.stderr.write(done.stdout + done.stderr)
            print(f"nox > Command {' '.join(args)} failed with exit code {done.returncode}", file=sys.stderr)
            raise SystemExit(1)
        return done.stdout if silent else None

    def error(self, message: str) -> None:
        print(f"nox > {message}", file=sys.stderr)
        raise SystemExit(1)

    def log(self, message: str) -> None:
        print(f"nox > {message}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "-s":
        print(f"nox stand-in: expected `nox -s <session> [-- args]`, got {argv}", file=sys.stderr)
        return 2
    name, rest = argv[1], argv[2:]
    posargs = rest[1:] if rest[:1] == ["--"] else rest
    spec = importlib.util.spec_from_file_location("noxfile", Path.cwd() / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, name.replace("-", "_"))(Session(posargs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
