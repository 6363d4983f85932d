"""Which git commands talk to a remote, and which remote: they are the ones bounded by [timeouts] git."""

from __future__ import annotations

from tasks.core.secrets import mask_urls

REMOTE_COMMANDS = ("ls-remote", "fetch", "push", "clone")
NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0"}  # a remote asking for a password fails at once instead of waiting
OPTIONS_WITH_VALUES = ("--origin", "-o", "--branch", "-b", "--depth", "--refmap")


def remote_of(args: tuple[str, ...]) -> str:
    """The remote a `git fetch/push/ls-remote/clone` command talks to (its first argument that is not an option)."""
    rest = iter(args[1:])
    for arg in rest:
        if arg in OPTIONS_WITH_VALUES:
            next(rest, None)
        elif not arg.startswith("-"):
            return mask_urls(arg)
    return "(default remote)"
