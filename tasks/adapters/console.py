"""Progress lines printed by stage actions, with secrets masked."""

from __future__ import annotations

import os
import sys

from tasks.core.secrets import mask, secret_values


def say(message: str) -> None:
    """Print one progress line for the person watching the run."""
    print(mask(message, secret_values(os.environ)), flush=True)


def warn(message: str) -> None:
    print("warning: " + mask(message, secret_values(os.environ)), file=sys.stderr, flush=True)
