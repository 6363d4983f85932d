"""Parse a Python file from a repository with a bound on how deeply its code nests.

Python's parser gives up on a long chain such as a 100,000-term `1+1+...`
with a RecursionError (or a MemoryError for `------...1`), and a tree only a
few hundred levels deep still breaks the recursive walks that read names and
constants from it (`ast.unparse`, `ast.literal_eval`, static_values). Both
become a `TooDeep` naming the line and the limit, so one hostile file is one
problem in the listing, not a crash of the whole flows stage.
"""

from __future__ import annotations

import ast
import io
import tokenize

MAX_DEPTH = 100  # levels of syntax tree; ordinary code stays far below 40


class TooDeep(Exception):
    """The file's code nests deeper than forkflow reads; `line` is where."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def parse_python(text: str, file: str) -> ast.Module:
    """The syntax tree of `text`; SyntaxError as ast.parse raises it, TooDeep past MAX_DEPTH levels."""
    try:
        tree = ast.parse(text, filename=file)
    except (RecursionError, MemoryError):
        raise TooDeep(busiest_line(text), "code nested too deeply for Python's parser "
                                          f"(forkflow reads at most {MAX_DEPTH} levels)") from None
    line = too_deep_at(tree)
    if line is not None:
        raise TooDeep(line, f"code nested more than {MAX_DEPTH} levels deep (forkflow reads at most {MAX_DEPTH} levels)")
    return tree


def too_deep_at(tree: ast.AST) -> int | None:
    """The line of the first node deeper than MAX_DEPTH, or None; walked without recursion."""
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 1)]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        if depth > MAX_DEPTH:
            return line
        stack.extend((child, depth + 1, line) for child in ast.iter_child_nodes(node))
    return None


def busiest_line(text: str) -> int:
    """The first line of the statement with the most tokens: where a parser that gave up most likely did."""
    best_line, best_count, start, count = 1, 0, 1, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if count == 0 and token.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            if count == 0:
                start = token.start[0]
            count += 1
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if count > best_count:
                    best_line, best_count = start, count
                count = 0
    except (tokenize.TokenError, SyntaxError):
        if count > best_count:
            best_line = start
    return best_line
