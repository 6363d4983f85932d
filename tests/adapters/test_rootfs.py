"""Base images made from a local interpreter: the file rules, and a real `docker import`."""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath

from tasks.adapters import docker as docker_adapter
from tasks.adapters import rootfs
from tasks.core import base_image as rules
from tests.helpers import docker_reachable, need


def test_stdlib_rules_drop_tests_bytecode_gui_and_foreign_site_packages() -> None:
    keep = ["os.py", "json/__init__.py",
            "json/__pycache__/decoder.cpython-312.pyc", "lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
            "site-packages/pip/__init__.py", "site-packages/pip-23.2.1.dist-info/RECORD", "ensurepip/__init__.py"]
    drop = ["test/test_os.py", "unittest/test/test_case.py", "json/__pycache__/decoder.cpython-312.opt-1.pyc",
            "idlelib/idle.py", "tkinter/__init__.py", "lib-dynload/_tkinter.cpython-312-x86_64-linux-gnu.so",
            "config-3.12-x86_64-linux-gnu/libpython3.12.a", "site-packages/requests/__init__.py",
            "site-packages/pipx/__init__.py", "site-packages/_sandbox.pth"]
    assert [p for p in keep if not rules.keep_stdlib_file(PurePosixPath(p))] == []
    assert [p for p in drop if rules.keep_stdlib_file(PurePosixPath(p))] == []


def test_newest_patch_release_is_picked() -> None:
    assert rules.pick_version(["3.12.1", "3.12.10", "3.12.9", "3.11.7", "3.1.2"], "3.12") == "3.12.10"
    assert rules.pick_version(["3.11.7"], "3.12") is None


def test_scripts_point_at_usr_local() -> None:
    text = "#!/root/.pyenv/versions/3.12.1/bin/python3.12\nimport sys\n"
    assert rules.rewrite_shebang(text, "/root/.pyenv/versions/3.12.1") == "#!/usr/local/bin/python3.12\nimport sys\n"


def test_interpreter_made_into_a_working_base_image(tmp_path: Path) -> None:
    need(docker_reachable(), "a Docker engine")
    interpreter = rootfs.find_interpreter(rootfs.default_interpreters_root(), "3.12")
    need(interpreter is not None, "a local Python 3.12 under ~/.pyenv/versions")
    assert interpreter is not None
    tarball = tmp_path / "rootfs.tar"
    made = rootfs.write_rootfs(interpreter, "3.12", tarball)
    assert made.shell in ("busybox", "dash") and "libc.so.6" in made.libraries
    assert made.bytes < 150e6, "test suites, byte code and the static library stay out"
    client = docker_adapter.connect()
    ref = f"forkflow-test-base:{uuid.uuid4().hex[:8]}"
    try:
        docker_adapter.import_rootfs(client, tarball, ref, rules.import_changes(made.full_version))
        script = ("import ssl, sqlite3, ctypes, lzma, bz2, zlib, hashlib, decimal, sys, os; "
                  "print(sys.version.split()[0], sys.prefix, os.environ['PYTHON_VERSION'])")
        code, output = docker_adapter.run_container(client, ref, ["python", "-c", script])
        assert code == 0, output
        assert output.split() == [made.full_version, "/usr/local", made.full_version]
        code, output = docker_adapter.run_container(client, ref, ["sh", "-c", "python3 -m pip --version && pip --version"])
        assert code == 0 and output.count("(python 3.12)") == 2, output
        attrs = docker_adapter.image_attrs(client, ref)
        assert attrs["Config"]["Labels"]["org.forkflow.base-from"] == "local-interpreter"
        assert attrs["Config"]["Cmd"] == ["python3"]
    finally:
        docker_adapter.remove_image(client, ref)
