"""What a project's own modules offer the files that import them: names meaning Prefect's flow (a `flow`
of the project's own) and constants (`from config_flows import APPLICATION_NAME` in a flow's name).

Flow files are read without running them, so an import is followed one level, into modules of the same
project (its git-tracked files), never into installed packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tasks.core.discovery import is_flow_reference, prefect_aliases
from tasks.core.modules import imported_module, module_names, package_of
from tasks.core.pysource import TooDeep, parse_python
from tasks.core.static_values import module_constants


@dataclass(frozen=True)
class LocalModules:
    """Module name -> what it offers."""

    flows: dict[str, set[str]] = field(default_factory=dict)
    constants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def imported_constants(self, tree: ast.Module, package: str) -> dict[str, Any]:
        """The constants a module imports from the project's modules, by the names it binds them to."""
        found: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                offered = self.constants.get(imported_module(node, package), {})
                found.update({alias.asname or alias.name: offered[alias.name] for alias in node.names
                              if alias.name in offered})
        return found


Offers = tuple[set[str], dict[str, Any]]  # what one file offers: names meaning Prefect's flow, constants


def local_modules(sources: dict[str, str]) -> LocalModules:
    """What each of the project's files offers, by the module names it is imported as."""
    return from_offers((file, file_offers(text, file)) for file, text in sources.items())


def file_offers(text: str, file: str) -> Offers:
    """What one file offers the project's other files (nothing when it does not parse: discovery reports it)."""
    return file_facts(text, file)[0]


def file_facts(text: str, file: str) -> tuple[Offers, list[str]]:
    """What one file offers the others, and every module its `from ... import` lines name: all that its own
    discovery reads of the others' offers."""
    try:
        tree = parse_python(text, file)
    except (SyntaxError, TooDeep):
        return (set(), {}), []
    package = package_of(file)
    imports = sorted({imported_module(node, package) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)})
    return (flow_names_offered(tree), module_constants(tree)), imports


def from_offers(offers: Iterable[tuple[str, Offers]]) -> LocalModules:
    """The files' offers by module name; of two files one module name stands for, the last that offers any."""
    flows: dict[str, set[str]] = {}
    constants: dict[str, dict[str, Any]] = {}
    for file, (names, values) in offers:
        for module in module_names(file):
            if names:
                flows[module] = names
            if values:
                constants[module] = values
    return LocalModules(flows, constants)


def flow_names_offered(tree: ast.Module) -> set[str]:
    """Imported from prefect, assigned from it, or a function returning a call of it
    (`def flow(*args, **kwargs): return prefect_flow(*args, **kwargs)`)."""
    aliases = prefect_aliases(tree)
    names = set(aliases.flow_names)
    for node in tree.body:
        if isinstance(node, ast.Assign) and is_flow_reference(node.value, aliases):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.FunctionDef) and passes_names_through(node, aliases):
            names.add(node.name)
    return names


def passes_names_through(function: ast.FunctionDef, aliases: Any) -> bool:
    """The function returns a call of Prefect's flow that leaves the name to its caller: a `name=` of its own
    (`name=f"rj-{name}"`) would make the call site's name not the flow's."""
    calls = [inner.value for inner in ast.walk(function) if isinstance(inner, ast.Return)
             and isinstance(inner.value, ast.Call) and is_flow_reference(inner.value.func, aliases)]
    return bool(calls) and not any(keyword.arg == "name" for call in calls for keyword in call.keywords)
