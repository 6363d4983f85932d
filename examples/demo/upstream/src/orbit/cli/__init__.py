"""Command line interface (not part of orbit-client)."""

import sys

from orbit import greet


def main() -> None:
    print(greet(sys.argv[1] if len(sys.argv) > 1 else "world"))
