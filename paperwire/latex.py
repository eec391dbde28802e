"""LaTeX in titles and abstracts, made readable.

A text is read into pieces: plain text (text-mode markup resolved: `{\\em x}`, `\\%`, accents, ties, quotes,
citations dropped), URLs (kept verbatim), and math: inline `$…$`, `\\(…\\)`, `$$…$$`, and sub- or
superscripts written outside math (`σ_{max}`, `R^d`). A math piece has three forms: TeX for KaTeX in a
browser, HTML with <sub>/<sup> for pages read without scripts, and plain text with Unicode sub- and
superscripts where they exist (`ℓ₁`, `dᵏ`, `n^(-1/2)`) for feeds, mail, search and the JSON API.

This runs on every abstract an ingest cleans, so it is a regular-expression tokenizer and a small
recursive reader rather than a full LaTeX parser (pylatexenc's takes about 100 times as long); the
symbol names come from pylatexenc's tables.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

TEXT, MATH, URL = "text", "math", "url"


class Piece(NamedTuple):
    """One piece of a text. `html` is escaped HTML (math pieces only); `tex` is the TeX KaTeX sets."""

    kind: str
    text: str
    html: str = ""
    tex: str = ""


class _Frag(NamedTuple):
    text: str
    html: str
    tex: str


_EMPTY = _Frag("", "", "")
_MAX_DEPTH = 32  # groups and commands nested deeper than this are skipped (no unbounded recursion)
_MAX_MATH_CHARS = 1000  # a "$" with no closing one within this many characters is a dollar sign

# ------------------------------------------------------------------ tables

# Where pylatexenc's choice differs from what readers expect (ε rather than ϵ) or it has none.
_SYMBOL_OVERRIDES = {
    "epsilon": "ε", "phi": "φ", "varphi": "φ", "prime": "′", "neq": "≠", "ne": "≠", "lt": "<", "gt": ">",
    "gets": "←", "iff": "⟺", "implies": "⟹", "land": "∧", "lor": "∨", "neg": "¬", "bot": "⊥",
    "ddagger": "‡", "lbrack": "[", "rbrack": "]", "colon": ":", "coloneqq": "≔", "Re": "ℜ", "Im": "ℑ",
    "vert": "|", "Vert": "‖", "lvert": "|", "rvert": "|", "lVert": "‖", "rVert": "‖", "mid": "|",
    "imath": "ı", "jmath": "ȷ", "checkmark": "✓", "Box": "□", "Diamond": "◇", "triangle": "△",
    "ldotp": ".", "cdotp": "·", "dots": "…", "S": "§", "P": "¶", "copyright": "©", "textbackslash": "\\",
    "textasciitilde": "~", "textasciicircum": "^", "textunderscore": "_", "textbar": "|", "textless": "<",
    "textgreater": ">", "textquoteleft": "‘", "textquoteright": "’", "textquotedblleft": "“",
    "textquotedblright": "”", "textbullet": "•", "textdegree": "°", "degree": "°",
}
# Spacing commands, text-mode abbreviations authors define, and characters escaped with a backslash.
_PLAIN = {
    ",": " ", ";": " ", ":": " ", "!": "", " ": " ", "quad": " ", "qquad": " ", "enspace": " ", "thinspace": " ",
    "\\": " ", "newline": " ", "linebreak": " ", "-": "", "/": "", "noindent": "", "par": " ", "item": " ",
    "{": "{", "}": "}", "%": "%", "&": "&", "#": "#", "_": "_", "$": "$", "|": "‖",
    "ie": "i.e.", "eg": "e.g.", "etal": "et al.", "etc": "etc.", "wrt": "w.r.t.", "iid": "i.i.d.", "vs": "vs.",
    "cf": "cf.", "aka": "a.k.a.", "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX",
}
_FUNCTIONS = frozenset(
    "log ln exp sin cos tan sec csc cot sinh cosh tanh arcsin arccos arctan min max sup inf lim liminf limsup "
    "arg argmin argmax det dim ker deg gcd hom Pr Var Cov tr sgn sign diag rank poly polylog softmax".split())
_STYLES = frozenset(
    "mathcal mathrm mathbf mathit mathsf mathtt mathscr mathfrak mathnormal boldsymbol bm pmb textbf textit textrm "
    "texttt textsf textsc textnormal textmd textup textsl emph underline uline mbox hbox text operatorname "
    "mathbb mathds mathbbm bbm bb displaystyle textstyle".split())
_DECLARATIONS = frozenset(
    "em bf it rm tt sc sf sl normalfont upshape itshape bfseries mdseries scshape rmfamily sffamily ttfamily "
    "small footnotesize scriptsize tiny large Large LARGE huge Huge normalsize centering displaystyle "
    "textstyle scriptstyle limits nolimits nonumber notag left right middle big Big bigg Bigg bigl bigr Bigl Bigr "
    "biggl biggr Biggl Biggr mathopen mathclose mathrel mathbin mathord protect relax xspace".split())
_DROPPED_WITH_ARG = frozenset(
    "cite citep citet citealt citealp citeauthor citeyear citenum nocite parencite textcite autocite footnote "
    "footnotemark label ref eqref autoref cref Cref pageref vspace hspace phantom hphantom vphantom "
    "includegraphics thanks".split())
_BRACKET_ARG = frozenset(("cite", "citep", "citet", "citealt", "citealp", "parencite", "textcite", "autocite",
                          "footnote", "includegraphics", "sqrt", "operatorname"))
_MATH_ACCENTS = {
    "tilde": "\u0303", "widetilde": "\u0303", "hat": "\u0302", "widehat": "\u0302", "bar": "\u0304",
    "overline": "\u0305", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308", "breve": "\u0306",
    "check": "\u030c", "acute": "\u0301", "grave": "\u0300", "mathring": "\u030a", "underline": "\u0332",
}
_TEXT_ACCENTS = {
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304", ".": "\u0307",
    "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "r": "\u030a", "k": "\u0328", "d": "\u0323",
    "b": "\u0331",
}
_DOUBLE_STRUCK = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ", "1": "𝟙"}
# Relations and binary operators get a space on each side in the text form (a\leq b reads "a ≤ b").
_SPACED = frozenset("≤≥≠≈∼≃≡≅≍∈∉∋⊂⊆⊃⊇→←↔⇒⇐⇔↦⟶⟹⟺∝≪≫≲≳≺≻≼≽≜≔")

_SUPERSCRIPTS = dict(zip("0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWβγδθιφχ⊤′",
                         "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵝᵞᵟᶿᶥᵠᵡᵀ′", strict=True))
_SUBSCRIPTS = dict(zip("0123456789+-=()aehijklmnoprstuvxβγρφχ",
                       "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ", strict=True))
# Superscripts written as a symbol rather than raised: x^* is x*, f^\prime is f′.
_SUPERSCRIPT_AS_IS = {"*": "*", "∗": "*", "⋆": "⋆", "′": "′", "'": "′", "″": "″", "†": "†", "∘": "°"}


@lru_cache(maxsize=1)
def symbols() -> dict[str, str]:
    """Command name -> the character it stands for: pylatexenc's tables (built once, on first use)."""
    from pylatexenc.latex2text import get_default_latex_context_db

    table: dict[str, str] = {}
    for spec in get_default_latex_context_db().iter_macro_specs():
        repl = spec.simplify_repl
        if isinstance(repl, str) and 0 < len(repl) <= 2 and "%" not in repl and spec.macroname not in _PLAIN:
            table.setdefault(spec.macroname, repl)
    table.update(_SYMBOL_OVERRIDES)
    return table


