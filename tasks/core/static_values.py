"""Values in Python source that can be known without running it.

Literals, module-level constants (`FLOW_NAME = "etl"`), f-strings whose
fields are such values (`f"Bond Reporting"`, `f"{PREFIX}-daily"`), `+` of
strings, numbers or lists, builtin conversions of them (`str(False)`,
`dict(a=1)`), and containers of all these. Anything else (a
call, an attribute, an import from elsewhere) is not static and says why.
"""

from __future__ import annotations

import ast
from typing import Any


class NotStatic(Exception):
    """The expression needs the program to run; the message names the part."""


def module_constants(tree: ast.Module, imported: dict[str, Any] | None = None) -> dict[str, Any]:
    """Module-level names bound once to a static value (a name bound twice is left out); `imported` are the
    constants its imports bind (from the project's own modules), which a binding here replaces."""
    values: dict[str, Any] = dict(imported or {})
    fresh = set(values)
    bound_twice: set[str] = bound_elsewhere(tree)
    for name in bound_twice & fresh:
        values.pop(name)
    for node in tree.body:
        for name, value in assignments(node):
            if name in fresh:
                fresh.discard(name)
                values.pop(name)
            if name in values or name in bound_twice:
                bound_twice.add(name)
                values.pop(name, None)
                continue
            try:
                values[name] = static_value(value, values)
            except NotStatic:
                bound_twice.add(name)
    return values


def bound_elsewhere(tree: ast.Module) -> set[str]:
    """Module names bound other than by a plain top-level assignment: inside `if`/`try`/`for`/`with` at module
    level, or by `global` in a function; their value depends on running the file."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If | ast.Try | ast.For | ast.While | ast.With):
            names.update(target.id for inner in ast.walk(node) if isinstance(inner, ast.Assign | ast.AugAssign | ast.AnnAssign)
                         for target in ([inner.target] if not isinstance(inner, ast.Assign) else inner.targets)
                         if isinstance(target, ast.Name))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    names.update(name for inner in ast.walk(tree) if isinstance(inner, ast.Global) for name in inner.names)
    return names


def assignments(node: ast.stmt) -> list[tuple[str, ast.expr]]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return [(node.targets[0].id, node.value)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return [(node.target.id, node.value)]
    return []


def static_value(node: ast.expr, constants: dict[str, Any]) -> Any:
    """The value of `node`, or NotStatic."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in constants:
            return constants[node.id]
        raise NotStatic(f"{node.id} is not a module-level constant")
    if isinstance(node, ast.JoinedStr | ast.BinOp | ast.UnaryOp):
        return operation_value(node, constants)
    return container_value(node, constants)


def operation_value(node: ast.JoinedStr | ast.BinOp | ast.UnaryOp, constants: dict[str, Any]) -> Any:
    """An f-string without fields, `a + b`, or `-number`, of static values."""
    if isinstance(node, ast.JoinedStr):
        return "".join(joined_part(part, constants) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return added(static_value(node.left, constants), static_value(node.right, constants), node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = static_value(node.operand, constants)
        if isinstance(value, int | float):
            return -value
    raise NotStatic(f"{ast.unparse(node)} is not a literal or module-level constant")


def container_value(node: ast.expr, constants: dict[str, Any]) -> Any:
    """A list, tuple, set or dict of static values, or a builtin conversion of them."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [static_value(item, constants) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return dict_value(node, constants)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CONVERSIONS:
        return conversion(node, constants)
    raise NotStatic(f"{ast.unparse(node)} is not a literal or module-level constant")


CONVERSIONS: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "tuple": tuple,
                               "dict": dict}


def conversion(node: ast.Call, constants: dict[str, Any]) -> Any:
    """`str(False)`, `dict(a=1)`, `list(("x",))`: a builtin conversion of static values (unless the name is rebound)."""
    assert isinstance(node.func, ast.Name)
    if node.func.id in constants:
        raise NotStatic(f"{node.func.id} is rebound in this module")
    args = [static_value(arg, constants) for arg in node.args]
    kwargs = {k.arg: static_value(k.value, constants) for k in node.keywords if k.arg}
    if len(kwargs) != len(node.keywords):
        raise NotStatic(f"{ast.unparse(node)} unpacks a mapping")
    try:
        return CONVERSIONS[node.func.id](*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise NotStatic(f"{ast.unparse(node)}: {err}") from None


def joined_part(part: ast.expr, constants: dict[str, Any]) -> str:
    if isinstance(part, ast.Constant):
        return str(part.value)
    if isinstance(part, ast.FormattedValue) and part.format_spec is None and part.conversion in (-1, 115):
        return str(static_value(part.value, constants))
    raise NotStatic(f"f-string field {ast.unparse(part)} is not a constant")


def added(left: Any, right: Any, node: ast.expr) -> Any:
    same_kind = type(left) is type(right) and isinstance(left, str | list | tuple)
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    if same_kind or numbers:
        return left + right
    raise NotStatic(f"{ast.unparse(node)} adds values of different kinds")


def dict_value(node: ast.Dict, constants: dict[str, Any]) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:
            extra = static_value(value, constants)
            if not isinstance(extra, dict):
                raise NotStatic(f"**{ast.unparse(value)} is not a dict")
            result.update(extra)
        else:
            result[static_value(key, constants)] = static_value(value, constants)
    return result
