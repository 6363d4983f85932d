# The parts of doit (untyped upstream) that forkflow uses.
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

def create_after(
    executed: str | None = ..., target_regex: str | None = ..., creates: Sequence[str] | None = ...
) -> Callable[[_F], _F]: ...
def task_params(param_def: Sequence[dict[str, Any]]) -> Callable[[_F], _F]: ...