_GREEK_NAMES = ("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi "
                "rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi "
                "Sigma Upsilon Phi Psi Omega").split()
# Names that half-stripped captures leave bare ("C_Phi", "R^{n times n}"), read as symbols only where
# they cannot be words: as a script, right before one, or inside a script's braces.
_BARE_NAMES = [*_GREEK_NAMES, "ell", "infty", "top", "ast", "star", "circ", "times", "in", "cdot", "leq", "geq",
               "le", "ge", "neq", "pm", "to", "sim", "approx", "prime", "dagger", "partial", "nabla", "max", "min"]
_BARE_NAME = re.compile(r"(?<![A-Za-z])(" + "|".join(sorted(_BARE_NAMES, key=len, reverse=True)) + r")(?![A-Za-z])")
_GREEK_AT_END = re.compile(
    r"(?<![A-Za-z\\])(" + "|".join(sorted([*_GREEK_NAMES, "ell", "infty"], key=len, reverse=True)) + r")$")
# Names read as symbols wherever they stand as words (as paperwire always has): few, and rarely English.
_WORD_SYMBOLS = ("ell", "infty", "alpha", "beta", "epsilon", "lambda", "sigma")
_WORD_SYMBOL = re.compile(rf"(?<![A-Za-z])({'|'.join(_WORD_SYMBOLS)})(?![A-Za-z])")
# A style command that lost its backslash, right before its braced argument: "mathcal{O}"
_STYLE_AT_END = re.compile(r"(?<![A-Za-z\\])(mathcal|mathbb|mathbf|mathrm|mathit|textbf|textit|emph|text)$")
_NAME_AT_START = re.compile("(" + "|".join(sorted(
    [*_GREEK_NAMES, "ell", "infty", "top", "ast", "star", "prime", "dagger", "circ"], key=len, reverse=True))
    + r")(?![A-Za-z])")

