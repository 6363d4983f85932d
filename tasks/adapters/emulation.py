"""Whether this machine runs binaries of another CPU: QEMU user emulation registered with binfmt_misc.

A local Docker engine builds and runs an arm64 image on an amd64 host (or the reverse) only when the
kernel hands that CPU's binaries to `qemu-<machine>-static`; this reads the kernel's registrations.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

BINFMT = Path(os.environ.get("FORKFLOW_BINFMT_DIR", "/proc/sys/fs/binfmt_misc"))  # where binfmt_misc is mounted


def host_machine() -> str:
    """`x86_64`, `aarch64`: the CPU this machine runs natively."""
    return platform.machine()


def registered(machine: str, folder: Path = BINFMT) -> bool:
    """True when the kernel runs `machine` binaries through QEMU (binfmt_misc has an enabled qemu-<machine>)."""
    entry = folder / f"qemu-{machine}"
    try:
        return entry.read_text(encoding="utf-8").splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def engine_is_local() -> bool:
    """The engine runs on this machine (no DOCKER_HOST, or a unix socket), so its emulation is this kernel's."""
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def how_to_enable(machine: str) -> str:
    return (f"install QEMU user emulation (`apt-get install -y qemu-user-static binfmt-support`), mount binfmt_misc "
            f"(`mount -t binfmt_misc binfmt_misc {BINFMT}`) and register it (`update-binfmts --enable qemu-{machine}`); "
            "`./scripts/setup` does all three")
