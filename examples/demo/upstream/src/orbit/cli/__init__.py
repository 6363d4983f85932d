"""Command line interface (not part of orbit-client)."""

import sys

from orbit import __git_commit__, __version__, greet


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["version"]:
        print(f"Version: {__version__}\nCommit: {__git_commit__}")
        return
    print(greet(args[0] if args else "world"))
