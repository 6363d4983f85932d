"""State that heals itself: a corrupt state file is set aside and treated as missing, with one warning.

Each reader of a state file or report decides what "missing" means for it
(the work is redone, the report rebuilt); these helpers do the rest the same
way everywhere: the bad file is kept beside the good one as `<name>.corrupt`
for whoever wants to look at it, and the warning is given once per file and
process however often the file is read.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tasks.adapters.console import warn

SUFFIX = ".corrupt"
_warned: set[str] = set()


def remove_path(path: Path) -> None:
    """Remove a file, link or folder at `path`; nothing when there is none."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def set_aside(file: Path) -> Path:
    """Move `file` (a file or a folder where a file belongs) to `<file>.corrupt`, replacing an older one."""
    aside = file.with_name(file.name + SUFFIX)
    remove_path(aside)
    file.replace(aside)
    return aside


def warn_once(file: Path, message: str) -> None:
    if str(file) not in _warned:
        _warned.add(str(file))
        warn(message)


def treat_as_missing(file: Path, problem: str, consequence: str) -> None:
    """Set the corrupt `file` aside and say so once: what was wrong and what the run does instead."""
    if not (file.exists() or file.is_symlink()):
        return
    try:
        aside = set_aside(file).name
    except OSError as err:
        aside = f"nowhere ({err.strerror})"
    warn_once(file, f"{file} is not readable ({problem}); set aside as {aside}, {consequence}")


TEMPORARY = re.compile(r"^\..+\.(\d+)\.\d+\.tmp$")  # write_text_atomically's `.<name>.<pid>.<thread>.tmp`


def remove_dead_temporaries(state_dir: Path) -> None:
    """Remove the temporary files of atomic writes (in the state folder and two levels below) whose process is
    gone: a run killed in the middle of a write leaves one behind. Called under the state lock."""
    for pattern in (".*.tmp", "*/.*.tmp", "*/*/.*.tmp"):
        for file in state_dir.glob(pattern):
            found = TEMPORARY.match(file.name)
            if found and int(found.group(1)) != os.getpid() and not writer_alive(int(found.group(1))):
                file.unlink(missing_ok=True)


def writer_alive(pid: int) -> bool:
    from tasks.adapters.services import process_alive

    return process_alive(pid)
