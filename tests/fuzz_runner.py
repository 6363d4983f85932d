"""Run many doit commands quickly: import forkflow once, then fork a child per command, one per core at a time.

`python3 tests/fuzz_runner.py JOBS RESULTS`: JOBS is a JSON list of
{"config": path, "args": [...]}, optionally with "memory_mb",
"cpu_seconds" and "wall_seconds": bounds the child runs under (address space
above what the runner already holds, CPU time, an alarm), so a case past
them ends with a signal or a MemoryError instead of passing or hanging; RESULTS gets a list of {"rc", "output"} in
the same order. Each child loads dodo.py afresh with FORKFLOW_CONFIG set, as
the `doit` command would, so what it prints and its exit code are what a user
would see; only the interpreter start and the imports are shared.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def preload() -> None:
    """Import what dodo.py imports, without reading any config."""
    sys.path.insert(0, str(REPO))
    import doit.doit_cmd  # noqa: F401

    import tasks.stages.checkout
    import tasks.stages.deploy.promote
    import tasks.stages.deploy.stage
    import tasks.stages.flows
    import tasks.stages.image.stage
    import tasks.stages.publish
    import tasks.stages.sync.stage
    import tasks.stages.wheel  # noqa: F401

    preload_prefect()


def preload_prefect() -> None:
    """What the deployment checks import from Prefect (its schedule, trigger and schema classes)."""
    import prefect.client.schemas.schedules
    import prefect.events
    import prefect.utilities.callables
    import prefect.utilities.schema_tools.validation
    import prefect.utilities.templating  # noqa: F401


def start(job: dict[str, Any]) -> tuple[int, int]:
    """A forked child running one command; returns its pid and the descriptor of the file its output goes to."""
    fd, name = tempfile.mkstemp(prefix="fuzz-")
    Path(name).unlink()
    pid = os.fork()
    if pid == 0:
        bound(job.get("memory_mb"), job.get("cpu_seconds"))
        if job.get("wall_seconds"):
            signal.alarm(int(job["wall_seconds"]))  # SIGALRM ends a case that hangs (rc -14)
        child(fd, job["config"], job["args"])
    return pid, fd


def bound(memory_mb: int | None, cpu_seconds: int | None) -> None:
    """Limit this process: `memory_mb` of address space beyond what it holds now, `cpu_seconds` of CPU time."""
    import resource

    if memory_mb:
        held = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        limit = held + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))


def collected(fd: int, status: int) -> dict[str, object]:
    with os.fdopen(fd, "rb") as output:
        output.seek(0)
        text = output.read().decode(errors="replace")
    return {"rc": os.waitstatus_to_exitcode(status), "output": text}


def run_all(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, object]]:
    """Every job's result, in the order of the jobs, with up to `workers` children at once."""
    results: list[dict[str, object]] = [{} for _ in jobs]
    running: dict[int, tuple[int, int]] = {}
    waiting = iter(enumerate(jobs))
    while True:
        for index, job in waiting:
            pid, fd = start(job)
            running[pid] = (index, fd)
            if len(running) >= workers:
                break
        if not running:
            return results
        pid, status = os.wait()
        index, fd = running.pop(pid)
        results[index] = collected(fd, status)


def child(fd: int, config: str, args: list[str]) -> None:
    code = 99
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ["FORKFLOW_CONFIG"] = config
        from doit.doit_cmd import DoitMain

        code = DoitMain().run(["-f", str(REPO / "dodo.py"), "-d", str(REPO), *args])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    preload()
    results = run_all(jobs, os.cpu_count() or 1)
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
