"""Read YAML the strict way: a key given twice in one mapping is an error with its line, not a silent merge.

YAML anchors and merge keys (`<<: *defaults`, as prefect.yaml's
`definitions:` use them) still work: a merge key's values yield to the
mapping's own keys, as YAML says; only a key written twice is refused.

A file from a repository is read within limits (see yamllimits): its
size, how deeply it nests and how many values its aliases expand to, so an
alias bomb or a 100,000-deep list is refused with its line before anything
is built from it. A mapping key must be a plain value: a list or mapping as
a key is refused with its line.
"""

from __future__ import annotations

from typing import Any

import yaml

from tasks.core.errors import ConfigError
from tasks.core.yamllimits import check_limits

try:  # the C loader when libyaml is there: the same results, several times faster
    from yaml import CSafeLoader as BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as BaseLoader  # type: ignore[assignment]


class StrictLoader(BaseLoader):
    """SafeLoader that refuses duplicate keys."""


def construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, list | dict | set):
            raise BadKey(type(key).__name__, line)
        if key in seen:
            raise DuplicateKey(key, seen[key], line)
        seen[key] = line
    return dict(yaml.SafeLoader.construct_mapping(loader, node, deep=deep))


class BadKey(Exception):
    def __init__(self, kind: str, line: int):
        super().__init__(f"a mapping key is a {kind}; keys must be plain values (text, a number)")
        self.line = line


class DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"key {key!r} is given twice (line {first} and line {again})")
        self.line = again


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)


def load_yaml(text: str, source: str) -> Any:
    """The document in `text`, or a ConfigError naming `source`, the line and what is wrong."""
    check_limits(text, source, BaseLoader)
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except BadKey as err:
        where = f"{source}:{err.line}"
        raise ConfigError(f"{where}: {err}", where=where,
                          fix="write the key as text (quote it), or move the list into the value") from None
    except DuplicateKey as err:
        where = f"{source}:{err.line}"
        raise ConfigError(f"{where}: {err}", where=where, fix="keep one of the two; YAML would silently use the last") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}", where=where,
                          fix="fix the YAML syntax at that line") from None
