"""Stage `verify`: each built wheel installed into a fresh virtual environment per target Python.

`verify:<package>` installs the package's wheel, with the fork's wheels it needs given as
files (never taken from an index) and third-party dependencies from `[index] upstream` (else
the machine's configured index), then imports every package the wheel ships and, for the
core package, runs its version command (`prefect version`), which must print the built
version. Publishing refuses files that did not pass. A subtask is up to date while the
wheels it installs, the target Pythons and the check are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from doit import create_after

from tasks.adapters import venv
from tasks.adapters.build import wheel_info
from tasks.adapters.console import say, warn
from tasks.adapters.dashboard import ask_dashboard
from tasks.core import smoke
from tasks.core.errors import ForkflowError
from tasks.core.packages import canonical
from tasks.pipeline.actions import creation_errors_as_task, guarded, missing_section_task
from tasks.pipeline.checks import Check, Stale, report_intact
from tasks.pipeline.settings import Settings, look_at_json, settings, write_json, write_report
from tasks.pipeline.ui import core_bundles
from tasks.pipeline.workspace import (
    constraint_args,
    constraints_text,
    packages_if_cloned,
    read_result,
    result_file,
    stamp_file,
)

DOC = "install each wheel with its dependencies into a fresh venv per target Python and import all it ships"


@create_after(executed="checkout")
@creation_errors_as_task
def task_verify() -> Any:
    """Install and import every built wheel on each target Python before anything is published."""
    current = settings()
    if current.config.fork is None:
        yield missing_section_task("verify", "fork", DOC)
        return
    yield {"basename": "verify", "name": None, "doc": DOC, "uptodate": [True]}
    names = [package.name for package in packages_if_cloned(current)]
    for name in names:
        yield {
            "name": name,
            "doc": f"install {name} on {', '.join(target_pythons(current)) or 'no Python'} and import all it ships",
            "actions": [guarded(partial(verify_action, name, names))],
            "task_dep": ["wheel"],
            "uptodate": [Check(str(Verified(name, names)), Verified(name, names))],
            "targets": [str(result_file(current, name))],
            "verbosity": 2,
        }
    yield {
        "name": "report",
        "doc": "gather every package's verification into reports/verify.json",
        "actions": [guarded(partial(report_action, names))],
        "task_dep": [f"verify:{name}" for name in names],
        "file_dep": [str(result_file(current, name)) for name in names],
        "targets": [str(current.reports_dir / "verify.json")],
        "uptodate": [report_intact("verify", "packages")],
        "verbosity": 2,
    }


class Verified:
    """doit `uptodate`: the last verification passed for exactly these wheels, Pythons and checks."""

    def __init__(self, name: str, names: list[str]):
        self.name = name
        self.names = names

    def __repr__(self) -> str:
        return f"{self.name}'s last verification passed with the same wheels, Pythons and checks"

    def __call__(self, *_: Any) -> bool | Stale:
        current = settings()
        saved = read_result(current, self.name)
        if not saved:
            return Stale("not verified yet")
        if not saved.get("ok"):
            return Stale("its last verification failed")
        try:
            same = saved.get("key") == verification_key(current, self.name, self.names)
        except (ForkflowError, OSError, KeyError):
            same = False
        return same or Stale("its wheels, Pythons or checks changed since its last passing verification")


def target_pythons(current: Settings) -> list[str]:
    """[packages] verify_python, else [images] python, else the Python running forkflow."""
    import sys

    if current.config.packages.verify_python:
        return list(current.config.packages.verify_python)
    if current.config.images:
        return list(current.config.images.python)
    return [f"{sys.version_info.major}.{sys.version_info.minor}"]


def interpreters(current: Settings) -> dict[str, Path]:
    """Target Python -> interpreter. Explicitly listed Pythons must exist; default ones are skipped with a warning."""
    root = current.path(current.config.images.interpreters) if current.config.images and current.config.images.interpreters else None
    found = {python: venv.find_python(python, root) for python in target_pythons(current)}
    missing = [python for python, path in found.items() if path is None]
    if missing and current.config.packages.verify_python:
        raise ForkflowError(f"no interpreter for Python {', '.join(missing)} (needed to verify the wheels)",
                            where="[packages] verify_python",
                            fix="install it (e.g. `pyenv install 3.12`) or remove it from [packages] verify_python")
    for python in missing:
        warn(f"verify: no Python {python} here; wheels are not verified on it (set [packages] verify_python to require it)")
    available = {python: path for python, path in found.items() if path is not None}
    if not available:
        raise ForkflowError(f"none of the target Pythons ({', '.join(found)}) is installed here",
                            where="[packages] verify_python", fix="install one of them, or list installed ones")
    return available


def built_wheels(current: Settings, names: list[str]) -> dict[str, dict[str, Any]]:
    """Canonical name -> the stamp of each built package, with `wheel` (its path)."""
    found = {}
    for name in names:
        stamp = look_at_json(stamp_file(current, name))  # each verify check reads every stamp: one parse a run
        if stamp is None:
            continue
        wheel = next((f for f in stamp["files"] if f["name"].endswith(".whl")), None)
        if wheel:
            found[canonical(name)] = {**stamp, "wheel": wheel}
    return found


def needed_wheels(current: Settings, name: str, names: list[str]) -> list[dict[str, Any]]:
    """The package's stamp and those of the fork packages (`names`) it needs."""
    wheels = built_wheels(current, names)
    if canonical(name) not in wheels:
        raise ForkflowError(f"{name} has no built wheel", fix=f"run `doit wheel:{name}` first")
    requires = {key: list(wheel_info(Path(stamp["wheel"]["path"])).requires) for key, stamp in wheels.items()}
    return [wheels[key] for key in closure(current, name, requires)]


