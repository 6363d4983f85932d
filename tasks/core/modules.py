"""Python module names of a project's files, and the modules its imports name."""

from __future__ import annotations

import ast


def imported_module(node: ast.ImportFrom, package: str) -> str:
    """The absolute module an import names (`from .utils import flow` in package `a.b` -> `a.b.utils`)."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


def module_names(file: str) -> list[str]:
    """The module names a file is imported by: `pkg/mod.py` -> `pkg.mod` (and without a leading `src/`)."""
    path = file.removesuffix(".py").removesuffix("/__init__")
    names = [path.replace("/", ".")]
    if path.startswith("src/"):
        names.append(path.removeprefix("src/").replace("/", "."))
    return names


def package_of(file: str) -> str:
    """The package a file's relative imports start from."""
    module = module_names(file)[-1]
    return module if file.endswith("__init__.py") else module.rpartition(".")[0]
