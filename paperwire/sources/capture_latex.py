"""The LaTeX that text captures of paper pages lost, put back.

A capture keeps what the page showed of an abstract's source: most backslashes and dollar signs are
gone ("g circ p", "R^d rightarrow R", "widetildeTheta(d^4)", "mathcal{O}(min{S, T})", "prior
work~nichani2023provable"). This restores the backslashes where a name can only be a command (or is
one by its neighbours), drops citation keys and stray dollar signs, and leaves the rest to the reading
every source gets (paperwire/latex.py), which turns the commands into characters.
"""

from __future__ import annotations

import re

from paperwire.model import link_spans

# Names that are commands wherever they stand as a word, or glued to other names ("widetildeTheta").
_STRONG = frozenset(
    "rightarrow leftarrow Rightarrow Leftarrow leftrightarrow longrightarrow Longrightarrow mapsto circ cdot cdots "
    "ldots leq geq neq infty nabla mathcal mathbb mathbf mathrm mathit boldsymbol widetilde widehat sqrt "
    "frac dfrac tfrac approx propto otimes oplus varepsilon ell emph textbf textit subseteq supseteq "
    "alpha beta epsilon zeta theta vartheta iota kappa lambda sigma upsilon phi varphi psi omega rho varrho "
    "Theta Sigma Omega Psi".split())
# Names that are commands only beside math: a script mark, a bracket, an operator, or math-looking neighbours.
_BESIDE_MATH = frozenset(
    "gamma delta eta mu nu xi pi chi tau Gamma Delta Lambda Xi Pi Phi Upsilon in times sum prod log ln exp sin cos "
    "tanh min max sim subset gg ll le ge top ast star bullet left right mid det sharp partial".split())
# Of those, the relations and operators: commands only with math-looking words on both sides ("x in X"),
# as "(in this case" and "in a network" are words.
_BETWEEN_MATH = frozenset("in times sim subset gg ll le ge mid".split())
_NAMES = _STRONG | _BESIDE_MATH
# Names that may be glued to another name: not those that end ordinary words ("circle" is not circ + le).
_GLUED = _NAMES - frozenset("le ge ll gg to in mid ast top star bullet det sin cos".split())
_MATH_BEFORE = frozenset("_^{(/|\\=+*<>")
_MATH_AFTER = frozenset("_^{}()/|=+*<>[")
_DELIMITER_AFTER = frozenset("()[]|.")

_WORD = re.compile(r"[A-Za-z]+")
_DOLLAR = re.compile(r"\$(?!\d)")
_CITATION_KEY = re.compile(r"~[A-Za-z][A-Za-z-]*\d{4}[A-Za-z0-9]*\b")
_BARE_CITE = re.compile(r"(?<![\\A-Za-z])(cite[pt]?|citealp|eqref|ref)\{")
_BRACED_DECLARATION = re.compile(r"\{(em|bf|it|emph|sc|tt|rm) ")
_SET_BRACE = re.compile(r"(?<![A-Za-z\\])(min|max|inf|sup)\{")
_SURROUNDING_PUNCTUATION = "()[],.;:"


def repair(text: str) -> str:
    """`text` with the LaTeX markup a capture lost restored as far as it can be told apart from words."""
    if not text:
        return text
    if "$" in text:
        text = _DOLLAR.sub("", text)  # the few dollars left open and close nothing reliably
    if "~" in text:
        text = _CITATION_KEY.sub("", text)
    if "{" in text:
        text = _BARE_CITE.sub(r"\\\1{", text)
        text = _BRACED_DECLARATION.sub(r"{\\\1 ", text)
        text = _set_braces(text)
    if ",!" in text:
        text = text.replace(",!", ",")  # "\\alpha,\\!\\beta" without its backslashes
    return _restore_names(text)


def _set_braces(text: str) -> str:
    """min{a, b} is a set: its braces are written \\{ \\} so that they stay."""
    while match := _SET_BRACE.search(text):
        start = match.end() - 1
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                text = (f"{text[:match.start()]}\\{match.group(1)}\\{{{text[start + 1:i]}\\}}{text[i + 1:]}")
                break
        else:
            return text  # unmatched: left to the reader, which drops the brace
    return text


def _restore_names(text: str) -> str:
    out: list[str] = []
    last = 0
    urls = [(start, end) for start, end, _ in link_spans(text)]
    for match in _WORD.finditer(text):
        start, end = match.span()
        if start and text[start - 1] == "\\" or any(a <= start < b for a, b in urls):
            continue  # already a command, or part of an address
        word = match.group(0)
        replacement = _command_for(text, word, start, end)
        if replacement is not None:
            out.append(text[last:start])
            out.append(replacement)
            if end < len(text) and text[end].isalpha():
                out.append(" ")
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _command_for(text: str, word: str, start: int, end: int) -> str | None:
    if word in _STRONG:
        return _as_commands([word], "", text, start, end)
    if word in _BETWEEN_MATH:
        return _as_commands([word], "", text, start, end) if _between_math(text, start, end) else None
    if word in _BESIDE_MATH:
        return _as_commands([word], "", text, start, end) if _beside_math(text, start, end) else None
    pieces = _split_glued(word)
    if pieces is None:
        return None
    prefix, names = pieces
    if len(names) >= 2 or any(n in _STRONG for n in names) and not prefix or _beside_math(text, start, end):
        return _as_commands(names, prefix, text, start, end)
    return None


def _as_commands(names: list[str], prefix: str, text: str, start: int, end: int) -> str | None:
    if names[-1] in ("left", "right") and text[end:end + 1] not in _DELIMITER_AFTER:
        return None  # \left and \right stand before a delimiter; otherwise they are words
    return prefix + "".join("\\" + name for name in names)


def _split_glued(word: str) -> tuple[str, list[str]] | None:
    """("T", ["sharp", "mu"]) for "Tsharpmu": an optional one-letter prefix, then two or more glued names
    (or one, after the prefix); None when the word is not made of names."""
    for prefix in ("", word[0]):
        names = _names_in(word[len(prefix):])
        if names and (len(names) >= 2 or prefix):
            return prefix, names
    return None


def _names_in(rest: str) -> list[str] | None:
    if not rest:
        return []
    for size in range(min(len(rest), 13), 1, -1):
        head = rest[:size]
        if head in _GLUED:
            tail = _names_in(rest[size:])
            if tail is not None:
                return [head, *tail]
    return None


def _beside_math(text: str, start: int, end: int) -> bool:
    """Whether the word at text[start:end] touches math: a script mark, bracket or operator right next to it,
    or math-looking words on both sides ("x in X", "5 times 10^5", "m gg n")."""
    return bool(start and text[start - 1] in _MATH_BEFORE or end < len(text) and text[end] in _MATH_AFTER) \
        or _between_math(text, start, end)


def _between_math(text: str, start: int, end: int) -> bool:
    before = text[:start].rstrip().rsplit(" ", 1)[-1] if text[:start].endswith(" ") else None
    after = text[end:].lstrip().split(" ", 1)[0] if text[end:end + 1] == " " else None
    return before is not None and after is not None and _looks_like_math(before) and _looks_like_math(after)


def _looks_like_math(token: str) -> bool:
    token = token.strip(_SURROUNDING_PUNCTUATION)
    if not token:
        return False
    return (len(token) == 1 and token not in "aAI" or token.isdigit() or any(ch in token for ch in "_^{}\\=")
            or token.startswith(("-", "+")) or token in _NAMES)
