"""A root filesystem tarball holding a local Python interpreter, for `docker import`.

The rules for what goes in live in `tasks.core.base_image`; this module
reads the interpreter folder, asks `ldconfig -p` where the host keeps the
manylinux policy's libraries and `ldd` which shared libraries all of these
need, and writes the tar file. The shell is busybox when it is installed (a shell plus
mkdir, chown, adduser...), else dash.
"""

from __future__ import annotations

import io
import os
import platform
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tasks.adapters.run import run
from tasks.core import base_image as rules
from tasks.core.errors import ForkflowError

LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


@dataclass
class Rootfs:
    """What was written: for the progress line and the report."""

    interpreter: Path
    full_version: str
    files: int = 0
    bytes: int = 0
    shell: str = ""
    libraries: list[str] = field(default_factory=list)


def default_interpreters_root() -> Path:
    pyenv_root = os.environ.get("PYENV_ROOT")
    return Path(pyenv_root) / "versions" if pyenv_root else Path.home() / ".pyenv" / "versions"


def find_interpreter(root: Path, python: str) -> Path | None:
    """The newest `<root>/3.12.N` folder with a `bin/python3.12`, or None."""
    if not root.is_dir():
        return None
    names = [p.name for p in root.iterdir() if (p / "bin" / f"python{python}").exists()]
    chosen = rules.pick_version(names, python)
    return root / chosen if chosen else None


def write_rootfs(interpreter: Path, python: str, target: Path) -> Rootfs:
    """Write the tarball for `interpreter` (a folder like ~/.pyenv/versions/3.12.1) to `target`.

    The interpreter's own ELF files are stripped of symbols when `strip` is installed, as the
    official images are (they link with --strip-all): libpython shrinks from ~30 MB to ~7 MB.
    """
    summary = Rootfs(interpreter, interpreter.name)
    scratch = target.with_name(target.name + ".strip")
    try:
        with tarfile.open(target, "w") as tar:
            writer = TarWriter(tar, scratch, strip=shutil.which("strip"))
            binaries = add_interpreter(writer, interpreter, python)
            shell_files = add_shell(writer, summary)
            add_libraries(writer, interpreter, binaries + shell_files, policy_library_paths(), summary)
            add_skeleton(writer)
    finally:
        scratch.unlink(missing_ok=True)
    summary.files, summary.bytes = writer.files, writer.bytes
    return summary


def add_interpreter(writer: TarWriter, interpreter: Path, python: str) -> list[Path]:
    """bin/, lib/python3.X and libpython under /usr/local; returns the ELF files to scan with ldd."""
    elves: list[Path] = []
    for entry in sorted((interpreter / "bin").iterdir()):
        if not rules.keep_bin_file(entry.name, python):
            continue
        arcname = rules.PREFIX / "bin" / entry.name
        if entry.is_symlink():
            writer.symlink(arcname, str(entry.readlink()))
        elif is_elf(entry):
            writer.file(entry, arcname, elf=True)
            elves.append(entry)
        else:
            text = entry.read_text(encoding="utf-8", errors="surrogateescape")
            writer.data(arcname, rules.rewrite_shebang(text, str(interpreter)).encode("utf-8", "surrogateescape"), 0o755)
    stdlib = interpreter / "lib" / f"python{python}"
    for path in walk_files(stdlib):
        relative = PurePosixPath(path.relative_to(stdlib).as_posix())
        if not rules.keep_stdlib_file(relative):
            continue
        arcname = rules.PREFIX / "lib" / f"python{python}" / relative
        if path.is_symlink():
            writer.symlink(arcname, str(path.readlink()))
            continue
        is_library = path.name.endswith(".so")
        writer.file(path, arcname, elf=is_library)
        if is_library:
            elves.append(path)
    for lib in sorted((interpreter / "lib").glob("libpython*.so*")):
        if lib.is_symlink():
            writer.symlink(rules.PREFIX / "lib" / lib.name, str(lib.readlink()))
        else:
            writer.file(lib, rules.PREFIX / "lib" / lib.name, elf=True)
    return elves


def add_shell(writer: TarWriter, summary: Rootfs) -> list[Path]:
    """/bin/sh: busybox and its applets when installed, else dash."""
    busybox = shutil.which("busybox")
    if busybox:
        writer.file(Path(busybox).resolve(), PurePosixPath("usr/bin/busybox"))
        applets = run([busybox, "--list"]).stdout.split()
        for applet in applets:
            if applet != "busybox":
                writer.symlink(PurePosixPath("usr/bin") / applet, "busybox")
        summary.shell = "busybox"
        return [Path(busybox).resolve()]
    dash = shutil.which("dash")
    if not dash:
        raise ForkflowError(
            "no shell to put in the base image: neither busybox nor dash is installed",
            fix="install one: `apt-get install -y busybox-static`",
        )
    writer.file(Path(dash).resolve(), PurePosixPath("usr/bin/dash"))
    writer.symlink(PurePosixPath("usr/bin/sh"), "dash")
    summary.shell = "dash"
    return [Path(dash).resolve()]


