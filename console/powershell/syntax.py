"""PowerShell parsed with tree-sitter-powershell, a real grammar of the language.

The grammar is lenient (it accepts some invalid code, and it does not end single-quoted strings
at U+2018..U+201B as PowerShell does), so it tells commands, parameters, types and literals
apart; rules it cannot express are checked separately (console.powershell.check).
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import tree_sitter
import tree_sitter_powershell

Node = tree_sitter.Node


@cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse(text: str) -> tree_sitter.Tree:
    """The syntax tree of `text`; node byte offsets are into text.encode('utf-8')."""
    return _parser().parse(text.encode("utf-8"))


def walk(node: Node) -> Iterator[Node]:
    """Every node below `node` (itself included), in document order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text_of(node: Node) -> str:
    return (node.text or b"").decode("utf-8")
