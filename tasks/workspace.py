"""What several stages read from the fork's checkout, read once per run.

The file listing of a checkout (each file and an id of its content, see
`adapters.git.file_entries`) feeds the wheels' and the flows' up-to-date
checks. It is worked out once per process while the checkout's index is
unchanged, and a run can send it early (see tasks.prefetch).
"""

from __future__ import annotations

import functools
from functools import partial
from pathlib import Path

from tasks import prefetch
from tasks.adapters.git import file_entries


@functools.cache
def cached_entries(repo: Path, index_mtime: int) -> dict[str, str]:
    entries: dict[str, str] = prefetch.answer(entries_key(repo), partial(file_entries, repo))
    return entries


def entries_key(repo: Path) -> str:
    return f"entries:{repo}"


def checkout_entries(repo: Path) -> dict[str, str]:
    """The checkout's file listing, computed once per process while its index is unchanged."""
    repo = repo.resolve()
    index = repo / ".git" / "index"
    return cached_entries(repo, index.stat().st_mtime_ns if index.exists() else 0)


def ask_entries_early(repo: Path) -> None:
    repo = repo.resolve()
    if (repo / ".git").exists():
        prefetch.send(entries_key(repo), partial(file_entries, repo))