def policy_library_paths() -> dict[str, Path]:
    """The manylinux policy's libraries on this host (soname -> path), so compiled wheels run on the base."""
    output = run(["ldconfig", "-p"], check=False, fix="install ldconfig (Debian: libc-bin)").stdout
    found = rules.policy_libraries(rules.host_libraries(output, platform.machine()))
    return {soname: Path(path) for soname, path in found.items()}


def add_libraries(writer: TarWriter, interpreter: Path, elves: list[Path], wanted: dict[str, Path],
                  summary: Rootfs) -> None:
    """Every shared library the ELF files need, the `wanted` ones and what they need in turn, where the
    loader finds them without a cache."""
    libraries = shared_libraries(elves + [path.resolve() for path in wanted.values()])
    for soname, path in wanted.items():
        libraries.setdefault(soname, path)
    multiarch = multiarch_dir(libraries)
    for soname, location in sorted(libraries.items()):
        if interpreter in location.parents:
            if multiarch:
                writer.symlink(PurePosixPath(multiarch.lstrip("/")) / soname, f"/{rules.PREFIX}/lib/{soname}")
            continue
        target = rules.library_target(os.path.realpath(location.parent), soname)
        writer.file(location.resolve(), target)
        summary.libraries.append(soname)


def shared_libraries(elves: list[Path]) -> dict[str, Path]:
    """soname -> path, from `ldd` over all the files (the loader included)."""
    found: dict[str, Path] = {}
    for chunk in chunks(elves, 200):
        output = run(["ldd", *chunk], check=False, fix="install ldd (Debian: libc-bin)").stdout
        for line in output.splitlines():
            match = LDD_LINE.match(line)
            if not match:
                continue
            location = Path(match.group(2))
            found.setdefault(match.group(1) or location.name, location)
    return found


def multiarch_dir(libraries: dict[str, Path]) -> str | None:
    libc = libraries.get("libc.so.6")
    return os.path.realpath(libc.parent) if libc else None


def add_skeleton(writer: TarWriter) -> None:
    """Merged-/usr symlinks, /etc files for root, /tmp and /root."""
    for link, target in rules.MERGED_USR.items():
        writer.directory(PurePosixPath(target))
        writer.symlink(PurePosixPath(link), target)
    for name, text in rules.ROOT_FILES.items():
        writer.data(PurePosixPath(name), text.encode(), 0o644)
    writer.directory(PurePosixPath("tmp"), 0o1777)
    writer.directory(PurePosixPath("root"), 0o700)
    writer.directory(PurePosixPath("home"))


def walk_files(folder: Path) -> list[Path]:
    files = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in rules.SKIP_DIRS)
        files += [Path(current) / name for name in sorted(names)]
    return files


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def chunks(items: list[Path], size: int) -> list[list[Path]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class TarWriter:
    """A tar file of a root filesystem: root-owned entries, parent folders added once."""

    def __init__(self, tar: tarfile.TarFile, scratch: Path, strip: str | None = None):
        self.tar = tar
        self.strip = strip
        self.scratch = scratch
        self.seen: set[str] = set()
        self.files = 0
        self.bytes = 0

    def parents(self, arcname: PurePosixPath) -> None:
        for parent in reversed(arcname.parents):
            if str(parent) not in (".", "") and str(parent) not in self.seen:
                self.directory(parent)

    def directory(self, arcname: PurePosixPath, mode: int = 0o755) -> None:
        if str(arcname) in self.seen:
            return
        self.parents(arcname)
        info = self.info(arcname, tarfile.DIRTYPE, mode)
        self.tar.addfile(info)
        self.seen.add(str(arcname))

    def file(self, source: Path, arcname: PurePosixPath, elf: bool = False) -> None:
        if str(arcname) in self.seen:
            return
        self.parents(arcname)
        mode = source.stat().st_mode
        if elf and self.strip and run([self.strip, "--strip-unneeded", "-o", self.scratch, source], check=False).returncode == 0:
            source = self.scratch
        stat = source.stat()
        info = self.info(arcname, tarfile.REGTYPE, mode & 0o7777)
        info.size = stat.st_size
        info.mtime = int(stat.st_mtime)
        with source.open("rb") as handle:
            self.tar.addfile(info, handle)
        self.seen.add(str(arcname))
        self.files += 1
        self.bytes += stat.st_size

    def data(self, arcname: PurePosixPath, content: bytes, mode: int) -> None:
        self.parents(arcname)
        info = self.info(arcname, tarfile.REGTYPE, mode)
        info.size = len(content)
        self.tar.addfile(info, io.BytesIO(content))
        self.seen.add(str(arcname))
        self.files += 1
        self.bytes += len(content)

    def symlink(self, arcname: PurePosixPath, target: str) -> None:
        if str(arcname) in self.seen:
            return
        self.parents(arcname)
        info = self.info(arcname, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)
        self.seen.add(str(arcname))

    @staticmethod
    def info(arcname: PurePosixPath, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(str(arcname))
        info.type = kind
        info.mode = mode
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info
