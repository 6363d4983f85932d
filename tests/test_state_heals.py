"""State heals itself: a corrupt state file or report costs one warning and a re-check, never a traceback or an
advice loop; doit's own database lost, corrupt or unsaved (a full disk) blocks nothing; leftovers are removed."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tasks.pipeline.credentials import local_credentials
from tasks.pipeline.settings import load_settings, read_json
from tasks.pipeline.statedb import database_problem
from tasks.stages.demo import remove_leftovers
from tasks.stages.image.state import in_report, read_state
from tests.helpers import REPO, run_doit

GARBAGE = b"\x00\xff{ not json"


def corrupt(file: Path) -> None:
    file.write_bytes(GARBAGE)


def test_a_corrupt_json_file_is_set_aside_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "report.json"
    corrupt(file)
    assert read_json(file) is None and read_json(file) is None
    assert (tmp_path / "report.json.corrupt").read_bytes() == GARBAGE and not file.exists()
    warnings = capsys.readouterr().err
    assert warnings.count("warning:") == 1 and f"{file} is not readable" in warnings and "set aside" in warnings


@pytest.mark.parametrize("kind", ["list", "folder", "not-utf8", "empty"])
def test_other_broken_json_files_are_treated_as_missing(tmp_path: Path, kind: str) -> None:
    file = tmp_path / "state.json"
    if kind == "folder":
        (file / "inside").mkdir(parents=True)
    else:
        file.write_bytes({"list": b"[1, 2]", "not-utf8": b"{\"a\": \"\xff\"}", "empty": b""}[kind])
    assert read_json(file) is None
    assert not file.exists() and (tmp_path / "state.json.corrupt").exists()


def test_corrupt_local_credentials_are_made_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "index"
    folder.mkdir()
    corrupt(folder / "credentials.json")
    made = local_credentials(folder, "index")
    assert made.password and local_credentials(folder, "index") == made
    assert (folder / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert capsys.readouterr().err.count("new credentials are made") == 1
    (folder / "credentials.json").write_text('{"username": "x"}')
    assert local_credentials(folder, "index").username == "forkflow"


def test_corrupt_credentials_make_the_service_restart_with_new_ones(demo_config: Path) -> None:
    from tasks.stages.services import credentials_changed, prepare

    with warnings.catch_warnings():  # passlib imports the crypt module, deprecated in Python 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        import passlib.hash  # noqa: F401
    current = load_settings(demo_config)
    prepare(current, "index")
    assert not credentials_changed(current, "index")
    corrupt(current.services_dir / "index" / "credentials.json")
    assert credentials_changed(current, "index")
    prepare(current, "index")
    assert not credentials_changed(current, "index")


def test_a_corrupt_image_state_or_report_is_missing(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    setup = SimpleNamespace(state_folder=tmp_path / "images", settings=SimpleNamespace(reports_dir=reports))
    setup.state_folder.mkdir()
    corrupt(setup.state_folder / "3.12-base.json")
    assert read_state(setup, "3.12-base") is None  # type: ignore[arg-type]
    (reports / "image.json").write_text('{"images": [{"name": "3.12-base"}]}')
    assert in_report(setup, "3.12-base") and not in_report(setup, "3.11-base")  # type: ignore[arg-type]
    corrupt(reports / "image.json")
    assert not in_report(setup, "3.12-base")  # type: ignore[arg-type]


def test_a_corrupt_doit_database_is_recognised(tmp_path: Path) -> None:
    good = tmp_path / "doit.db"
    with sqlite3.connect(good) as conn:
        conn.execute("create table doit (task_id text)")
    conn.close()
    assert database_problem(good) is None and database_problem(tmp_path / "missing.db") is None
    corrupt(bad := tmp_path / "bad.db")
    assert "not a database" in str(database_problem(bad))
    (tmp_path / "folder.db").mkdir()
    assert database_problem(tmp_path / "folder.db") == "it is a folder"


def test_leftovers_of_dead_demo_builds_are_removed(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    dead = dead_pid()
    for name in (f".demo.building-{dead}", f".demo.old-{dead}", f".demo.building-{os.getppid()}", ".demo.building-x"):
        (tmp_path / name / "work").mkdir(parents=True)
    remove_leftovers(workspace)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".demo.building-{os.getppid()}", ".demo.building-x"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- through doit


def state_files(state: Path) -> list[Path]:
    """Every state file and report a run reads: JSON files (the demo's stamp too), doit's database, the lock."""
    found = [p for p in state.rglob("*.json") if "demo" not in p.relative_to(state).parts[:1] or p.name == "demo.json"]
    found = [p for p in found if ".git" not in p.parts and "node_modules" not in p.parts and "/ui/" not in str(p)]
    return sorted(found) + [state / "doit.db", state / "run.lock"]


def clean(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_every_state_file_corrupted_the_rerun_completes(demo_config: Path) -> None:
    state = demo_config.parent / ".forkflow"
    clean(run_doit(demo_config, "sync", "version", "wheel"))
    files = state_files(state)
    assert len(files) >= 12, files
    for file in files:
        if file.name == "run.lock":
            file.unlink()
            (file / "inside").mkdir(parents=True)
        else:
            corrupt(file)
        output = clean(run_doit(demo_config, "sync", "version", "wheel"))
        assert output.count(f"{file} is not readable") <= 1, f"{file}:\n{output[-3000:]}"  # some are read only when needed
        if file.parent.name == "reports":  # a report of these stages is written again (wheel.json was left garbage)
            assert read_json(file) is not None, f"{file} was not written again"
        again = clean(run_doit(demo_config, "sync", "version", "wheel"))
        assert "warning" not in again and "first" not in again.lower().split("summary:")[0], f"{file}: advice loop?"
    assert read_json(state / "reports" / "wheel.json") is not None


@pytest.mark.slow
def test_a_lost_doit_database_costs_rechecks_not_the_demo(demo_config: Path) -> None:
    workspace = demo_config.parent / ".forkflow" / "demo"
    clean(run_doit(demo_config, "sync", "version"))
    release = git_rev(workspace / "origin.git", "release")
    (demo_config.parent / ".forkflow" / "doit.db").unlink()
    output = clean(run_doit(demo_config, "sync", "version"))
    assert "demo          up-to-date" in output or "demo      up-to-date" in output, output
    assert git_rev(workspace / "origin.git", "release") == release, "the synced fork was not regenerated"


def git_rev(repo: Path, ref: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", ref], check=True, capture_output=True, text=True).stdout.strip()


def limited_doit(config: Path, size: int, *args: str) -> subprocess.CompletedProcess[str]:
    """doit with every file it writes limited to `size` bytes: a disk that fills up, for real writes."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    env["FORKFLOW_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), *args],
                          check=False, env=env, capture_output=True, text=True, timeout=600, preexec_fn=limit)  # noqa: PLW1509


