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

Compiled wheels (pydantic_core, orjson, cryptography...) link a few system
libraries that manylinux wheels may assume on every Linux: the external
libraries of auditwheel's manylinux policy (`MANYLINUX_LIBRARIES`). A local
base carries each of them the host has, with what they need in turn, so that
any manylinux wheel runs on it.

A base made here is never named like the official image: it is
`forkflow/python-local:<python>` (`local_base_name`), labelled with how it was
made and the recipe it was made with, so an official `python:<v>-slim`
present in the engine is still told apart and preferred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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

LOCAL_BASE_REPOSITORY = "forkflow/python-local"
BASE_FROM_LABEL = "org.forkflow.base-from"
RECIPE_LABEL = "org.forkflow.base-recipe"
LOCAL_BASE_RECIPE = "2"
"""Raised when what goes into a local base changes; a local base made by an older recipe is made again."""

# auditwheel's manylinux_2_28 policy (`lib_whitelist`), without the X11, GL and glib libraries: manylinux
# wheels may link these without vendoring them; everything else they need is inside the wheel.
MANYLINUX_LIBRARIES = (
    "libanl.so.1", "libatomic.so.1", "libc.so.6", "libdl.so.2", "libexpat.so.1", "libgcc_s.so.1", "libm.so.6",
    "libmvec.so.1", "libnsl.so.1", "libpthread.so.0", "libresolv.so.2", "librt.so.1", "libstdc++.so.6",
    "libutil.so.1", "libz.so.1",
)
LEFT_OUT_LIBRARIES = (
    "libGL.so.1", "libICE.so.6", "libSM.so.6", "libX11.so.6", "libXext.so.6", "libXrender.so.1",
    "libglib-2.0.so.0", "libgobject-2.0.so.0", "libgthread-2.0.so.0",
)
LDCONFIG_ARCH = {"x86_64": "x86-64", "aarch64": "AArch64"}
LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(/\S+)\s*$")


def local_base_name(python: str) -> str:
    """The name a base made from a local interpreter gets: never the official image's."""
    return f"{LOCAL_BASE_REPOSITORY}:{python}"


def is_made_locally(labels: Mapping[str, str] | None) -> bool:
    return bool(labels) and (labels or {}).get(BASE_FROM_LABEL) == "local-interpreter"


def local_base_is_current(labels: Mapping[str, str] | None) -> bool:
    """A local base made by this recipe (an older one lacks the libraries compiled wheels need)."""
    return is_made_locally(labels) and (labels or {}).get(RECIPE_LABEL) == LOCAL_BASE_RECIPE


def choose_base(official: Mapping[str, str] | None, local: Mapping[str, str] | None, base_from: str) -> str | None:
    """Which base an image uses now, from the labels of the images present (None when absent):
    'official' when the configured image is present and was not made here, else 'local' when a current
    local base is present (unless base_from is 'pull'), else None (the base must be made or pulled)."""
    if official is not None and not is_made_locally(official):
        return "official"
    if base_from != "pull" and local_base_is_current(local):
        return "local"
    return None


def host_libraries(ldconfig_output: str, machine: str) -> dict[str, str]:
    """soname -> path from `ldconfig -p`, for the host's own architecture only (no 32-bit copies)."""
    flag = LDCONFIG_ARCH.get(machine, machine)
    found: dict[str, str] = {}
    for line in ldconfig_output.splitlines():
        match = LDCONFIG_LINE.match(line)
        if not match:
            continue
        soname, flags, path = match.groups()
        if flag in flags.split(","):
            found.setdefault(soname, path)
    return found


def policy_libraries(available: Mapping[str, str]) -> dict[str, str]:
    """The manylinux policy's libraries this host has: soname -> path (libnsl.so.1, for one, may be missing)."""
    return {soname: available[soname] for soname in MANYLINUX_LIBRARIES if soname in available}


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
        f"LABEL {BASE_FROM_LABEL}=local-interpreter",
        f"LABEL {RECIPE_LABEL}={LOCAL_BASE_RECIPE}",
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
