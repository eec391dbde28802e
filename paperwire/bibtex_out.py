"""Papers written as BibTeX with bibtexparser 2.x, the library paperwire reads BibTeX with.

Entries are `@misc`, as arXiv exports preprints: eprint, archivePrefix and primaryClass for arXiv
papers, a DOI when known, the paper's web address, the abstract, and an optional note per paper in
`annote` (not `note`, which readers search for arXiv ids). Text is encoded to LaTeX by bibtexparser's
LatexEncodingMiddleware (pylatexenc), keeping `$…$` math as written, so `paperwire.sources.bibtex`
reads back the same titles, authors and abstracts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from paperwire.model import Paper

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_STOP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "towards", "toward", "via", "is", "are"}


@dataclass(frozen=True)
class BibItem:
    paper: Paper
    note: str = ""
    url: str = ""  # the paper's page on this site


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def citation_key(paper: Paper) -> str:
    """surname + year + first significant title word, e.g. `muller2024naive` (ASCII letters and digits)."""
    surname = _ascii_word(paper.authors[0].split()[-1]) if paper.authors and paper.authors[0].split() else ""
    year = (paper.published or paper.listed_on or "")[:4]
    words = [_ascii_word(w) for w in re.split(r"[\s\-:]+", paper.title)]
    first = next((w for w in words if w and w not in _STOP_WORDS), "")
    return (surname or "paper") + year + first[:20]


def _fields(item: BibItem) -> list[tuple[str, str]]:
    paper = item.paper
    fields = [("title", latex_escape(paper.title))]
    if paper.authors:
        fields.append(("author", _authors(paper.authors)))
    day = paper.published or paper.listed_on
    if day:
        fields += [("date", day), ("year", day[:4])]
        if len(day) >= 7 and day[5:7].isdecimal() and 1 <= int(day[5:7]) <= 12:
            fields.append(("month", _MONTHS[int(day[5:7]) - 1]))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archivePrefix", "arXiv")]
        if paper.categories:
            fields.append(("primaryClass", paper.categories[0]))
    if paper.doi:
        fields.append(("doi", paper.doi))
    url = f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else item.url
    if url:
        fields.append(("url", url))
    if paper.abstract:
        fields.append(("abstract", latex_escape(paper.abstract)))
    if item.note:
        fields.append(("annote", latex_escape(item.note)))
    # Identifier fields are written as they are (`_` and `%` are literal in them, and readers take them
    # undecoded); one that would break the entry's braces is left out.
    return [(name, value) for name, value in fields if name in _ESCAPED or not _UNSAFE.search(value)]


def _authors(names: list[str]) -> str:
    # A name that itself holds " and " (a team) is one braced unit, or BibTeX would split it there.
    escaped = [latex_escape(n) for n in names]
    return " and ".join(f"{{{n}}}" if re.search(r"\sand\s", n, re.IGNORECASE) else n for n in escaped)


_ESCAPED = {"title", "author", "abstract", "annote"}
_UNSAFE = re.compile(r"[{}\\\s]")


# LaTeX's special characters, and what readers would otherwise turn into other characters: `--` and `---`
# (dashes), `''` and ``` `` ``` (curly quotes), a straight `"` (a closing quote), ``?` `` (¿). Other characters are
# written as they are: the file is UTF-8, as biber and bibtexparser read it.
_SPECIAL = re.compile(r"""[\\{}$%&#_^~"`]|-(?=-)|'(?=')""")
_ESCAPES = {"\\": r"{\textbackslash}", "{": r"\{", "}": r"\}", "$": r"\$", "%": r"\%", "&": r"\&", "#": r"\#",
            "_": r"\_", "^": r"{\textasciicircum}", "~": r"{\textasciitilde}", '"': '{"}', "-": "-{}", "'": "'{}",
            "`": "{`}"}


# An @ that starts a line would start a new entry for bibtexparser (the file's entries are found line by line).
_LINE_START_AT = re.compile(r"(\n[ \t]*)@")


def latex_escape(text: str) -> str:
    """Text as LaTeX that reads back as the same text."""
    return _LINE_START_AT.sub(r"\1{@}", _SPECIAL.sub(lambda m: _ESCAPES[m.group()], text))


def write_bibtex(items: Iterable[BibItem], comment: str = "") -> str:
    """A BibTeX file of the items, in order; keys made unique with a, b, c… suffixes."""
    import bibtexparser
    from bibtexparser import middlewares
    from bibtexparser.model import Entry, ExplicitComment, Field

    library = bibtexparser.Library()
    if comment:
        library.add(ExplicitComment(" ".join(comment.split())))
    used: set[str] = set()
    next_suffix: dict[str, int] = {}  # per base key, so a thousand namesakes cost a thousand steps
    for item in items:
        key = base = citation_key(item.paper)
        while key in used:
            number = next_suffix.get(base, 0)
            next_suffix[base] = number + 1
            key = base + _suffix(number)
        used.add(key)
        library.add(Entry("misc", key, [Field(name, value) for name, value in _fields(item)]))
    # The library is ours alone: braced in place, not copied first (a copy took most of the time).
    enclose = middlewares.AddEnclosingMiddleware(reuse_previous_enclosing=False, enclose_integers=True,
                                                 default_enclosing="{", allow_inplace_modification=True)
    return bibtexparser.write_string(library, unparse_stack=[enclose])


def _suffix(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("a") + r) + letters
    return letters