@pytest.mark.slow
def test_a_full_disk_at_the_end_of_a_run_is_a_message_and_the_summary(demo_config: Path) -> None:
    clean(run_doit(demo_config, "version"))
    run_doit(demo_config, "forget", "version")
    full = limited_doit(demo_config, 4096, "version")
    assert full.returncode == 1 and "Traceback" not in full.stdout + full.stderr, full.stderr
    assert "doit could not save what this run did" in full.stderr and "fix:   free disk space" in full.stderr
    assert "summary:" in full.stdout and "version" in full.stdout.split("summary:")[1]
    clean(run_doit(demo_config, "version"))


@pytest.mark.slow
def test_a_failed_demo_build_leaves_nothing_behind(demo_config: Path) -> None:
    state = demo_config.parent / ".forkflow"
    clean(run_doit(demo_config, "demo"))  # doit's database exists; a full disk then fails the demo's own writes
    (state / f".demo.building-{dead_pid()}" / "work").mkdir(parents=True)
    for _ in range(2):
        run_doit(demo_config, "forget", "demo")
        failed = limited_doit(demo_config, 1024, "demo")
        output = failed.stdout + failed.stderr
        assert failed.returncode == 1 and "Traceback" not in output, output[-3000:]
        assert "demo workspace could not be written" in output or "git" in output, output[-3000:]
        assert [p.name for p in state.iterdir() if p.name.startswith(".demo")] == []
        assert (state / "demo" / "origin.git").is_dir(), "the workspace is left as it was"
    clean(run_doit(demo_config, "demo"))


