"""`doit -n N` works with every multiprocessing start method (fork, forkserver, spawn): a worker gets its task
by pickling, so no action, check or parameter of any task may be a closure or a lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, have_program, need
from tests.test_image import SESSION, assert_sbom_served, remove_session_images


def test_every_task_pickles_as_spawned_workers_receive_it(demo_config: Path) -> None:
    for start in ("validated", "remembered"):  # the config validated, then taken from config-cache.json
        done = subprocess.run([sys.executable, "tests/pickle_tasks.py"], cwd=REPO, capture_output=True, text=True,
                              env={"FORKFLOW_CONFIG": str(demo_config), "PATH": "/usr/local/bin:/usr/bin:/bin",
                                   "HOME": str(demo_config.parent)}, check=False, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stdout.strip().splitlines()
        assert lines[-1].endswith(" tasks") and int(lines[-1].split()[0]) > 20, done.stdout
        assert lines[:-1] == [], f"{start}: tasks a spawned worker cannot receive:\n" + "\n".join(lines[:-1])
    assert (demo_config.parent / ".forkflow" / "config-cache.json").is_file()


def doit_with_start_method(config: Path, method: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORKFLOW_CONFIG": str(config)}
    return subprocess.run([sys.executable, str(REPO / "tests" / "start_method.py"), method, "-f", str(REPO / "dodo.py"),
                           "-d", str(REPO), *args], env=env, capture_output=True, text=True, check=False, timeout=1800)


@pytest.mark.services
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_parallel_wheel_and_image_under_each_start_method(method: str, demo_config: Path, base_images: list[str]) -> None:
    need(have_program("docker-registry"), "Debian's docker-registry")
    demo_config.write_text(demo_config.read_text().replace("[images]\n", f'[images]\nrepository = "t{SESSION}/{method}"\n'))
    try:
        result = doit_with_start_method(demo_config, method, "-n", "2", "wheel", "image")
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "PicklingError" not in output and "Traceback" not in output
        state = demo_config.parent / ".forkflow" / "reports"
        wheels = json.loads((state / "wheel.json").read_text())["packages"]
        assert len(wheels) == 6 and all(p["status"] == "built" for p in wheels), [(p["name"], p["status"]) for p in wheels]
        images = json.loads((state / "image.json").read_text())["images"]
        assert len(images) == 4 and all(i["status"] == "built" and i["digest"] for i in images)
        for item in images:  # every demo image: an SBOM of each distribution in it, with its version, from the registry
            assert_sbom_served(demo_config, item)
    finally:
        subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), "-d", str(REPO), "services-stop"],
                       env={**os.environ, "FORKFLOW_CONFIG": str(demo_config)}, capture_output=True,
                       check=False, timeout=300)
        remove_session_images()