# ------------------------------------------------------------------ tokens

# A command (letters, or one other character), "$$" or "$", a brace, a script mark, a tie, or a run of
# anything else (spaces included).
_TOKEN = re.compile(r"\\(?:[A-Za-z]+\*?|.)|\\$|\$\$?|[{}_^~]|[^\\{}$_^~]+", re.S)
_SCRIPT_BASE = re.compile(r"(?:[^\W_]|[′ℓ∞∂∇])+$|[^\s(\[{]$")
_TEXT_SCRIPT_ARG = re.compile(r"[+-]?[0-9]{1,4}|[*+-](?![0-9A-Za-z])|[^\W\d_](?![A-Za-z0-9])")
# Four words in a row inside "$…$" are prose between two unrelated dollar signs, not math.
_PROSE = re.compile(r"(?:(?<![A-Za-z\\])[A-Za-z]{3,} ){3}[A-Za-z]{3,}")
_COMMAND_OR_TEXT = re.compile(r"\\(?:text\w*|mbox|operatorname)\{[^{}]*\}|\\[A-Za-z]+")
_UPRIGHT = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


class _Url(str):
    """A URL found by the caller: one token, never read as LaTeX (URLs keep their underscores and tildes)."""

    __slots__ = ()


def read(text: str, urls: Iterable[tuple[int, int]] = (), *, bare_names: bool = True) -> list[Piece]:
    """The pieces of `text` (whitespace already collapsed); `urls` are (start, end) spans kept verbatim."""
    tokens: list[str] = []
    last = 0
    for start, end in urls:
        tokens.extend(_TOKEN.findall(text, last, start))
        tokens.append(_Url(text[start:end]))
        last = end
    tokens.extend(_TOKEN.findall(text, last))
    reader = _Reader(tokens, bare_names)
    reader.word_symbols = bare_names and has_word_symbol(text)
    reader.text_mode(0)
    reader.flush()
    return reader.pieces


def pieces_text(pieces: Iterable[Piece]) -> str:
    """The plain text of pieces: whitespace collapsed."""
    return " ".join("".join(p.text for p in pieces).split())


# ------------------------------------------------------------------ script forms