def test_a_full_disk_before_a_run_is_a_message(demo_config: Path) -> None:
    full = limited_doit(demo_config, 0, "version")
    output = full.stdout + full.stderr
    assert full.returncode == 1 and "Traceback" not in output and "Exception ignored" not in output, output
    assert "cannot create doit's database" in full.stderr and "fix:   free disk space" in full.stderr
    clean(run_doit(demo_config, "version"))


@pytest.mark.docker
def test_a_corrupt_image_state_and_report_are_rebuilt(tmp_path: Path, registry: Any, base_images: list[str]) -> None:
    """A garbage .forkflow/images/<key>.json crashed every run until `doit clean`; a garbage reports/image.json
    was written again as an empty list on every run."""
    import uuid

    from tests.image_helpers import TinyPackage, image_config_text, write_config, write_wheel_set

    session = uuid.uuid4().hex[:10]
    config = write_config(tmp_path, image_config_text(registry.address, f"t{session}/heal", python=("3.12",),
                                                      flavors=("base",)))
    write_wheel_set(tmp_path / ".forkflow", [TinyPackage("orbit", "1.0.1", "core", f'SESSION = "{session}"')])
    state = tmp_path / ".forkflow"
    clean(run_doit(config, "image", env=registry.env))
    built = read_json(state / "reports" / "image.json")
    assert built is not None and [r["name"] for r in built["images"]] == ["3.12-base"]
    corrupt(state / "images" / "3.12-base.json")
    corrupt(state / "reports" / "image.json")
    output = clean(run_doit(config, "image", env=registry.env))  # the registry check answers first here
    assert output.count("image.json is not readable") == 1, output[-3000:]
    healed = read_json(state / "reports" / "image.json")
    assert healed is not None and [r["name"] for r in healed["images"]] == ["3.12-base"]
    assert healed["images"][0]["digest"] == built["images"][0]["digest"]
    again = clean(run_doit(config, "image", env=registry.env))
    corrupt(state / "images" / "3.12-base.json")
    clean(run_doit(config, "forget", "image:3.12-base"))  # past the registry check: the cell's own state is read
    forced = clean(run_doit(config, "image", env=registry.env))
    assert forced.count("3.12-base.json is not readable") == 1, forced[-3000:]
    kept = read_json(state / "reports" / "image.json")
    assert "warning" not in again and kept is not None
    assert [(r["name"], r["digest"]) for r in kept["images"]] == [("3.12-base", built["images"][0]["digest"])]


@pytest.mark.services
def test_corrupt_service_credentials_are_made_again_and_the_services_take_them(demo_config: Path) -> None:
    from tests.helpers import have_program, need
    from tests.test_services import http_status, ports_of

    need(have_program("docker-registry"), "Debian's docker-registry")
    ports, folder = ports_of(demo_config), demo_config.parent / ".forkflow" / "services"
    try:
        clean(run_doit(demo_config, "services:index", "services:registry"))
        old = {name: read_json(folder / name / "credentials.json") for name in ("index", "registry")}
        for name in old:
            corrupt(folder / name / "credentials.json")
        output = clean(run_doit(demo_config, "services:index", "services:registry"))
        assert output.count("new credentials are made") == 2, output
        found = {name: read_json(folder / name / "credentials.json") for name in ("index", "registry")}
        new = {name: value for name, value in found.items() if value}
        assert set(new) == set(old) and all(new[name] != old[name] for name in old)
        registry_url = f"http://127.0.0.1:{ports['registry']}/v2/"
        assert http_status(registry_url, (new["registry"]["username"], new["registry"]["password"])) == 200
        stale = {name: value for name, value in old.items() if value}
        assert http_status(registry_url, (stale["registry"]["username"], stale["registry"]["password"])) == 401
        index_url = f"http://127.0.0.1:{ports['index']}/"
        assert http_status(index_url, (new["index"]["username"], new["index"]["password"]), "POST") not in (401, 403)
        assert http_status(index_url, (stale["index"]["username"], stale["index"]["password"]), "POST") in (401, 403)
        again = clean(run_doit(demo_config, "services:index", "services:registry"))
        assert "warning" not in again and again.count("up-to-date") >= 2
    finally:
        run_doit(demo_config, "services-stop")


