"""What several stages read from the fork's checkout, read once per run.

The file listing of a checkout (each file and an id of its content, see
`adapters.git.file_entries`) feeds the wheels' and the flows' up-to-date
checks. It is worked out once per process while the checkout's index is
unchanged, and a run can send it early (see tasks.pipeline.prefetch).
"""

from __future__ import annotations

import copy
import functools
from functools import partial
from pathlib import Path
from typing import Any

from tasks.adapters import venv
from tasks.adapters.console import say
from tasks.adapters.git import Git, file_entries
from tasks.core.errors import ConfigError, ForkflowError
from tasks.core.packages import Package, discover, without_skipped
from tasks.core.values import parse_toml, sha256_hex
from tasks.pipeline import prefetch
from tasks.pipeline.settings import Settings, parsed_once, read_json, write_text_atomically


@functools.cache
def cached_entries(repo: Path, index_mtime: int) -> dict[str, str]:
    entries: dict[str, str] = prefetch.answer(entries_key(repo), partial(file_entries, repo))
    return entries


def entries_key(repo: Path) -> str:
    return f"entries:{repo}"


def checkout_entries(repo: Path) -> dict[str, str]:
    """The checkout's file listing, computed once per process while its index is unchanged."""
    repo = repo.resolve()
    index = repo / ".git" / "index"
    return cached_entries(repo, index.stat().st_mtime_ns if index.exists() else 0)


def ask_entries_early(repo: Path) -> None:
    repo = repo.resolve()
    if (repo / ".git").exists() and entries_key(repo) not in prefetch.SENT:  # asked once, the fork's and the flows'
        prefetch.send(entries_key(repo), partial(file_entries, repo))


def checkout_path(current: Settings) -> Path:
    assert current.fork_path is not None
    return current.fork_path


def read_pyproject(file: Path) -> dict[str, Any]:
    return parse_toml(file.read_bytes(), str(file))


def package_pyproject(file: Path) -> dict[str, Any]:
    """A checkout's pyproject.toml as `find_packages` reads it: parsed once per process while it stays the same
    file (`parsed_once`), since a run's task creators and checks find the packages several times. Each caller
    gets its own copy. (A build tree's file, written and read within one build, is read with `read_pyproject`.)"""
    parsed: dict[str, Any] = copy.deepcopy(parsed_once(file, read_pyproject))
    return parsed


def find_packages(current: Settings, root: Path | None = None) -> list[Package]:
    """The fork's packages, read from the checkout's pyproject files."""
    root = root or checkout_path(current)
    config = current.config.packages
    core_file = root / config.core / "pyproject.toml"
    if not core_file.exists():
        raise ConfigError(f"no core package: {core_file} does not exist", where="[packages] core",
                          fix="point [packages] core at the folder holding the core pyproject.toml")
    client = None
    if config.client and (root / config.client / "pyproject.toml").exists():
        client = (config.client, package_pyproject(root / config.client / "pyproject.toml"))
    integrations = [
        (folder.relative_to(root).as_posix(), package_pyproject(folder / "pyproject.toml"))
        for folder in matching(root / config.integrations)
        if (folder / "pyproject.toml").exists()
    ]
    flows = flows_project(current, root)
    found = discover((config.core, package_pyproject(core_file)), client, integrations, flows,
                     tuple(config.client_remove), tuple(config.client_keep))
    if not config.skip:
        return found
    pyprojects = [data for _, data in integrations] + [package_pyproject(core_file)] + ([flows[1]] if flows else [])
    return without_skipped(found, project_dependencies(pyprojects), config.skip)