CLOSURES = "verify-closures.json"
KEPT_CLOSURES = 256


def closure(current: Settings, name: str, requires: dict[str, list[str]]) -> list[str]:
    """tasks.core.verify.fork_closure, a function of the name and the Requires-Dist lines only: remembered by them in
    `<state>/verify-closures.json`, so an up-to-date check of unchanged wheels does not load packaging."""
    key = hashlib.sha256(json.dumps([name, sorted(requires.items())]).encode()).hexdigest()
    file = current.state_dir / CLOSURES
    known = look_at_json(file) or {}
    found = known.get(key)
    if isinstance(found, list) and all(isinstance(item, str) for item in found):
        return found
    from tasks.core.verify import fork_closure  # packaging: on use

    order = fork_closure(name, requires)
    with contextlib.suppress(OSError):  # a state folder that cannot be written only means working it out again
        write_json(file, {**dict(list(known.items())[-(KEPT_CLOSURES - 1):]), key: order})
    return order


def verification_key(current: Settings, name: str, names: list[str]) -> str:
    digest = hashlib.sha256(venv.IMPORT_CHECK.read_bytes())
    digest.update(constraints_text(current).encode())
    stamps = needed_wheels(current, name, names)
    for stamp in stamps:
        digest.update(f"{stamp['wheel']['name']}={stamp['wheel']['sha256']}\n".encode())
    index = current.config.index
    digest.update(json.dumps([target_pythons(current), index.upstream if index else None,
                              current.config.packages.version_command, dashboard_command(current, stamps[0])]).encode())
    return digest.hexdigest()


def version_command(current: Settings, stamp: dict[str, Any]) -> list[str] | None:
    """The core package's version command: configured, else `<script> version` for a script of its own name."""
    if stamp["kind"] != "core":
        return None
    if current.config.packages.version_command:
        return list(current.config.packages.version_command)
    return smoke.version_command(stamp["name"], wheel_info(Path(stamp["wheel"]["path"])).scripts)


def dashboard_command(current: Settings, stamp: dict[str, Any]) -> list[str] | None:
    """`<core> server start ...` for a core package with UI bundles: its server must answer `GET /` with the dashboard."""
    if stamp["kind"] != "core":
        return None
    core = next((p for p in packages_if_cloned(current) if p.kind == "core"), None)
    if core is None or not core_bundles(current, core):
        return None
    return smoke.server_command(version_command(current, stamp))


def verify_action(name: str, names: list[str]) -> dict[str, str]:
    from tasks.core.verify import supports_python

    current = settings()
    stamps = needed_wheels(current, name, names)
    own = stamps[0]
    info = wheel_info(Path(own["wheel"]["path"]))
    results = {}
    for python, interpreter in interpreters(current).items():
        if not supports_python(info.requires_python, python):
            results[python] = {"status": "skipped", "reason": f"Requires-Python {info.requires_python}"}
            continue
        results[python] = verify_on(current, stamps, python, interpreter)
        say(f"verify:{name}: Python {python}: {describe(results[python])}")
    ok = all(r["status"] != "failed" for r in results.values())
    last_passed = passed_installs(results) if ok else passed_installs(read_result(current, name) or {})
    save_result(current, name, {"name": name, "version": own["version"], "wheel": own["wheel"], "ok": ok,
                                "key": verification_key(current, name, names), "pythons": results,
                                "last_passed": last_passed})
    if not ok:
        raise ForkflowError(failure_message(name, results, last_passed), where=own["wheel"]["path"], fix=FAILURE_FIX)
    return {"made": f"{own['name']} {own['version']} ok on " + ", ".join(p for p, r in results.items() if r["status"] == "passed")}


