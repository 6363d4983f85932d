"""A Python 3.11 base image for linux/amd64 and linux/arm64 in a test registry, made offline.

No `python:3.11-slim` can be pulled here, so the base is put together: amd64 is the base forkflow makes
from a local interpreter; arm64 is Debian bookworm's own python3.11 for arm64, installed by debootstrap
under QEMU (about 2.5 minutes, then kept in ~/.cache/forkflow-tests). Both are pushed to the registry
and an index of them is put there as `base/python:3.11-slim`, like the official multi-platform image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.adapters.docker import Engine

CACHE = Path(os.environ.get("FORKFLOW_TEST_CACHE", Path.home() / ".cache" / "forkflow-tests"))
MIRROR = "http://deb.debian.org/debian"
ROOTFS = "debian-bookworm-arm64-python3.11.tar"
ARM64_IMAGE = "forkflow-tests/debian-python:3.11-arm64"
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")


def arm64_rootfs(cache: Path = CACHE) -> Path:
    """A tarball of Debian bookworm for arm64 with python3.11 and pip (made once)."""
    tarball = cache / ROOTFS
    if tarball.is_file():
        return tarball
    root = cache / "arm64-root"
    if not (root / ".complete").is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        subprocess.run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3.11-minimal,python3-pip",
                        "bookworm", str(root), MIRROR], check=True, stdout=subprocess.DEVNULL)
        (root / ".complete").touch()
    for folder in TRIM:
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    python = root / "usr/bin/python"
    if not python.is_symlink():
        python.symlink_to("python3.11")
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(root), "--exclude=./.complete", "--exclude=./proc/*", "--exclude=./sys/*",
                    "--exclude=./dev/*", "-cf", str(partial), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(root, ignore_errors=True)
    return tarball


def arm64_image(client: Engine, work: Path) -> str:
    """The arm64 Python base in the engine (built with BuildKit from the root filesystem, once)."""
    from tasks.adapters import buildkit
    from tasks.adapters.docker import image_id

    if image_id(client, ARM64_IMAGE):
        return ARM64_IMAGE
    context = work / "arm64-base"
    context.mkdir(parents=True, exist_ok=True)
    os.link(arm64_rootfs(), context / "rootfs.tar")
    (context / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["python3"]\n')
    buildkit.build_image(client, buildkit.BuildRequest(context, ARM64_IMAGE, platform="linux/arm64"),
                         log_file=work / "arm64-base.log")
    return ARM64_IMAGE


def push_base_index(address: str, auth: dict[str, str], amd64: str, arm64: str) -> str:
    """`<registry>/base/python:3.11-slim`: an index of the two images, each pushed as `3.11-slim-<arch>`."""
    from tasks.adapters import docker as docker_adapter
    from tasks.adapters import registry

    client = docker_adapter.connect()
    repository = f"{address}/base/python"
    digests = {}
    try:
        for platform, image in (("linux/amd64", amd64), ("linux/arm64", arm64)):
            tag = f"3.11-slim-{platform.split('/')[1]}"
            docker_adapter.tag_image(client, image, repository, tag)
            digests[platform] = docker_adapter.push(client, repository, tag, auth)
    finally:
        client.close()
    registry.put_index(address, "base/python", ["3.11-slim"], digests, auth)
    return f"{address}/base/python:{{python}}-slim"