def _script_text(mark: str, text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    if mark == "^" and text in _SUPERSCRIPT_AS_IS:
        return _SUPERSCRIPT_AS_IS[text]
    table = _SUPERSCRIPTS if mark == "^" else _SUBSCRIPTS
    compact = text.replace(" ", "")
    longest_word = max((len(w) for w in re.findall(r"[A-Za-z]+", compact)), default=0)
    if longest_word < 3 and all(ch in table for ch in compact):
        return "".join(table[ch] for ch in compact)
    if len(text) == 1 or text.isalnum():
        return mark + text
    return f"{mark}({text})"


def _script(base: _Frag, mark: str, arg: _Frag) -> _Frag:
    tag = "sup" if mark == "^" else "sub"
    text = _script_text(mark, arg.text)
    html_form = f"{base.html}<{tag}>{arg.html.strip()}</{tag}>" if arg.html.strip() else base.html
    return _Frag(base.text + text, html_form, f"{base.tex}{mark}{{{arg.tex.strip()}}}")


def _accent(frag: _Frag, mark: str, command: str) -> _Frag:
    text = frag.text.strip()
    if 0 < len(text) <= 3 and not any(unicodedata.combining(ch) for ch in text):
        text = unicodedata.normalize("NFC", "".join(ch + mark for ch in text.replace("ı", "i")))
    return _Frag(text, html.escape(text, quote=False), f"\\{command}{{{frag.tex}}}")


def _wrapped(frag: _Frag) -> _Frag:
    """A fraction's numerator or denominator, parenthesised unless it is one symbol or number."""
    text = frag.text.strip()
    if len(text) <= 1 or re.fullmatch(r"[^\W_]+|[\d.]+", text):
        return _Frag(text, html.escape(text, quote=False), frag.tex)
    return _Frag(f"({text})", f"({frag.html.strip()})", frag.tex)


def _tex_escape(text: str) -> str:
    return text.replace("\\", "\\backslash ").replace("%", "\\%").replace("&", "\\&").replace("#", "\\#")


def _plain_tex(run: str) -> str:
    """TeX for a run of plain characters set as math: words (three letters or more) upright, as KaTeX sets
    log; shorter runs are variables (K_{ij})."""
    return re.sub(r"[A-Za-z]{3,}", lambda m: f"\\mathrm{{{m.group(0)}}}", _tex_escape(run))


# ------------------------------------------------------------------ the reader


class _Reader:
    def __init__(self, tokens: list[str], bare_names: bool) -> None:
        self.tokens = tokens
        self.i = 0
        self.bare_names = bare_names
        self.pieces: list[Piece] = []
        self.buffer: list[str] = []  # plain text not yet made a piece
        self.depth = 0  # groups and commands being read, one inside another (bounded: no unbounded recursion)
        self.word_symbols = False  # whether the text has one of _WORD_SYMBOLS at all

    # -------------------------------------------------------------- output

    def flush(self) -> None:
        if self.buffer:
            text = "".join(self.buffer)
            self.buffer = []
            if self.pieces and self.pieces[-1].kind == TEXT:
                text = self.pieces.pop().text + text
            if text:
                self.pieces.append(Piece(TEXT, text))

    def emit_math(self, frag: _Frag, tex: str | None = None) -> None:
        """A math piece; `tex` is the author's own TeX of a formula, whose frag is already normalised."""
        self.flush()
        if tex is None:
            frag = _normalised(frag)
        if frag.text or frag.html:
            self.pieces.append(Piece(MATH, frag.text, frag.html, tex.strip() if tex is not None else frag.tex))

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    # -------------------------------------------------------------- text mode

    def text_mode(self, depth: int) -> None:
        """Read text until the "}" that closes this group (depth > 0) or the end."""
        tokens = self.tokens
        while self.i < len(tokens):
            tok = tokens[self.i]
            self.i += 1
            if isinstance(tok, _Url):
                self.flush()
                self.pieces.append(Piece(URL, str(tok)))
                if self.peek() == "{":  # "url{label}": the label of a link whose command was lost
                    self.skip_group()
                continue
            first = tok[0]
            if first == "\\":
                self.text_command(tok)
            elif first == "{":
                if self.depth >= _MAX_DEPTH:
                    continue
                self.depth += 1
                self.text_mode(depth + 1)
                self.depth -= 1
            elif first == "}":
                if depth:
                    return
            elif first == "$":
                self.dollar_math(tok)
            elif first in "_^":
                self.text_script(tok)
            elif first == "~":
                self.tie()
            else:
                self.text_run(tok)

    def text_run(self, run: str) -> None:
        if "`" in run or "'" in run:
            run = run.replace("``", "“").replace("''", "”")
        if self.bare_names:
            nxt = self.peek()
            if nxt in ("_", "^") and (greek := _GREEK_AT_END.search(run)):
                run = run[:greek.start()] + symbols()[greek.group(1)]  # "Sigma_{max}": the name is the base
            if self.word_symbols and has_word_symbol(run):
                run = _WORD_SYMBOL.sub(lambda m: symbols()[m.group(1)], run)
            if nxt == "{" and (style := _STYLE_AT_END.search(run)):
                self.buffer.append(run[:style.start()])
                self.text_command("\\" + style.group(1))
                return
        self.buffer.append(run)

    def tie(self) -> None:
        before = self.buffer[-1][-1:] if self.buffer else ""
        after = self.peek() or ""
        if not (before and (before.isalnum() or before in ".,;:)")) and after[:1].isdigit():
            self.buffer.append("∼")  # "(~50%)": about 50%
        elif not (before.isspace() or not before):
            self.buffer.append(" ")

    def text_command(self, tok: str) -> None:
        """A command outside math (its arguments read with it, unless commands are nested too deep already)."""
        if self.depth >= _MAX_DEPTH:
            return
        self.depth += 1
        try:
            self.read_text_command(tok)
        finally:
            self.depth -= 1

    def read_text_command(self, tok: str) -> None:
        name = tok[1:].rstrip("*") if len(tok) > 2 else tok[1:]
        if not name:
            return
        if name in _TEXT_ACCENTS and (not name.isalpha() or self.peek() == "{"):
            self.buffer.append(self.text_accent(_TEXT_ACCENTS[name]))
            return
        if name in ("(", "["):
            self.delimited_math(")" if name == "(" else "]")
            return
        if name in _PLAIN:
            self.buffer.append(_PLAIN[name])
            return
        if name in _DECLARATIONS:
            return
        if name in _DROPPED_WITH_ARG:
            self.skip_optional()
            self.skip_group()
            while self.buffer and self.buffer[-1].endswith((" ", "\u00a0")):  # "work~\cite{x}." -> "work."
                self.buffer[-1] = self.buffer[-1].rstrip()
                if not self.buffer[-1]:
                    self.buffer.pop()
            return
        if name in ("url", "path", "nolinkurl"):
            self.text_group()
            return
        if name == "href":
            target = self.group_tokens()
            self.text_group()
            urls = [t for t in target if isinstance(t, _Url)]
            self.buffer.append(" (")
            if urls:
                self.flush()
                self.pieces.append(Piece(URL, str(urls[0])))
            else:
                self.buffer.append("".join(target))
            self.buffer.append(")")
            return
        if name in _STYLES and name not in ("mathbb", "mathds", "mathbbm", "bbm", "bb"):
            self.text_group()
            return
        if name in _MATH_ACCENTS or name in ("frac", "dfrac", "tfrac", "sqrt", "mathbb", "mathds", "mathbbm",
                                              "bbm", "bb", "not", "binom"):
            self.i -= 1
            frag = self.math_atom(in_script=False)
            self.buffer.append(frag.text if frag else "")
            return
        if name in ("begin", "end"):
            self.skip_group()
            return
        if name in _FUNCTIONS:
            before = self.buffer[-1][-1:] if self.buffer else ""
            self.buffer.append(f" {name}" if before.isalnum() else name)  # "N^{δ}\ln N", "d\log(n)"
            return
        symbol = symbols().get(name)
        if symbol is not None:
            self.buffer.append(f" {symbol} " if symbol in _SPACED else symbol)
        else:
            self.buffer.append(name)  # an author's own macro: its name reads better than nothing
        if self.peek() == "{" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1] == "}":
            self.i += 2  # "\method{}"

    def text_accent(self, mark: str) -> str:
        tok = self.peek()
        if tok is None:
            return ""
        if tok == "{":
            self.i += 1
            inner = []
            while (t := self.peek()) is not None and t != "}":
                self.i += 1
                inner.append(symbols().get(t[1:], t[1:]) if t.startswith("\\") else t)
            self.i += 1
            letters = "".join(inner)
        elif tok.startswith("\\"):
            self.i += 1
            letters = symbols().get(tok[1:], tok[1:])
        else:
            letters = tok[0]
            rest = tok[1:]
            if rest:
                self.tokens[self.i] = rest
            else:
                self.i += 1
        letters = letters.replace("ı", "i").replace("ȷ", "j").strip()
        if not letters:
            return ""
        return unicodedata.normalize("NFC", letters[0] + mark) + letters[1:]

    def text_group(self) -> None:
        """A command's argument read as text: a braced group, or the next token."""
        tok = self.peek()
        if tok == "{":
            self.i += 1
            self.text_mode(1)
        elif tok is not None and tok[0] not in "}$_^":
            self.i += 1
            if isinstance(tok, _Url):
                self.flush()
                self.pieces.append(Piece(URL, str(tok)))
            elif tok.startswith("\\"):
                self.text_command(tok)
            else:
                self.text_run(tok)

    def skip_group(self) -> None:
        self.group_tokens()

    def group_tokens(self) -> list[str]:
        """The tokens of the braced group at the reader (consumed), without its braces."""
        if self.peek() != "{":
            return []
        start = self.i + 1
        depth = 0
        while self.i < len(self.tokens):
            tok = self.tokens[self.i]
            self.i += 1
            if isinstance(tok, _Url):
                continue
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return self.tokens[start:self.i - 1]
        return self.tokens[start:]

    def skip_optional(self) -> None:
        """An optional [..] argument, as in \\cite[p.~3]{key}."""
        tok = self.peek()
        if tok and not isinstance(tok, _Url) and tok.startswith("["):
            end = tok.find("]")
            if end >= 0:
                rest = tok[end + 1:]
                if rest:
                    self.tokens[self.i] = rest
                else:
                    self.i += 1

    def text_script(self, mark: str) -> None:
        """A "_" or "^" outside math: a script when it follows a word or bracket and carries a braced group,
        a command, a number, a sign or one letter standing alone; else the character itself."""
        tail = self.buffer[-1] if self.buffer else ""
        base_match = _SCRIPT_BASE.search(tail)
        tok = self.peek()
        arg: _Frag | None = None
        if base_match and tok is not None and not isinstance(tok, _Url):
            if tok == "{":
                arg = self.math_group(in_script=True)
            elif tok.startswith("\\") and len(tok) > 2:
                arg = self.math_atom(in_script=True)
            elif tok[0] not in "\\$_^~}":
                arg = self.bare_script_arg(tok)
        if arg is None:
            self.buffer.append(mark)
            return
        base_text = base_match.group(0)
        self.buffer[-1] = tail[:base_match.start()]
        base = _Frag(base_text, html.escape(base_text, quote=False), _plain_tex(base_text))
        frag = _script(base, mark, arg)
        while (nxt := self.peek()) in ("_", "^"):  # sigma_{1:T}^2
            self.i += 1
            tok = self.peek()
            if tok == "{":
                follow = self.math_group(in_script=True)
            elif tok is not None and not isinstance(tok, _Url) and tok.startswith("\\") and len(tok) > 2:
                follow = self.math_atom(in_script=True)
            elif tok is not None and not isinstance(tok, _Url) and tok[0] not in "\\$_^~{}":
                follow = self.bare_script_arg(tok)
            else:
                follow = None
            if follow is None:
                self.emit_math(frag)
                self.buffer.append(nxt)
                return
            frag = _script(frag, nxt, follow)
        self.emit_math(frag)

    def bare_script_arg(self, tok: str) -> _Frag | None:
        """The argument of a script outside math from a plain run: a symbol's name, a number, a sign, a letter."""
        if self.bare_names and (named := _NAME_AT_START.match(tok)):
            symbol = symbols()[named.group(1)]
            length = named.end()
            tex = "\\" + named.group(1)
        elif match := _TEXT_SCRIPT_ARG.match(tok):
            symbol = match.group(0)
            length = match.end()
            tex = symbol
        else:
            return None
        rest = tok[length:]
        if rest:
            self.tokens[self.i] = rest
        else:
            self.i += 1
        return _Frag(symbol, html.escape(symbol, quote=False), tex)

    # -------------------------------------------------------------- math mode

    def dollar_math(self, delimiter: str) -> None:
        """$…$ or $$…$$: math when it closes within reach and does not look like prices ($5 and $10)."""
        start = self.i
        nxt = self.peek()
        end = self.next_dollar(start)
        if end is not None and end > start and self.tokens[end] == delimiter and not isinstance(nxt, _Url) \
                and not nxt[0].isspace() and not self.tokens[end - 1][-1].isspace():
            source = "".join(self.tokens[start:end])
            after = self.tokens[end + 1] if end + 1 < len(self.tokens) else ""
            if len(source) <= _MAX_MATH_CHARS and not (after[:1].isdigit() and source[0].isdigit()) \
                    and not (len(source) > 15 and _PROSE.search(_COMMAND_OR_TEXT.sub(" ", source))):
                self.i = end + 1
                self.emit_math(_math_frag(source), tex=source)
                return
        self.buffer.append(delimiter)

    def next_dollar(self, start: int) -> int | None:
        found = [j for j in (_index(self.tokens, "$", start), _index(self.tokens, "$$", start)) if j is not None]
        return min(found) if found else None

    def delimited_math(self, closer: str) -> None:
        """\\(…\\) or \\[…\\]."""
        end = _index(self.tokens, "\\" + closer, self.i)
        source = "".join(self.tokens[self.i:end]) if end is not None else ""
        if end is None or len(source) > _MAX_MATH_CHARS:
            self.buffer.append("(" if closer == ")" else "[")
            return
        self.i = end + 1
        self.emit_math(_math_frag(source), tex=source)

    def math_list(self, end: int | None, in_script: bool) -> list[_Frag]:
        """Math atoms up to token `end` (exclusive), or up to a closing brace when `end` is None."""
        frags: list[_Frag] = []
        while self.i < len(self.tokens) and (end is None or self.i < end):
            tok = self.tokens[self.i]
            if end is None and tok == "}" and not isinstance(tok, _Url):
                self.i += 1
                return frags
            if tok in ("_", "^") and not isinstance(tok, _Url):
                self.i += 1
                arg = self.math_arg(True, end)
                base = frags.pop() if frags else _EMPTY
                frags.append(_script(base, tok, arg))
                continue
            frag = self.math_atom(in_script, end=end)
            if frag is not None:
                frags.append(frag)
        return frags

    def math_group(self, in_script: bool) -> _Frag:
        self.i += 1  # "{"
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            inner = _Frag("", "", "")
            depth = 1  # skip the rest of the group unread
            while self.i < len(self.tokens) and depth:
                depth += {"{": 1, "}": -1}.get(self.tokens[self.i], 0) if not isinstance(self.tokens[self.i], _Url) \
                    else 0
                self.i += 1
        else:
            inner = _join(self.math_list(None, in_script))
        self.depth -= 1
        return _Frag(inner.text, inner.html, inner.tex)

    def math_atom(self, in_script: bool, end: int | None = None) -> _Frag | None:
        """One atom: a group, a command with its arguments, or (for a script) one character of a run."""
        if self.i >= len(self.tokens) or (end is not None and self.i >= end):
            return None
        tok = self.tokens[self.i]
        if isinstance(tok, _Url):
            self.i += 1
            return _Frag(str(tok), html.escape(str(tok), quote=False), _tex_escape(str(tok)))
        first = tok[0]
        if first == "{":
            return self.math_group(in_script)
        if first == "}":
            self.i += 1
            return None
        if first == "\\":
            self.i += 1
            if self.depth >= _MAX_DEPTH:  # too deep to read its arguments: the command stands alone
                return _Frag("", "", "")
            self.depth += 1
            try:
                return self.math_command(tok, in_script, end)
            finally:
                self.depth -= 1
        if first == "~":
            self.i += 1
            return _Frag(" ", " ", "~")
        if first == "$":
            self.i += 1
            return None
        self.i += 1
        return self.math_run(tok, in_script)

    def math_run(self, run: str, in_script: bool) -> _Frag:
        text = run.replace("'", "′") if "'" in run else run
        tex = run
        if self.bare_names and in_script:
            text = _BARE_NAME.sub(lambda m: _bare_symbol(m.group(1)), text)
            tex = _UPRIGHT.sub(lambda m: f"\\mathrm{{{m.group(0)}}}",
                               _BARE_NAME.sub(lambda m: f"\\{m.group(1)} ", _tex_escape(run)))
        else:
            tex = _tex_escape(run) if not self.bare_names else _plain_tex(run)
        return _Frag(text, html.escape(text, quote=False), tex)

    def math_arg(self, in_script: bool, end: int | None) -> _Frag:
        """A command's argument: a group, a command, or the first character of a run."""
        while (tok := self.peek()) is not None and not isinstance(tok, _Url) and tok.isspace():
            self.i += 1
        tok = self.peek()
        if tok is None or (end is not None and self.i >= end):
            return _EMPTY
        if isinstance(tok, _Url) or tok[0] in "{\\":
            return self.math_atom(in_script, end) or _EMPTY
        if tok[0] in "}$_^":
            return _EMPTY
        stripped = tok.lstrip()
        first, rest = stripped[:1], stripped[1:]
        if rest:
            self.tokens[self.i] = rest
        else:
            self.i += 1
        return self.math_run(first, in_script)

    def math_command(self, tok: str, in_script: bool, end: int | None) -> _Frag:
        name = tok[1:].rstrip("*") if len(tok) > 2 else tok[1:]
        if name in _PLAIN:
            text = _PLAIN[name]
            return _Frag(text, html.escape(text, quote=False), tok)
        if name in _DECLARATIONS:
            if name in ("left", "right", "middle", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "bigg", "Bigg",
                        "biggl", "biggr", "Biggl", "Biggr") and (nxt := self.peek()) and nxt.startswith("."):
                if nxt[1:]:
                    self.tokens[self.i] = nxt[1:]
                else:
                    self.i += 1
            return _Frag("", "", tok + " ")
        if name in _DROPPED_WITH_ARG:
            self.skip_optional()
            self.skip_group()
            return _EMPTY
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            top, bottom = _wrapped(self.math_arg(in_script, end)), _wrapped(self.math_arg(in_script, end))
            return _Frag(f"{top.text}/{bottom.text}", f"{top.html}/{bottom.html}",
                         f"\\frac{{{top.tex}}}{{{bottom.tex}}}")
        if name == "binom":
            top, bottom = self.math_arg(in_script, end), self.math_arg(in_script, end)
            return _Frag(f"C({top.text.strip()}, {bottom.text.strip()})",
                         f"C({top.html.strip()}, {bottom.html.strip()})", f"\\binom{{{top.tex}}}{{{bottom.tex}}}")
        if name == "sqrt":
            degree = ""
            nxt = self.peek()
            if nxt and not isinstance(nxt, _Url) and nxt.startswith("[") and "]" in nxt:
                degree, rest = nxt[1:nxt.index("]")], nxt[nxt.index("]") + 1:]
                if rest:
                    self.tokens[self.i] = rest
                else:
                    self.i += 1
            arg = _wrapped(self.math_arg(in_script, end))
            root = {"": "√", "2": "√", "3": "∛", "4": "∜"}.get(degree.strip())
            if root is None:
                text = f"{arg.text}^(1/{degree.strip()})"
                return _Frag(text, f"{arg.html}<sup>1/{html.escape(degree.strip())}</sup>",
                             f"\\sqrt[{degree}]{{{arg.tex}}}")
            return _Frag(root + arg.text, root + arg.html, f"\\sqrt[{degree}]{{{arg.tex}}}" if degree
                         else f"\\sqrt{{{arg.tex}}}")
        if name in _MATH_ACCENTS:
            return _accent(self.math_arg(in_script, end), _MATH_ACCENTS[name], name)
        if name == "not":
            arg = self.math_arg(in_script, end)
            text = unicodedata.normalize("NFC", arg.text.strip()[:1] + "\u0338") + arg.text.strip()[1:]
            return _Frag(text, html.escape(text, quote=False), f"\\not{arg.tex}")
        if name in ("mathbb", "mathds", "mathbbm", "bbm", "bb"):
            arg = self.math_arg(in_script, end)
            text = "".join(_double_struck(ch) for ch in arg.text)
            return _Frag(text, html.escape(text, quote=False), f"\\mathbb{{{arg.tex}}}")
        if name in ("text", "textrm", "textit", "textbf", "mbox", "hbox", "textsf", "texttt", "textnormal",
                    "emph", "operatorname"):
            arg = self.math_arg(in_script, end)
            text = arg.text
            spaced = f" {text} " if name == "operatorname" else text
            return _Frag(spaced, html.escape(spaced, quote=False), f"\\{name}{{{arg.tex}}}")
        if name in _STYLES:
            arg = self.math_arg(in_script, end)
            return _Frag(arg.text, arg.html, f"\\{name}{{{arg.tex}}}")
        if name in ("begin", "end"):
            self.skip_group()
            return _Frag(" ", " ", "")
        if name in _FUNCTIONS:
            return _Frag(f" {name}", f" {name}", tok + " ")
        symbol = symbols().get(name)
        if symbol is not None:
            text = f" {symbol} " if symbol in _SPACED and not in_script else symbol
            return _Frag(text, html.escape(text, quote=False), tok + " ")
        if len(name) == 1 and not name.isalpha():
            return _Frag(name, html.escape(name, quote=False), tok)
        return _Frag(name, html.escape(name, quote=False), tok + " ")


