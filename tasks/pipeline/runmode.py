"""What this run is, read once from doit's own command-line parsing.

dodo.py builds one `RunMode` as doit loads it and installs it here; task creators read it with `run_mode()`, and
every action carries it (see `tasks.pipeline.actions.guarded`), so a worker process started by `doit -n N` under any
multiprocessing start method runs with the same mode as the process that parsed the command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doit.cmd_base import get_loader
from doit.cmd_dumpdb import DumpDB
from doit.cmd_help import Help
from doit.cmd_info import Info
from doit.cmd_list import List
from doit.cmdparse import CmdOption, CmdParse, CmdParseError
from doit.doit_cmd import DoitMain

from tasks.core.errors import ConfigError

if TYPE_CHECKING:
    from tasks.core.config import Config

DRY_RUN_ENV = "FORKFLOW_DRY_RUN"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")
# doit's commands that neither execute an action nor write doit's database; every other command (run, strace,
# clean, forget, ignore, reset-dep, and any plugin command such as `auto`) holds the state lock
READ_ONLY_COMMANDS: tuple[type, ...] = (List, Help, Info, DumpDB)
READ_ONLY_NAMES = ("tabcompletion",)


@dataclass(frozen=True)
class RunMode:
    """One doit invocation: its command, the tasks it names, and what forkflow makes of them."""

    command: str = "run"
    tasks: tuple[str, ...] = ()
    dry_run: bool = False
    planned: tuple[str, ...] = ()  # stages whose remote writes a bare `doit` only plans
    workers: int = 1
    executes: bool = True  # the command can execute an action or write doit's database: it needs the lock
    runs_tasks: bool = True  # `doit`, `doit run ...`, `doit <task>`, `doit strace <task>`
    started: float = 0.0  # when the run started (time.time()), for "made in this run" in any worker process
    named: tuple[str, ...] = ()  # every task the command names (`doit info deploy:x`, `doit forget deploy:x` too)
    lists_all: bool = False  # `doit list --all`: subtasks are shown

    def names_subtasks_of(self, basename: str) -> tuple[str, ...] | None:
        """The `<basename>:<sub>` tasks this run must be able to find: all of them (None) for `doit list --all`,
        else those it names (often none: `doit`, `doit deploy` and `doit list` build no per-item subtask)."""
        if self.lists_all:
            return None
        return tuple(name for name in self.named if name.startswith(basename + ":"))

    def syncs_first(self, default_tasks: Sequence[str]) -> list[str]:
        """The sync tasks this run runs (those it names, or `default_tasks` when it names none): what reads the
        fork's checkout waits for them, since doit's parallel workers (`-n N`) do not keep the command line's order
        and would version and build the branch as it was before the sync moved it."""
        return [task for task in self.tasks or default_tasks if task == "sync" or task.startswith("sync:")]

    def plans_only(self, stage: str) -> bool:
        """True when this stage's remote writes are only planned in this run (a bare `doit` without [demo])."""
        return stage in self.planned


_installed: list[RunMode] = []


def install(mode: RunMode) -> None:
    """Make mode this process's run mode (dodo.py once; a worker before each action)."""
    _installed[:] = [mode]


@contextmanager
def installed(mode: RunMode) -> Iterator[None]:
    """mode as this process's run mode while an action runs (the one before it afterwards)."""
    before = list(_installed)
    install(mode)
    try:
        yield
    finally:
        _installed[:] = before


def run_mode() -> RunMode:
    """This process's run mode; a plain `doit` run when none was installed (a task module used on its own)."""
    return _installed[0] if _installed else RunMode(dry_run=dry_run_from_env(os.environ))


def after_sync(config: Config) -> list[str]:
    """The sync tasks of this run, for a task that reads the fork's checkout to wait for: versions (and all that is
    built from them) come from the branch as the sync leaves it."""
    from tasks.core.stages import configured_stages

    return run_mode().syncs_first(configured_stages(config))


def dry_run_from_env(env: Mapping[str, str]) -> bool:
    """FORKFLOW_DRY_RUN as a boolean: 1/true/yes/on, or 0/false/no/off/empty; anything else is refused."""
    value = env.get(DRY_RUN_ENV, "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ConfigError(f"{DRY_RUN_ENV}={env.get(DRY_RUN_ENV)!r} is not a boolean", where="the environment",
                      fix=f"set {DRY_RUN_ENV} to one of {', '.join(TRUE_WORDS)} (dry run) or "
                          f"{', '.join(w for w in FALSE_WORDS if w)} (a real run), or unset it")