def project_dependencies(pyprojects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """[project] name -> its [project] dependencies."""
    return {str(data.get("project", {}).get("name")): list(data.get("project", {}).get("dependencies", []))
            for data in pyprojects}


def flows_project(current: Settings, root: Path) -> tuple[str, dict[str, Any]] | None:
    """The flows project, when [flows] path lies inside the checkout and has a pyproject.toml."""
    if current.config.flows is None:
        return None
    folder = current.path(current.config.flows.path)
    if root not in folder.parents or not (folder / "pyproject.toml").exists():
        return None
    return folder.relative_to(root).as_posix(), package_pyproject(folder / "pyproject.toml")


def packages_if_cloned(current: Settings) -> list[Package]:
    """Packages in the checkout; none yet when it is not cloned (`doit list` on a fresh clone)."""
    if current.fork_path is None or not (current.fork_path / ".git").exists():
        return []
    return find_packages(current)


def demo_task_deps(current: Settings) -> list[str]:
    """Tasks other stages depend on so they can run on a fresh clone of the demo."""
    return ["demo"] if current.config.demo else []


def clone_action(origin: str, upstream: str, path: Path, release: str) -> dict[str, str]:
    if (path / ".git").exists():
        return {"made": f"{path} (exists)"}
    if path.exists() and any(path.iterdir()):
        raise ForkflowError(
            f"{path} exists but is not a git clone",
            where="[fork] path",
            fix="move the folder away or point [fork] path at an empty or missing folder",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    Git(path.parent).write("clone", "-q", "--origin", "origin", "--branch", release, origin, str(path),
                           fix=f"check that [fork] origin ({origin}) is reachable and has a {release!r} branch")
    Git(path).write("remote", "add", "upstream", upstream)
    say(f"cloned {origin} ({release}) into {path}")
    return {"made": str(path)}


def constraint_args(current: Settings) -> list[str]:
    """`--constraint <file>` for each constraints file (see `constraint_files`)."""
    return [arg for file in constraint_files(current) for arg in ("--constraint", str(file))]


def constraint_files(current: Settings) -> list[Path]:
    """[packages] constraints, then the pins of [packages] constraints_lock that it does not name."""
    files = []
    if current.config.packages.constraints:
        files.append(current.path(current.config.packages.constraints))
    if current.config.packages.constraints_lock:
        files.append(lock_constraints_file(current))
    return files


def constraints_text(current: Settings) -> str:
    """Every constraints file's pins, for up-to-date keys: a changed pin changes the key, a comment does not."""
    lines = [line for file in constraint_files(current) for line in file.read_text(encoding="utf-8").splitlines()]
    return "".join(f"{line}\n" for line in lines if line.strip() and not line.lstrip().startswith("#"))


def lock_constraints_file(current: Settings) -> Path:
    """The lock's pins as a constraints file, exported again only when the lock, the user's pins or the packages change."""
    lock = checkout_path(current) / str(current.config.packages.constraints_lock)
    if not lock.is_file():
        raise ConfigError(f"{lock}: no such file", where="[packages] constraints_lock",
                          fix='name the fork\'s uv.lock as a path in the checkout (e.g. "uv.lock"), or remove the key')
    own_file = current.config.packages.constraints
    own = current.path(own_file).read_text(encoding="utf-8") if own_file else ""
    fork_names = sorted(package.name for package in packages_if_cloned(current))
    inputs = [lock.read_bytes(), own.encode(), repr(fork_names).encode(), repr(venv.LOCK_EXPORT).encode()]
    header = f"# pins of {lock} ({sha256_hex(b'|'.join(inputs))})\n"
    target = current.state_dir / "constraints" / "uv-lock.txt"
    if target.is_file() and target.read_text(encoding="utf-8").startswith(header):
        return target
    entries = parse_toml(lock.read_bytes(), str(lock), fix="regenerate it with `uv lock` in the fork")
    from tasks.core.pins import lock_constraints  # packaging: only when the lock is exported again

    write_text_atomically(target, header + lock_constraints(venv.export_lock(lock.parent), own, fork_names, entries))
    return target


STAMP = "build.json"


def dist_dir(current: Settings, name: str) -> Path:
    return current.state_dir / "dist" / name


def stamp_file(current: Settings, name: str) -> Path:
    return dist_dir(current, name) / STAMP


def read_stamp(current: Settings, name: str) -> dict[str, Any] | None:
    return read_json(stamp_file(current, name))


def result_file(current: Settings, name: str) -> Path:
    return current.state_dir / "verify" / f"{name}.json"


def read_result(current: Settings, name: str) -> dict[str, Any] | None:
    return read_json(result_file(current, name))


def matching(pattern: Path) -> list[Path]:
    """The paths a glob pattern (a path, absolute once joined to the checkout) matches, sorted."""
    anchor = Path(pattern.anchor)
    relative = pattern.relative_to(anchor).as_posix()
    if relative in ("", "."):
        return [anchor] if anchor.exists() else []
    return sorted(anchor.glob(relative))