def has_word_symbol(text: str) -> bool:
    """Whether one of _WORD_SYMBOLS starts other than inside a word: str.find rules out most text faster
    than the regex ("well", "parallel")."""
    for name in _WORD_SYMBOLS:
        i = text.find(name)
        while i != -1:
            if not i or not text[i - 1].isalpha():
                return True
            i = text.find(name, i + 1)
    return False


def _index(tokens: list[str], token: str, start: int) -> int | None:
    try:
        return tokens.index(token, start)
    except ValueError:
        return None


@lru_cache(maxsize=32768)  # the same small formulas ($\alpha$, $\sim$, $\mathcal{O}(n)$) recur across abstracts
def _math_frag(source: str) -> _Frag:
    """The text and HTML forms of a formula's TeX. Inside real math "in" is i times n: no bare names."""
    reader = _Reader(_TOKEN.findall(source), bare_names=False)
    return _normalised(_join(reader.math_list(len(reader.tokens), in_script=False)))


def _normalised(frag: _Frag) -> _Frag:
    return _Frag(" ".join(frag.text.split()), " ".join(frag.html.split()), frag.tex.strip())


def _join(frags: list[_Frag]) -> _Frag:
    if not frags:
        return _EMPTY
    if len(frags) == 1:
        return frags[0]
    return _Frag("".join(f.text for f in frags), "".join(f.html for f in frags), "".join(f.tex for f in frags))


def _bare_symbol(name: str) -> str:
    symbol = symbols().get(name, name)
    return f" {symbol} " if symbol in _SPACED else symbol


def _double_struck(ch: str) -> str:
    if ch in _DOUBLE_STRUCK:
        return _DOUBLE_STRUCK[ch]
    if "A" <= ch <= "Z" or "a" <= ch <= "z":
        try:
            case = "CAPITAL" if ch.isupper() else "SMALL"
            return unicodedata.lookup(f"MATHEMATICAL DOUBLE-STRUCK {case} {ch.upper()}")
        except KeyError:
            return ch
    return ch