def verify_on(current: Settings, stamps: list[dict[str, Any]], python: str, interpreter: Path) -> dict[str, Any]:
    """Install and check on one Python; failures are returned, not raised, so every Python is tried."""
    own = stamps[0]
    started = time.monotonic()
    scratch = current.state_dir / "verify" / "envs"
    scratch.mkdir(parents=True, exist_ok=True)
    index = current.config.index
    with tempfile.TemporaryDirectory(prefix=f"{own['name']}-{python}-", dir=scratch) as folder:
        try:
            env_python = venv.make_venv(interpreter, Path(folder) / "venv")
            venv.install(env_python, [s["wheel"]["path"] for s in stamps], index_url=index.upstream if index else None,
                         extra_args=constraint_args(current))
            installed = time.monotonic()
            versions = venv.installed(env_python)
            found = venv.import_everything(env_python, own["name"])
            command = version_command(current, own)
            printed = venv.run_in(env_python, command, Path(folder)) if command else None
            server = dashboard_command(current, own)
            dashboard = dashboard_check(env_python, server, Path(folder)) if server else None
        except ForkflowError as err:
            return {"status": "failed", "error": str(err).splitlines()[0], "detail": str(err),
                    "seconds": round(time.monotonic() - started, 1)}
    result = judge(own["version"], found, command, printed, round(installed - started, 1),
                   round(time.monotonic() - installed, 1))
    if dashboard is not None:
        result.update(dashboard=dashboard)
        if dashboard["problem"]:
            result.update(status="failed", problems=[*result["problems"], f"`{dashboard['command']}`: {dashboard['problem']}"])
    return {**result, "installed": versions}


def dashboard_check(env_python: Path, command: list[str], home: Path) -> dict[str, Any]:
    """Start the installed server and ask for `/`: 200 HTML is its dashboard."""
    answer = ask_dashboard(env_python, command, home)
    return {"command": " ".join(command), "status": answer.status, "content_type": answer.content_type,
            "problem": smoke.dashboard_problem(answer.status, answer.content_type, answer.log)}


def judge(version: str, found: dict[str, Any], command: list[str] | None, printed: tuple[int, str] | None,
          install_seconds: float, check_seconds: float) -> dict[str, Any]:
    problems = [f"{package}: {error}" for package, error in sorted(found["failed"].items())]
    if found["version"] != version:
        problems.append(f"installed version is {found['version']}, built {version}")
    if command and printed is not None:
        code, output = printed
        mismatch = f"exit {code}" if code != 0 else smoke.version_mismatch(output, version)
        if mismatch:
            problems.append(f"`{' '.join(command)}`: {mismatch}: {output[-300:]}")
    return {"status": "failed" if problems else "passed", "problems": problems, "imported": len(found["imported"]),
            "optional": found["optional"], "version_command": " ".join(command) if command else None,
            "install_seconds": install_seconds, "check_seconds": check_seconds}


def describe(result: dict[str, Any]) -> str:
    if result["status"] == "failed":
        return "FAILED: " + "; ".join(result.get("problems") or [result.get("error", "")])[:500]
    optional = f", {len(result['optional'])} need optional dependencies" if result.get("optional") else ""
    command = f", `{result['version_command']}` ok" if result.get("version_command") else ""
    command += ", dashboard at GET / ok" if result.get("dashboard") else ""
    return (f"passed ({result['imported']} packages imported{optional}{command}; "
            f"install {result['install_seconds']}s, checks {result['check_seconds']}s)")


FAILURE_FIX = ("fix the package (or its declared dependencies) and rebuild; when a third-party release broke it, pin "
               "the version that passed in [packages] constraints (or use the fork's uv.lock: [packages] constraints_lock); "
               "nothing is published until it passes")


def passed_installs(saved: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Python -> what was installed, from a passing verification; a failed one carries the last pass forward."""
    if not saved.get("ok"):
        return dict(saved.get("last_passed") or {})
    return {python: result["installed"] for python, result in (saved.get("pythons") or {}).items()
            if result.get("status") == "passed" and result.get("installed")}


def failure_message(name: str, results: dict[str, dict[str, Any]], last_passed: dict[str, dict[str, str]]) -> str:
    lines = [f"{name} failed verification:"]
    for python, result in results.items():
        if result["status"] == "failed":
            details = result.get("problems") or [result.get("detail", result.get("error", ""))]
            lines += [f"  Python {python}: {line}" for detail in details for line in str(detail).splitlines()[:30]]
            lines += drift_lines(python, result, last_passed)
    return "\n".join(lines)


def drift_lines(python: str, result: dict[str, Any], last_passed: dict[str, dict[str, str]]) -> list[str]:
    """The versions that changed since the last passing verification on this Python, at most 15."""
    from tasks.core.verify import changed_versions

    if python not in last_passed or not result.get("installed"):
        return []
    changed = changed_versions(last_passed[python], result["installed"])
    if not changed:
        return [f"  Python {python}: installed the same versions as the last passing verification"]
    more = f" (and {len(changed) - 15} more)" if len(changed) > 15 else ""
    return [f"  Python {python}: changed since the last passing verification: {', '.join(changed[:15])}{more}"]


def save_result(current: Settings, name: str, data: dict[str, Any]) -> None:
    write_json(result_file(current, name), data)


def report_action(names: list[str]) -> dict[str, str]:
    current = settings()
    entries = [read_result(current, name) for name in names]
    packages = [e for e in entries if e]
    write_report("verify", {"packages": packages}, current)
    passed = sum(1 for e in packages if e["ok"])
    return {"made": f"verify.json ({passed} of {len(packages)} passed)"}
