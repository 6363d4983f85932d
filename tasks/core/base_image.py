"""What goes into a base image made from a local Python interpreter, as rules.

Where no `python:<v>-slim` can be pulled, `image-base` imports a root
filesystem holding a local interpreter (for example pyenv's
`~/.pyenv/versions/3.12.1`) laid out like the official image: the
interpreter under /usr/local, its shared libraries where the dynamic loader
looks, /bin/sh, and pip. What the official images strip (test suites, the static
libpython) is left out here too, and so are tkinter and IDLE, which need
X11. Unlike the official images, the compiled byte code is kept (file times
are preserved so it stays valid): without it every `pip install` step of a
build spends seconds compiling pip again.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

PREFIX = PurePosixPath("usr/local")
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo"})
SKIP_SUFFIXES = (".pyo", ".a")
KEEP_SITE_PACKAGES = ("pip",)
MERGED_USR = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
ROOT_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/os-release": 'NAME="forkflow local base"\nID=forkflow-local\n',
}


def keep_stdlib_file(relative: PurePosixPath) -> bool:
    """True for a file under lib/python3.X that belongs in the image."""
    parts = relative.parts
    if any(part in SKIP_DIRS for part in parts[:-1]):
        return False
    if relative.name.endswith(SKIP_SUFFIXES) or (relative.name.endswith(".pyc") and ".opt-" in relative.name):
        return False
    if "_tkinter" in relative.name:
        return False
    if parts and parts[0] == "site-packages" and len(parts) > 1:
        return any(parts[1] == name or re.match(rf"^{name}-[^/]+\.dist-info$", parts[1]) for name in KEEP_SITE_PACKAGES)
    return True


def keep_bin_file(name: str, python: str) -> bool:
    """Interpreter entry points and pip's scripts from the interpreter's bin/."""
    return name in {f"python{python}", "python3", "python", f"pip{python}", "pip3", "pip"}


def rewrite_shebang(text: str, old_prefix: str) -> str:
    """Point a script's `#!<old prefix>/bin/python3.X` line at /usr/local/bin."""
    first, _, rest = text.partition("\n")
    if first.startswith("#!") and old_prefix in first:
        first = first.replace(old_prefix, "/" + str(PREFIX))
    return first + "\n" + rest


def import_changes(full_version: str) -> list[str]:
    """Dockerfile instructions applied by `docker import` so the image behaves like python:<v>-slim."""
    return [
        "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={full_version}",
        "LABEL org.forkflow.base-from=local-interpreter",
        f"LABEL org.forkflow.python-version={full_version}",
        'CMD ["python3"]',
    ]


def pick_version(available: list[str], python: str) -> str | None:
    """The newest `3.12.N` folder name among `available` for python `3.12`."""
    matching = [name for name in available if re.fullmatch(rf"{re.escape(python)}\.\d+", name)]
    if not matching:
        return None
    return max(matching, key=lambda name: int(name.rsplit(".", 1)[1]))


def library_target(resolved_dir: str, soname: str) -> PurePosixPath:
    """Where a shared library goes inside the image: the loader's own folder layout."""
    return PurePosixPath(resolved_dir.lstrip("/")) / soname
