"""Limits on a YAML document, checked on its event stream before anything is built from it.

YAML aliases make a small file stand for a huge value: nine anchors of nine
aliases each ("billion laughs") are a few hundred bytes that expand to 387
million values, which PyYAML shares cheaply but pydantic, JSON and every
comparison copy out (3.9 GB, then a crash). Deep nesting breaks the recursive
parts of every YAML and JSON library. So a document is refused, with the line
and the limit, when it is larger than MAX_BYTES, nests deeper than MAX_DEPTH
(aliases count as the depth of what they stand for), uses more than
MAX_ALIASES aliases, or expands to more than MAX_VALUES values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.core.errors import ConfigError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_VALUES = 250_000

SPLIT = "split the file, or keep large data out of it"
FLATTEN = "flatten the value at that line"
FEWER = "use fewer aliases, or write out what they stand for (an alias bomb is refused on purpose)"


@dataclass
class Open:
    """A mapping or sequence being read: the value count when it started, its anchor, its tallest child."""

    start: int
    anchor: str | None
    height: int = 0


@dataclass
class Tally:
    values: int = 0
    aliases: int = 0
    stack: list[Open] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # anchor -> (values, height)


def refuse(source: str, line: int | None, what: str, fix: str) -> ConfigError:
    where = f"{source}:{line}" if line is not None else source
    return ConfigError(f"{where}: {what}", where=where, fix=fix)


def check_size(size: int, source: str) -> None:
    """Refuse a file of `size` bytes or characters past MAX_BYTES (checked before it is read, too)."""
    if size > MAX_BYTES:
        raise refuse(source, None, f"the file is {size:,} bytes; forkflow reads YAML files of at most {MAX_BYTES:,}", SPLIT)


def check_limits(text: str, source: str, loader: Any) -> None:
    """Raise a ConfigError naming `source`, the line and the limit when `text` is past one; a syntax error is
    left to the loader, which names it."""
    import yaml  # here, not at import: a check of the size alone (an unchanged file's) needs no YAML

    check_size(len(text), source)
    tally = Tally()
    try:
        for event in yaml.parse(text, Loader=loader):
            count(event, tally, source, yaml)
    except yaml.YAMLError:
        return


def count(event: Any, tally: Tally, source: str, yaml: Any) -> None:
    line = event.start_mark.line + 1
    if isinstance(event, yaml.ScalarEvent):
        added(tally, 1, 0, line, source)
        if event.anchor:
            tally.sizes[event.anchor] = (1, 0)
    elif isinstance(event, yaml.AliasEvent):
        tally.aliases += 1
        if tally.aliases > MAX_ALIASES:
            raise refuse(source, line, f"more than {MAX_ALIASES:,} aliases (*name); forkflow reads at most {MAX_ALIASES:,}",
                         FEWER)
        anchor = str(event.anchor)
        if any(entry.anchor == anchor for entry in tally.stack):
            raise refuse(source, line, f"alias *{anchor} is inside its own anchor &{anchor} (a value that contains itself)",
                         f"remove *{anchor} from inside the value it names")
        values, height = tally.sizes.get(anchor, (1, 0))
        added(tally, values, height, line, source)
    elif isinstance(event, yaml.CollectionStartEvent):
        tally.values += 1
        tally.stack.append(Open(tally.values, event.anchor))
        if len(tally.stack) > MAX_DEPTH:
            raise refuse(source, line, f"nested more than {MAX_DEPTH} levels deep; forkflow reads at most {MAX_DEPTH}", FLATTEN)
    elif isinstance(event, yaml.CollectionEndEvent):
        closed = tally.stack.pop()
        if closed.anchor:
            tally.sizes[closed.anchor] = (tally.values - closed.start + 1, closed.height + 1)
        if tally.stack:
            tally.stack[-1].height = max(tally.stack[-1].height, closed.height + 1)


def added(tally: Tally, values: int, height: int, line: int, source: str) -> None:
    """Count a value (an alias: all it stands for) into the document and its open parent."""
    tally.values += values
    if tally.values > MAX_VALUES:
        raise refuse(source, line, f"the document expands to more than {MAX_VALUES:,} values (its aliases repeat "
                                   f"what their anchors hold); forkflow reads at most {MAX_VALUES:,}", FEWER)
    if len(tally.stack) + height > MAX_DEPTH:
        raise refuse(source, line, f"nested more than {MAX_DEPTH} levels deep (counting what aliases stand for); "
                                   f"forkflow reads at most {MAX_DEPTH}", FLATTEN)
    if tally.stack:
        tally.stack[-1].height = max(tally.stack[-1].height, height)