@contextmanager
def small_filesystem(folder: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at folder (root, or CAP_SYS_ADMIN); unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    from tests.helpers import need

    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=False,
                             capture_output=True, text=True)
    need(mounted.returncode == 0, f"a tmpfs mount for a full disk ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write into folder until its filesystem is full; the file that holds the space."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:  # unbuffered: nothing left to flush (and fail) at close
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_a_really_full_disk_is_a_message_and_the_rerun_completes(demo_config: Path) -> None:
    """A state folder on a filesystem with no space left (ENOSPC, as a real disk fills): a report that cannot be
    written, doit's database that cannot record a task, the summary's cache, `doit forget`: each was a traceback
    (exit 2 or 3)."""
    state = demo_config.parent / "small-state"
    text = demo_config.read_text()
    assert 'state_dir = ".forkflow"' in text
    demo_config.write_text(text.replace('state_dir = ".forkflow"', f'state_dir = "{state}"'))
    with small_filesystem(state):
        clean(run_doit(demo_config, "sync", "version"))
        run_doit(demo_config, "forget", "version", "sync")
        filler = fill(state)
        full = run_doit(demo_config, "sync", "version")
        output = full.stdout + full.stderr
        assert full.returncode == 1 and "Traceback" not in output, output[-3000:]
        assert "no space left to write" in output and "free disk space" in output, output[-3000:]
        assert "summary:" in full.stdout, output[-3000:]
        assert not list(state.rglob("*.tmp")), "no half-written file is left behind"
        for command in (("forget", "sync"), ("ignore", "version"), ("reset-dep",)):  # doit's own database writes
            refused = run_doit(demo_config, *command)
            output = refused.stdout + refused.stderr
            assert refused.returncode == 1 and "Traceback" not in output, (command, output[-3000:])
            assert "doit could not save" in refused.stderr and "free disk space" in refused.stderr, command
        filler.unlink()
        clean(run_doit(demo_config, "sync", "version"))
        again = clean(run_doit(demo_config, "sync", "version"))
        assert "ran" not in again.split("summary:")[1].replace("sync:fetch", ""), again


def test_every_deploy_state_file_corrupted_the_rerun_completes(tmp_path: Path, prefect_api: str) -> None:
    from tests.flows_repo import flows_repo, unique_project
    from tests.flows_repo import write_config as flows_config

    flows_repo(tmp_path)
    project = unique_project()
    config = flows_config(tmp_path, prefect_api, project=project)
    state = tmp_path / ".forkflow"
    clean(run_doit(config, "deploy"))
    first = read_json(state / "reports" / "deploy.json")
    assert first is not None and first["deployments"]
    ids = {entry["name"]: entry["id"] for entry in first["deployments"]}
    files = sorted(state.rglob("*.json")) + [state / "doit.db"]
    assert {"deploy.json", "flows.json", "deploy-record.json"} <= {file.name for file in files}, files
    for file in files:
        corrupt(file)
        clean(run_doit(config, "deploy"))
        report = read_json(state / "reports" / "deploy.json")
        assert report is not None, f"{file}: deploy.json was not written again"
        assert {entry["name"]: entry["id"] for entry in report["deployments"]} == ids, f"{file}: deployments changed"
        assert on_server(prefect_api, project) == ids, f"{file}: the server holds the same deployments, no others"
        again = clean(run_doit(config, "deploy"))
        assert "warning" not in again, f"{file}: advice loop?\n{again[-3000:]}"


def on_server(api: str, project: str) -> dict[str, str]:
    from tests.helpers import prefect_http

    with prefect_http(api) as http:
        found = http.post("deployments/filter", json={"deployments": {"name": {"like_": project}}}).json()
    return {item["name"]: item["id"] for item in found}


def test_temporary_files_of_a_run_killed_while_writing_are_removed(demo_config: Path) -> None:
    state = demo_config.parent / ".forkflow"
    (state / "reports").mkdir(parents=True)
    dead, alive = dead_pid(), os.getpid()
    left = [state / f".report-facts.json.{dead}.1234.tmp", state / "reports" / f".version.json.{dead}.1.tmp",
            state / "sync" / f".fetched.json.{dead}.99.tmp"]
    kept = [state / "reports" / f".wheel.json.{alive}.1.tmp", state / "reports" / "notes.tmp"]
    for file in left + kept:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("{half")
    clean(run_doit(demo_config, "checkout"))
    assert [file for file in left if file.exists()] == [], "a dead writer's temporary files are removed"
    assert all(file.exists() for file in kept), "a live writer's and other files are left alone"
