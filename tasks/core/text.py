"""Text from a repository made safe to print: control characters escaped.

A flow or deployment name is whatever a repository's author wrote, and an
ANSI escape in it would recolour or rewrite the terminal, a newline would
forge a line of output (`fix: ...`). `shown` is for one name or value (every
control character escaped, so it stays on its line); `printable` is for a
whole message, whose own line breaks and tabs stay.
"""

from __future__ import annotations

import re

CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def escaped(char: str) -> str:
    if char in NAMED:
        return NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """`value` as text with every control character escaped (`\\x1b`, `\\n`): one line, inert on a terminal."""
    return CONTROLS.sub(lambda match: escaped(match.group()), str(value))


def printable(message: str) -> str:
    """A message with control characters escaped but its own newlines and tabs kept."""
    return CONTROLS_BUT_LINES.sub(lambda match: escaped(match.group()), message)


def first_few(names: list[str], count: int = 3) -> str:
    """`a, b, c, ...`: the first `count` names, and an ellipsis when there are more."""
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def markdown_escape(text: str) -> str:
    """A commit subject made safe for Markdown: no HTML, no accidental emphasis or links."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]])", r"\\\1", text)
