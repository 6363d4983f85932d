"""Progress lines printed by stage actions, with secrets masked and control characters escaped."""

from __future__ import annotations

import os
import sys

from tasks.core.secrets import mask, secret_values
from tasks.core.text import printable


def say(message: str) -> None:
    """Print one progress line for the person watching the run (control characters escaped)."""
    print(printable(mask(message, secret_values(os.environ))), flush=True)


def say_all(messages: list[str]) -> None:
    """`say` each line, in one write (a listing of thousands of flows is one write, not thousands)."""
    if messages:
        secrets = secret_values(os.environ)
        print("\n".join(printable(mask(message, secrets)) for message in messages), flush=True)


def warn(message: str) -> None:
    print("warning: " + printable(mask(message, secret_values(os.environ))), file=sys.stderr, flush=True)
