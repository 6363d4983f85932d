"""Command line interface (not part of orbit-client)."""

import sys

from orbit import __git_commit__, __version__, greet


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["version"]:
        print(f"Version: {__version__}\nCommit: {__git_commit__}")
        return
    if args[:2] == ["server", "start"]:
        from orbit.server.app import serve

        options = dict(zip(args[2::2], args[3::2]))
        serve(options.get("--host", "127.0.0.1"), int(options.get("--port", "4200")))
        return
    print(greet(args[0] if args else "world"))
