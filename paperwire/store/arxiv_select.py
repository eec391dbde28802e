"""The arXiv API's search_query trees (paperwire/arxiv_query.py) as SQL: which papers match, how many,
in what order. User text only ever reaches the database as bound parameters (with LIKE wildcards
escaped), so a query cannot change the statement."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from paperwire.arxiv_query import MAX_TERMS, Node, Term, positive_terms
from paperwire.model import Paper
from paperwire.store.rows import COLUMNS, row_paper

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore

# Sort orders of the arXiv API; relevance is computed from the query's terms.
SORT_COLUMNS = {
    "relevance": None,
    "submittedDate": "COALESCE(published, listed_on)",
    "lastUpdatedDate": "COALESCE(updated, published, listed_on)",
}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _term_sql(term: Term) -> tuple[str, list[object]]:
    like = _like(term.text)
    column = {"ti": "title", "abs": "abstract", "au": "authors"}.get(term.field)
    if column:
        return f"lower({column}) LIKE ? ESCAPE '\\'", [like]
    if term.field == "cat":
        return ("EXISTS (SELECT 1 FROM json_each(papers.categories) c "
                "WHERE lower(c.value) = ? OR lower(c.value) LIKE ? ESCAPE '\\')",
                [term.text, term.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"])
    if term.field == "id":
        bare = re.sub(r"v\d+$", "", term.text)
        return "(lower(id) = ? OR lower(arxiv_id) = ?)", [bare, bare]
    if term.field == "all":
        return ("(lower(title) LIKE ? ESCAPE '\\' OR lower(abstract) LIKE ? ESCAPE '\\' "
                "OR lower(authors) LIKE ? ESCAPE '\\' OR lower(categories) LIKE ? ESCAPE '\\')", [like] * 4)
    return "1 = 0", []  # comments, journal refs and report numbers are not stored


def to_sql(tree: Node | Term) -> tuple[str, list[object]]:
    if isinstance(tree, Term):
        return _term_sql(tree)
    left, left_args = to_sql(tree.left)
    right, right_args = to_sql(tree.right)
    joiner = {"AND": "AND", "OR": "OR", "ANDNOT": "AND NOT"}[tree.op]
    return f"({left} {joiner} ({right}))", [*left_args, *right_args]


def relevance_sql(terms: list[Term]) -> tuple[str | None, list[object]]:
    """Title matches weigh 3, abstract matches 1; None when no term is scored. (Author and category
    terms would add the same to every match, so they do not change the order and are left out: a
    constant alone in ORDER BY would name a column.)"""
    parts: list[str] = []
    args: list[object] = []
    for term in terms[:MAX_TERMS]:
        if term.field in ("ti", "all"):
            parts.append("CASE WHEN instr(lower(title), ?) > 0 THEN 3 ELSE 0 END")
            args.append(term.text)
        if term.field in ("abs", "all"):
            parts.append("CASE WHEN instr(lower(abstract), ?) > 0 THEN 1 ELSE 0 END")
            args.append(term.text)
    return (" + ".join(parts) or None), args


def select_papers(store: SQLiteStore, tree: Node | Term | None, ids: list[str] | None, start: int,
                  max_results: int, sort_by: str, descending: bool) -> tuple[list[Paper], int]:
    """One page of the papers matching `tree` (all papers when None) and, when `ids` is given, among
    those stored ids only; with how many match in all."""
    where, args = ("1 = 1", []) if tree is None else to_sql(tree)
    if ids is not None:
        if not ids:
            return [], 0
        where = f"({where}) AND id IN ({','.join('?' * len(ids))})"
        args = [*args, *ids]
    conn = store.conn
    total = conn.execute(f"SELECT COUNT(*) FROM papers WHERE {where}", args).fetchone()[0]
    direction = "DESC" if descending else "ASC"
    order_column = SORT_COLUMNS[sort_by]
    # Papers without a day sort as if their day were the smallest, as SQLite has NULLs; said outright,
    # since PostgreSQL takes NULL for the largest value.
    if order_column is None:
        relevance, rel_args = relevance_sql(positive_terms(tree))
        newest = "listed_on DESC NULLS LAST, rev"
        order = f"{relevance} {direction}, {newest}" if relevance else newest
        order_args = rel_args
    else:
        nulls = "NULLS LAST" if descending else "NULLS FIRST"
        order, order_args = f"{order_column} {direction} {nulls}, rev {direction}", []
    rows = conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM papers WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, *order_args, max_results, start]).fetchall()
    return [row_paper(r) for r in rows], total
