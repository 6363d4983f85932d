"""nox sessions: the same steps locally and in CI. Pipeline sessions call doit tasks.

Slow sessions (demo, bench and the pipeline stages) are not run by default.
"""

from __future__ import annotations

import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv" if shutil.which("uv") else "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (real git, index, registry, Docker and Prefect server)."""
    install(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and common mistakes with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "tasks", "tests", "bench", "dodo.py", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the pipeline with mypy."""
    install(session)
    session.run("mypy")


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """Run the whole pipeline on the embedded demo workspace."""
    install(session)
    session.run("doit", *session.posargs)


@nox.session(python=PYTHON, default=False)
def services(session: nox.Session) -> None:
    """Start the local services (package index, registry, Prefect server)."""
    install(session)
    session.run("doit", "services")
