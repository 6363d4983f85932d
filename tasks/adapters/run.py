"""The one way forkflow runs an outside command: quiet unless it fails.

Output is captured; on failure a CommandError carries the command, exit code
and the tail of its output, with every secret value from the environment
masked. Secrets are never put in argv: pass them through `env`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tasks.adapters.processes import tied
from tasks.core.errors import CommandError, CommandTimedOut
from tasks.core.secrets import mask, secret_values

TAIL_LINES = 40


class OnlyEnv(dict[str, str]):
    """An environment that is the whole environment of the command, nothing inherited."""


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
    fix: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv; return the finished process; raise CommandError on a non-zero exit when check.
    `env` adds to this process's environment, or replaces it when it is an `OnlyEnv`."""
    args = [str(part) for part in argv]
    full_env = dict(env) if isinstance(env, OnlyEnv) else {**os.environ, **(env or {})}
    try:
        launched, preexec = tied(args, full_env.get("PATH"), str(cwd) if cwd is not None else None)
        proc = subprocess.run(
            launched,
            cwd=cwd,
            env=full_env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=preexec,  # noqa: PLW1509 - one prctl call, only where setpriv is missing
        )
    except FileNotFoundError:
        raise CommandError(f"command not found: {args[0]}", fix=fix or f"install {args[0]} and put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise CommandTimedOut(f"command timed out after {timeout}s: {describe(args, full_env)}", fix=fix) from None
    if check and proc.returncode != 0:
        raise failure(args, proc, full_env, cwd, fix)
    return proc


def failure(args: list[str], proc: subprocess.CompletedProcess[str], env: Mapping[str, str], cwd: Path | str | None,
            fix: str | None) -> CommandError:
    output = "\n".join(part for part in (proc.stdout, proc.stderr) if part).rstrip()
    tail = "\n".join(output.splitlines()[-TAIL_LINES:])
    secrets = secret_values(env)
    text = f"command failed (exit {proc.returncode}): {describe(args, env)}"
    if tail:
        text += "\n" + "\n".join("    " + line for line in mask(tail, secrets).splitlines())
    return CommandError(text, where=str(cwd) if cwd else None, fix=fix)


def describe(args: list[str], env: Mapping[str, str]) -> str:
    return mask(shlex.join(args), secret_values(env))
