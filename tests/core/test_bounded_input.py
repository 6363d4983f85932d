"""Bad input is bounded: YAML limits, keys that are lists, flow files nested too deeply, names with control characters."""

from __future__ import annotations

import pytest

from tasks.core.discovery import discover_source
from tasks.core.errors import ConfigError
from tasks.core.local_modules import local_modules
from tasks.core.pysource import MAX_DEPTH, TooDeep, parse_python
from tasks.core.text import printable, shown
from tasks.core.yamlfile import load_yaml
from tasks.core.yamllimits import MAX_ALIASES, MAX_BYTES, MAX_VALUES


def alias_bomb(indent: str = "") -> str:
    """Nine levels of nine aliases each: a few hundred bytes that stand for 387 million values."""
    lines = [f"{indent}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(8):
        name, previous = chr(98 + level), chr(97 + level)
        lines.append(f"{indent}{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "prefect.yaml")
    return str(caught.value)


def test_an_alias_bomb_is_refused_with_its_line_and_the_limit() -> None:
    message = refusal("deployments:\n  - name: x\n    parameters:\n" + alias_bomb("      "))
    assert message.startswith("prefect.yaml:9: the document expands to more than")
    assert f"{MAX_VALUES:,}" in message and "fix:" in message


def test_deep_nesting_is_refused_with_its_line_and_the_limit() -> None:
    assert refusal("x:\n  y: " + "[" * 100_000 + "]" * 100_000 + "\n").startswith("prefect.yaml:2: nested more than 64 levels")
    nested = "".join("  " * level + f"k{level}:\n" for level in range(100))
    assert "prefect.yaml:65: nested more than 64" in refusal(nested)


def test_an_alias_counts_as_deep_as_what_it_stands_for() -> None:
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
    assert "prefect.yaml:2: nested more than 64 levels deep (counting what aliases stand for)" in refusal(deep)


def test_too_many_aliases_a_self_containing_value_and_a_huge_file_are_refused() -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"prefect.yaml:2: more than {MAX_ALIASES:,} aliases" in refusal(many)
    assert "prefect.yaml:1: alias *a is inside its own anchor &a" in refusal("a: &a [1, *a]\n")
    assert f"at most {MAX_BYTES:,}" in refusal("x: " + "a" * MAX_BYTES)


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = "definitions:\n  d: &d {a: 1, b: 2}\n  s: &s [1, 2]\nx:\n  <<: *d\n  b: 3\n  c: *s\n"
    assert load_yaml(text, "prefect.yaml")["x"] == {"a": 1, "b": 3, "c": [1, 2]}


@pytest.mark.parametrize("key", ["[a, b]", "{a: 1}"])
def test_a_mapping_key_that_is_a_list_or_mapping_is_a_message(key: str) -> None:
    message = refusal(f"deployments:\n  - name: x\n    ? {key}\n    : 1\n")
    assert message.startswith("prefect.yaml:3: a mapping key is a ") and "fix:" in message


def huge_expression(terms: int) -> str:
    return "from prefect import flow\n\nX = " + " + ".join(["1"] * terms) + "\n\n@flow\ndef ok():\n    pass\n"


@pytest.mark.parametrize("terms", [300, 100_000])
def test_a_huge_expression_in_a_flow_file_is_one_problem_with_its_line(terms: int) -> None:
    flows, errors = discover_source(huge_expression(terms), "big.py", local_modules({"big.py": huge_expression(terms)}))
    assert flows == []
    assert [str(error).split(":")[:2] for error in errors] == [["big.py", "3"]]
    assert f"at most {MAX_DEPTH} levels" in errors[0].message


def test_a_long_unary_chain_is_refused_too() -> None:
    with pytest.raises(TooDeep) as caught:
        parse_python("a = 1\nb = " + "-" * 100_000 + "1\n", "neg.py")
    assert caught.value.line == 2


def test_ordinary_code_parses() -> None:
    assert parse_python(huge_expression(50), "ok.py").body


def test_control_characters_are_escaped() -> None:
    name = "evil\x1b[31mred\nfix: do bad\x07\u202e"
    assert shown(name) == "evil\\x1b[31mred\\nfix: do bad\\x07\\u202e"
    assert printable(f"line one {name}\n  where: x\tthere") == "line one evil\\x1b[31mred\nfix: do bad\\x07\\u202e\n  where: x\tthere"