def read_run_mode(argv: Sequence[str], env: Mapping[str, str], planned_stages: Sequence[str] = ()) -> RunMode:
    """The run mode of `doit <argv>`, parsed the way doit's DoitMain.run parses it (same commands, same options).
    `planned_stages` are the stages a bare `doit` only plans on this config."""
    name, command_class, params, positional = parse_command_line(list(argv))
    runs_tasks = bool(getattr(command_class, "execute_tasks", False))
    tasks = tuple(positional) if runs_tasks else ()
    bare_run = name == "run" and not tasks
    return RunMode(
        command=name,
        tasks=tasks,
        dry_run=dry_run_from_env(env) or (runs_tasks and "--dry-run" in positional),
        planned=tuple(planned_stages) if bare_run else (),
        workers=max(1, int(params.get("num_process") or 0)) if runs_tasks else 1,
        executes=not (issubclass(command_class, READ_ONLY_COMMANDS) or name in READ_ONLY_NAMES),
        runs_tasks=runs_tasks,
        named=tuple(arg for arg in positional if not arg.startswith("-")),
        started=time.time(),
        lists_all=name == "list" and bool(params.get("subtasks")),  # --all
    )


def read_plugins_once() -> None:
    """doit looks up its plugins in every installed distribution's entry points at each use (commands, loaders,
    backends, reporters: three or four scans of a few hundred distributions in one start, about 10 ms each).
    They cannot change while a process runs, so from here on one scan answers every lookup."""
    import doit.plugin

    if getattr(doit.plugin.entry_points_impl, "scans_once", False):
        return
    from importlib.metadata import EntryPoints, entry_points

    found: list[Any] = []  # all entry points: SelectableGroups up to Python 3.11, EntryPoints from 3.12

    def select(group: str) -> EntryPoints:
        if not found:
            found.append(entry_points())
        selected: EntryPoints = found[0].select(group=group)
        return selected

    def entry_points_impl() -> Any:
        return select

    entry_points_impl.scans_once = True  # type: ignore[attr-defined]
    doit.plugin.entry_points_impl = entry_points_impl


class CreatorLines:
    """`inspect` for doit's loader, whose one use of `getsourcelines` is the line a task creator starts at (to
    order the creators): read from the function's code object instead of reading and tokenizing its source
    file (about 25 creators, each module tokenized again at every start). The same line: a code object's first
    line is its `def`, or its first decorator, which is where `inspect.findsource` stops too."""

    def __getattr__(self, name: str) -> Any:
        import inspect

        return getattr(inspect, name)

    @staticmethod
    def getsourcelines(creator: Any) -> tuple[list[str], int]:
        import inspect

        code = getattr(inspect.unwrap(creator), "__code__", None)
        if code is None:
            return inspect.getsourcelines(creator)
        return [], code.co_firstlineno


def read_creator_lines_from_code() -> None:
    import doit.loader

    if not isinstance(doit.loader.inspect, CreatorLines):
        doit.loader.inspect = CreatorLines()


def parse_command_line(args: list[str]) -> tuple[str, type, dict[str, Any], list[str]]:
    """(command name, command class, option values, positional arguments), as doit itself reads them."""
    read_plugins_once()
    read_creator_lines_from_code()
    main = DoitMain()
    commands = main.get_cmds()
    loader = get_loader(main.config, None, commands)
    try:
        loader_params, rest = CmdParse([CmdOption(opt) for opt in loader.cmd_options]).parse_only(args)
    except CmdParseError:
        loader_params, rest = {}, args
    rest = [arg for arg in rest if arg.startswith("-") or "=" not in arg]  # doit's command-line variables
    name = rest.pop(0) if rest and rest[0] in commands else "run"
    command_class = commands.get_plugin(name)
    command = command_class(task_loader=loader, config=main.config, bin_name="doit", cmds=commands,
                            opt_vals=loader_params)
    try:
        params, positional = command.cmdparser.parse(rest)
    except CmdParseError:
        params, positional = {}, rest  # doit reports the bad option itself, after loading
    return name, command_class, {**params, **loader_params}, list(positional)
