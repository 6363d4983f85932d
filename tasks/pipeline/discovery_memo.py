"""Flow discovery remembered per file, so a run after one flow file changed parses that file, not the folder.

A file's flows and problems depend on its own text and on what the modules it
imports from offer it (tasks.core.local_modules: names meaning Prefect's
flow, constants). Each file's flows, what it offers and the modules it imports
from are remembered in the state folder, by the file's content and the rules'
own code. A file's flows are reused while its text and what its imports offer
are unchanged, and found again otherwise: a constant changed in one module
parses again that module and the files importing from it. A file whose offers
cannot be written down exactly (a constant such as `float("nan")`) is parsed
for them on every run. The answer is always the one parsing every file gives.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tasks.core.discovery import DiscoveryError, FlowInfo, discover_source, flow_entry, flow_from_entry
from tasks.core.local_modules import LocalModules, Offers, file_facts, from_offers
from tasks.pipeline.settings import read_json, write_json

DISCOVERY_FILE = "flows-discovery.json"
# tasks/core modules whose rules decide what a file holds
DISCOVERY_CODE = ("discovery.py", "local_modules.py", "modules.py", "pysource.py", "static_values.py")


def discover_remembered(state_dir: Path, root: Path, files: list[str]) -> tuple[list[FlowInfo], list[DiscoveryError]]:
    """Every flow in the files, and every problem, parsing only the files whose text changed or whose imports now offer something
    else (a constant, a `flow` of the project's own)."""
    sources, errors = read_sources(root, files)
    memo = state_dir / DISCOVERY_FILE
    saved = read_json(memo) or {}
    stamp = code_stamp(root)
    known = saved.get("files") if saved.get("code") == stamp else None
    known = known if isinstance(known, dict) else {}
    digests = {name: hashlib.sha256(raw).hexdigest() for name, (raw, _) in sources.items()}
    same = {name for name in sources if is_entry(known.get(name)) and known[name].get("sha") == digests[name]}
    facts = {name: (unchanged_facts(known[name]) if name in same else None) or file_facts(text, name)
             for name, (_, text) in sources.items()}
    local = from_offers((name, offers) for name, (offers, _) in facts.items())
    flows: list[FlowInfo] = []
    entries: dict[str, Any] = {}
    for name, (_, text) in sources.items():
        offers, imports = facts[name]
        uses = uses_digest(local, imports)
        reused = name in same and known[name].get("uses") == uses and remembered_flows(known[name])
        found, problems = reused or discover_source(text, name, local)
        flows += found
        errors += problems
        entries[name] = {"sha": digests[name], "offers": written(offers), "imports": imports, "uses": uses,
                         "flows": [flow_entry(flow) for flow in found], "errors": [asdict(p) for p in problems]}
    if (saved.get("code"), known) != (stamp, entries):  # a change to the deployment config alone writes nothing
        write_json(memo, {"code": stamp, "files": entries}, compact=True)
    return flows, errors


def is_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("flows"), list) and isinstance(entry.get("errors"), list)


def remembered_flows(entry: dict[str, Any]) -> tuple[list[FlowInfo], list[DiscoveryError]] | None:
    """A file's flows and problems as remembered, or None when the entry cannot be read (the file is parsed)."""
    try:
        return [flow_from_entry(item) for item in entry["flows"]], [DiscoveryError(**item) for item in entry["errors"]]
    except (KeyError, TypeError, ValueError):
        return None


def read_sources(root: Path, files: list[str]) -> tuple[dict[str, tuple[bytes, str]], list[DiscoveryError]]:
    """Each file's bytes and text (a byte-order mark is no syntax error); one problem per file that cannot be read."""
    sources: dict[str, tuple[bytes, str]] = {}
    errors: list[DiscoveryError] = []
    for name in files:
        try:
            raw = (root / name).read_bytes()
            sources[name] = (raw, raw.decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError) as err:
            errors.append(DiscoveryError(name, 0, f"cannot read: {err}"))
    return sources, errors


def code_stamp(root: Path) -> str:
    """The flows folder, the Python reading the files (its syntax) and the rules' own code."""
    digest = hashlib.sha256(f"{root}\0{sys.version_info[:2]}".encode())
    for module in DISCOVERY_CODE:
        digest.update((Path(__file__).parent.parent / "core" / module).read_bytes())
    return digest.hexdigest()


def written(offers: Offers) -> list[Any] | None:
    """A file's offers as JSON, or None when they cannot be read back exactly (then the file is parsed for them)."""
    names, values = offers
    text = repr(values)
    try:
        exact = text == "{}" or ((back := ast.literal_eval(text)) == values and repr(back) == text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        exact = False
    return [sorted(names), text] if exact else None


def unchanged_facts(entry: dict[str, Any]) -> tuple[Offers, list[str]] | None:
    """The offers and imports remembered for a file whose text is unchanged, or None (not written down, or
    unreadable): then the file is parsed for them."""
    try:
        names, text = entry["offers"]
        imports = [str(module) for module in entry["imports"]]
        return ({str(name) for name in names}, (ast.literal_eval(text) if text != "{}" else {})), imports
    except (KeyError, TypeError, ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def uses_digest(local: LocalModules, imports: list[str]) -> str:
    """What the modules a file imports offer it, the same text in every process (sets sorted)."""
    used = [[module, sorted(local.flows.get(module, ())),
             canonical(local.constants[module]) if module in local.constants else None] for module in imports]
    return hashlib.sha256(json.dumps(used).encode()).hexdigest()


def canonical(value: Any) -> str:
    """A value's repr with every set's items in one order (a set of text prints in a different order per process)."""
    if isinstance(value, set | frozenset):
        return f"{type(value).__name__}({sorted(canonical(item) for item in value)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{canonical(k)}: {canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}({[canonical(item) for item in value]})"
    return repr(value)
