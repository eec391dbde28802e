"""The arXiv API's search_query language, read into a tree of terms (store/arxiv_select.py turns a
tree into a parameterised SQL condition).

    query   := or ( OR or )*            precedence: ANDNOT/AND bind tighter than OR
    and     := unary ( (AND | ANDNOT | <adjacent>) unary )*
    unary   := "(" query ")" | [field ":"] (word | "quoted phrase")
    field   := ti | au | abs | co | jr | cat | rn | id | all

Terms match case-insensitively as substrings of the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELDS = {"ti", "au", "abs", "co", "jr", "cat", "rn", "id", "all"}
MAX_QUERY_CHARS = 1000
MAX_TERMS = 50
_TOKEN = re.compile(r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>AND|OR|ANDNOT)(?=[\s()"]|$)|'
                    r'(?:(?P<field>[A-Za-z]+):)?(?:"(?P<phrase>[^"]*)"?|(?P<word>[^\s()"]+)))')


class ArxivQueryError(ValueError):
    pass


@dataclass
class Term:
    field: str
    text: str


@dataclass
class Node:
    op: str  # AND | OR | ANDNOT
    left: Node | Term
    right: Node | Term


def _tokens(query: str) -> list[tuple[str, object]]:
    tokens: list[tuple[str, object]] = []
    pos = 0
    query = query.strip()
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise ArxivQueryError(f"cannot read the query at character {pos + 1}")
        pos = match.end()
        if match.group("lp"):
            tokens.append(("(", None))
        elif match.group("rp"):
            tokens.append((")", None))
        elif match.group("op"):
            tokens.append(("op", match.group("op")))
        else:
            field = (match.group("field") or "all").lower()
            if field not in FIELDS:
                raise ArxivQueryError(f"unknown field prefix {field!r}; use one of {', '.join(sorted(FIELDS))}")
            text = match.group("phrase") if match.group("phrase") is not None else match.group("word")
            text = " ".join(text.split()).lower()
            if text:
                tokens.append(("term", Term(field, text)))
        while pos < len(query) and query[pos].isspace():
            pos += 1
    return tokens


def parse(query: str) -> Node | Term | None:
    if len(query) > MAX_QUERY_CHARS:
        raise ArxivQueryError(f"search_query is longer than {MAX_QUERY_CHARS} characters")
    tokens = _tokens(query)
    if sum(1 for kind, _ in tokens if kind == "term") > MAX_TERMS:
        raise ArxivQueryError(f"search_query has more than {MAX_TERMS} terms")
    if not tokens:
        return None
    pos = 0

    def peek() -> tuple[str, object] | None:
        return tokens[pos] if pos < len(tokens) else None

    def parse_or() -> Node | Term:
        nonlocal pos
        left = parse_and()
        while (tok := peek()) and tok == ("op", "OR"):
            pos += 1
            left = Node("OR", left, parse_and())
        return left

    def parse_and() -> Node | Term:
        nonlocal pos
        left = parse_unary()
        while (tok := peek()) and tok[0] != ")" and tok != ("op", "OR"):
            op = "AND"
            if tok[0] == "op":
                op = str(tok[1])
                pos += 1
            left = Node(op, left, parse_unary())
        return left

    def parse_unary() -> Node | Term:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise ArxivQueryError("the query ends where a term was expected")
        pos += 1
        if tok[0] == "(":
            inner = parse_or()
            if peek() != (")", None):
                raise ArxivQueryError("a parenthesis is not closed")
            pos += 1
            return inner
        if tok[0] == "term":
            return tok[1]  # type: ignore[return-value]
        raise ArxivQueryError(f"unexpected {tok[1] or tok[0]!r} in the query")

    tree = parse_or()
    if pos != len(tokens):
        raise ArxivQueryError("unexpected ')' in the query")
    return tree


def positive_terms(tree: Node | Term | None) -> list[Term]:
    """Terms that count towards relevance (not the right side of ANDNOT)."""
    if tree is None:
        return []
    if isinstance(tree, Term):
        return [tree]
    if tree.op == "ANDNOT":
        return positive_terms(tree.left)
    return positive_terms(tree.left) + positive_terms(tree.right)
