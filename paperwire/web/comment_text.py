"""Comments as HTML: a Markdown subset rendered by markdown-it-py with raw HTML off.

Kept: paragraphs and line breaks, emphasis, strong, strikethrough, inline code and code blocks, block
quotes, lists, and links to http(s) addresses (rel="nofollow ugc noopener"). Not kept: raw HTML (shown as
text), images, headings, tables, and links of any other scheme (javascript:, data:, relative paths), which
stay text. Every character of the comment is escaped by the renderer; nothing typed becomes markup."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markupsafe import Markup

_BLOCK = ["paragraph", "code", "fence", "blockquote", "list"]
_INLINE = ["text", "newline", "escape", "backticks", "emphasis", "strikethrough", "link", "autolink", "entity"]
_INLINE2 = ["balance_pairs", "emphasis", "strikethrough", "fragments_join"]


def _web_link(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "linkify": False, "breaks": True, "typographer": False})
    md.enable(_BLOCK).enable(_INLINE).enable(_INLINE2)
    md.validateLink = _web_link  # a link to anything but a web address stays text

    def link_open(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow ugc noopener")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def comment_html(body: str) -> Markup:
    """The comment's Markdown as safe HTML."""
    return Markup(_renderer().render(body))


def comment_plain(body: str, limit: int = 80) -> str:
    """The first words of a comment, for a feed entry's title."""
    text = " ".join(body.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
