from typing import Any

class Task:
    name: str
    actions: list[Any]
    options: dict[str, Any] | None
    subtask_of: str | None
    def __init__(self, name: str, actions: Any, **kwargs: Any) -> None: ...

def dict_to_task(task_dict: dict[str, Any]) -> Task: ...
