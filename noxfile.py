"""nox sessions: the same steps locally and in CI.

Pipeline sessions call doit tasks rather than re-implementing them. Only
`lint`, `typecheck` and `tests` run by default; the rest are slow or change
things (push, upload, deploy) and are run by name: `nox -s build`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv" if shutil.which("uv") else "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
ROOT = Path(__file__).parent


def install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    # byte code saved beside the sources (an editable install compiles nothing, uv compiles no package it
    # installs): every doit start of the session loads it instead of compiling forkflow's modules and its
    # dependencies again, even where PYTHONDONTWRITEBYTECODE is set
    session.run("python", "-m", "compileall", "-q", "tasks", "dodo.py", silent=True)
    session.run("python", "-c", COMPILE_DEPENDENCIES, silent=True)


# compiles the session's site-packages once (later sessions find the byte code there and compile nothing)
COMPILE_DEPENDENCIES = "import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2)"


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
    """Type-check the pipeline, its tests, benches, dodo.py and noxfile.py with mypy --strict."""
    install(session)
    session.run("mypy")


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """Run the whole pipeline on the embedded demo workspace (`doit` with no arguments)."""
    install(session)
    session.run("doit", *session.posargs)


@nox.session(python=PYTHON, default=False)
def services(session: nox.Session) -> None:
    """Start the local services (package index, registry, Prefect server)."""
    install(session)
    session.run("doit", "services")


@nox.session(python=PYTHON, default=False)
def sync(session: nox.Session) -> None:
    """Sync the fork with upstream (`nox -s sync -- --dry-run` for the plan only)."""
    install(session)
    session.run("doit", "sync", *session.posargs)


@nox.session(python=PYTHON, default=False)
def build(session: nox.Session) -> None:
    """Versions and wheels: `doit version wheel` (two builds at a time)."""
    install(session)
    session.run("doit", "-n", "2", "version", "wheel", *session.posargs)


@nox.session(python=PYTHON, default=False)
def publish(session: nox.Session) -> None:
    """Upload the built wheels and sdists to the index (`-- --dry-run` lists them)."""
    install(session)
    session.run("doit", "publish", *session.posargs)


@nox.session(python=PYTHON, default=False)
def release_inputs(session: nox.Session) -> None:
    """Fingerprint what a release build is made from (`doit release-inputs`): a scheduled build runs when it changed."""
    install(session)
    session.run("doit", "release-inputs", *session.posargs)


@nox.session(python=PYTHON, default=False)
def release_github(session: nox.Session) -> None:
    """Create or update the GitHub release of the shipped version from notes.md and image.json (`doit release-github`)."""
    install(session)
    session.run("doit", "release-github", *session.posargs)


@nox.session(python=PYTHON, default=False)
def images(session: nox.Session) -> None:
    """Build, smoke-test and push images; `nox -s images -- 3.12 base` builds one matrix cell."""
    install(session)
    if len(session.posargs) >= 2:
        python, flavor, *rest = session.posargs
        session.run("doit", f"image:{python}-{flavor}", *rest)
    else:
        session.run("doit", "image", *session.posargs)


@nox.session(name="images-join", python=PYTHON, default=False)
def images_join(session: nox.Session) -> None:
    """Put each image's index together from its platforms' images built apart (FORKFLOW_IMAGE_PLATFORM)."""
    install(session)
    session.run("doit", "image-join", *session.posargs)


@nox.session(python=PYTHON, default=False)
def matrix(session: nox.Session) -> None:
    """Print the image matrix as JSON for a CI `fromJSON` (one cell per Python x flavor)."""
    install(session)
    session.run("doit", "matrix", silent=True)
    data = json.loads((state_dir() / "reports" / "matrix.json").read_text(encoding="utf-8"))
    print(json.dumps(data, separators=(",", ":")))


@nox.session(python=PYTHON, default=False)
def deploy(session: nox.Session) -> None:
    """Deploy the flows; `nox -s deploy -- dev` deploys to one environment."""
    install(session)
    env = {}
    args = list(session.posargs)
    if args and not args[0].startswith("-"):
        env["FORKFLOW_ENVIRONMENT"] = args.pop(0)
    session.run("doit", "deploy", *args, env=env)


@nox.session(python=PYTHON, default=False)
def plan(session: nox.Session) -> None:
    """What merging into a branch would do, changing nothing: `nox -s plan -- --base main` (see tasks/plan.py)."""
    install(session)
    session.run("python", "-m", "tasks.plan", *session.posargs)


@nox.session(python=PYTHON, default=False)
def promote(session: nox.Session) -> None:
    """Promote deployments: `nox -s promote -- dev prod [a,b]` (same image and code version)."""
    install(session)
    args = list(session.posargs)
    if len(args) < 2:
        session.error("usage: nox -s promote -- <from-env> <to-env> [flow,flow]")
    command = ["doit", "promote", "--from", args[0], "--to", args[1]]
    if len(args) > 2 and not args[2].startswith("-"):
        command += ["--flows", args[2]]
    session.run(*command, *[a for a in args[2:] if a.startswith("-")])


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run every benchmark in bench/ and write bench/RESULTS.md (ours vs baseline, as ratios)."""
    install(session)
    session.run("python", "-m", "bench", *session.posargs)


def state_dir() -> Path:
    import os
    import tomllib

    config = Path(os.environ.get("FORKFLOW_CONFIG", ROOT / "pipeline.toml"))
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    return config.parent / str(data.get("state_dir", ".forkflow"))
