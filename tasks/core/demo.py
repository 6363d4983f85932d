"""The demo history as a plan: commits with file changes and tags, and the fork's shape."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks.core.errors import ConfigError


@dataclass(frozen=True)
class Commit:
    message: str
    copy: str | None = None
    write: dict[str, str] = field(default_factory=dict)
    append: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    gitlinks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoPlan:
    author_name: str
    author_email: str
    start: datetime
    upstream: tuple[Commit, ...]
    main_at: int
    release: tuple[Commit, ...]

    def date_of(self, index: int) -> str:
        """Fixed commit date for the index-th commit overall (one hour apart)."""
        return (self.start + timedelta(hours=index)).isoformat()

    def signatures(self) -> frozenset[Signature]:
        """Author, email, author time and subject of every commit the demo makes (a rebase keeps all four)."""
        commits = (*self.upstream, *self.release)
        return frozenset(
            Signature(self.author_name, self.author_email,
                      int((self.start + timedelta(hours=index)).timestamp()), commit.message.splitlines()[0])
            for index, commit in enumerate(commits)
        )


@dataclass(frozen=True)
class Signature:
    author: str
    email: str
    time: int
    subject: str


def foreign_commits(log: str, made: frozenset[Signature]) -> list[str]:
    """`git log --format=%h%x00%an%x00%ae%x00%at%x00%s` lines of commits whose signature the demo never makes."""
    foreign = []
    for line in log.splitlines():
        short, author, email, time, subject = line.split("\0", 4)
        if Signature(author, email, int(time), subject) not in made:
            foreign.append(f"{short} {subject} ({author})")
    return foreign


def parse_history(text: str, source: str) -> DemoPlan:
    data = tomllib.loads(text)
    try:
        author = data["author"]
        upstream = tuple(parse_commit(item) for item in data["upstream"])
        fork = data["fork"]
        plan = DemoPlan(
            author_name=author["name"],
            author_email=author["email"],
            start=datetime.fromisoformat(author["start"]),
            upstream=upstream,
            main_at=int(fork["main_at"]),
            release=tuple(parse_commit(item) for item in fork.get("release", [])),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{source}: malformed demo history: {err}", where=source) from None
    if not 1 <= plan.main_at <= len(plan.upstream):
        raise ConfigError(f"{source}: fork.main_at must be between 1 and {len(plan.upstream)}", where=source)
    return plan


def parse_commit(item: dict[str, Any]) -> Commit:
    return Commit(
        message=item["message"],
        copy=item.get("copy"),
        write=dict(item.get("write", {})),
        append=dict(item.get("append", {})),
        tags=tuple(item.get("tags", ())),
        gitlinks=dict(item.get("gitlinks", {})),
    )
