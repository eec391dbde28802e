"""Stream the records of a JSON document: the elements of a top-level array, or a sequence of
top-level values (one object, JSON lines). Memory stays at one record plus a read chunk however
big the file is, and one line of JSON (API responses are often a single line) is no problem.

Bytes are decoded with surrogateescape so that an invalid UTF-8 byte spoils only its own record.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from paperwire.sources.base import MAX_RECORD_BYTES, Rejected

CHUNK_CHARS = 1 << 16
_WHITESPACE = " \t\n\r"
_NOT_WHITESPACE = re.compile(r"[^ \t\n\r]")
_DECODER = json.JSONDecoder()


class _SyntaxError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message, self.pos = message, pos


class _TooLarge(Exception):
    def __init__(self, size: int, where: str) -> None:
        super().__init__(size)
        self.size, self.where = size, where


class _TooDeep(Exception):
    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


NESTED_TOO_DEEPLY = "JSON nested too deeply (arrays or objects inside each other beyond the parser's limit)"


class _Buffer:
    """Decoded text with a read position; tracks the line and column of the text it has dropped."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text = ""
        self.pos = 0
        self.eof = False
        self.line_base = 1  # line of text[0]
        self.col_base = 0  # characters before text[0] on that line

    def fill(self, size: int = CHUNK_CHARS) -> None:
        """Drop consumed text and read about `size` more bytes."""
        if self.pos:
            dropped = self.text[: self.pos]
            newlines = dropped.count("\n")
            if newlines:
                self.line_base += newlines
                self.col_base = len(dropped) - dropped.rfind("\n") - 1
            else:
                self.col_base += len(dropped)
            self.text, self.pos = self.text[self.pos:], 0
        data = self.stream.read(size)
        self.eof = not data
        self.text += self.decoder.decode(data or b"", final=self.eof)

    def where(self, pos: int) -> str:
        before = self.text[:pos]
        newlines = before.count("\n")
        if newlines:
            return f"line {self.line_base + newlines}, column {pos - before.rfind(chr(10))}"
        return f"line {self.line_base}, column {self.col_base + pos + 1}"

    def skip_ws(self) -> bool:
        """Advance past whitespace; False at the end of input."""
        while True:
            text, pos = self.text, self.pos
            if pos < len(text) and text[pos] in _WHITESPACE:
                found = _NOT_WHITESPACE.search(text, pos)  # a long run (a file of blank lines) at C speed
                pos = found.start() if found else len(text)
            self.pos = pos
            if pos < len(text):
                return True
            if self.eof:
                return False
            self.fill()

    def peek(self) -> str:
        return self.text[self.pos]

    def decode_value(self) -> tuple[Any, str]:
        """The next value and its source text; _TooLarge (value skipped) past MAX_RECORD_BYTES,
        _TooDeep (value skipped) when its nesting exhausts the decoder's recursion."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except RecursionError:
                # the standard decoder recurses once per level; skip_value counts levels instead
                where = self.where(self.pos)
                self.skip_value()
                raise _TooDeep(where) from None
            except json.JSONDecodeError as exc:
                # Cut off by the end of the buffer (not a real error) if the failure is at its end.
                unterminated = exc.msg.startswith("Unterminated string")
                if self.eof:
                    if unterminated or exc.pos >= len(self.text.rstrip()):
                        raise _SyntaxError("the file ends inside a record: truncated", exc.pos) from None
                    raise _SyntaxError(exc.msg, exc.pos) from None
                if not unterminated and exc.pos < len(self.text) - 6:
                    raise _SyntaxError(exc.msg, exc.pos) from None
            else:
                if end < len(self.text) or self.eof:  # a number at the buffer end may continue
                    source = self.text[self.pos:end]
                    self.pos = end
                    if len(source) > MAX_RECORD_BYTES:
                        raise _TooLarge(len(source), self.where(end - len(source)))
                    return value, source
            if len(self.text) - self.pos > MAX_RECORD_BYTES:
                where = self.where(self.pos)
                raise _TooLarge(self.skip_value(), where)
            self.fill(max(CHUNK_CHARS, len(self.text) - self.pos))  # doubling keeps big records linear

    def skip_value(self) -> int:
        """Skip one oversized value (an object, array or string) without holding it; return its size."""
        depth, in_string, escaped, size = 0, False, False, 0
        while True:
            text = self.text
            for index in range(self.pos, len(text)):
                char = text[index]
                if in_string:
                    if escaped:
                        escaped = False
                    elif char == "\\":
                        escaped = True
                    elif char == '"':
                        in_string = False
                        if depth == 0:
                            size += index + 1 - self.pos
                            self.pos = index + 1
                            return size
                elif char == '"':
                    in_string = True
                elif char in "{[":
                    depth += 1
                elif char in "}]":
                    depth -= 1
                    if depth <= 0:
                        size += index + 1 - self.pos
                        self.pos = index + 1
                        return size
            size += len(text) - self.pos
            self.pos = len(text)
            if self.eof:
                return size
            self.fill()


def _valid_utf8(source: str) -> bool:
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def iter_json_records(stream: BinaryIO, name: str) -> Iterator[tuple[int, Any] | Rejected]:
    """Yield (record number, value) per record, a Rejected per bad record; stop at a syntax error.

    A top-level array yields its elements; otherwise each top-level value is a record."""
    buf = _Buffer(stream)
    number = 0
    try:
        if not buf.skip_ws():
            yield Rejected(name, "file", "empty file: no JSON")
            return
        in_array = buf.peek() == "["
        if in_array:
            buf.pos += 1
            if buf.skip_ws() and buf.peek() == "]":
                buf.pos += 1
                in_array = False  # an empty array; only whitespace may follow
                if buf.skip_ws():
                    raise _SyntaxError("extra data after the array", buf.pos)
                return
        while True:
            if not buf.skip_ws():
                if in_array:
                    raise _SyntaxError("unexpected end of file: the array is not closed", buf.pos)
                return
            number += 1
            try:
                decoded = buf.decode_value()
            except _TooLarge as exc:
                yield Rejected(name, f"record {number}", f"record at {exc.where} of {exc.size:,} characters exceeds "
                                                         f"the {MAX_RECORD_BYTES:,}-byte limit")
            except _TooDeep as exc:
                yield Rejected(name, f"record {number}", f"record at {exc.where}: {NESTED_TOO_DEEPLY}")
            else:
                if _valid_utf8(decoded[1]):
                    yield number, decoded[0]
                else:
                    yield Rejected(name, f"record {number}", "invalid UTF-8 in the record")
            if not in_array:
                continue
            if not buf.skip_ws():
                raise _SyntaxError("unexpected end of file: the array is not closed", buf.pos)
            char = buf.peek()
            if char == ",":
                buf.pos += 1
            elif char == "]":
                buf.pos += 1
                if buf.skip_ws():
                    raise _SyntaxError("extra data after the array", buf.pos)
                return
            else:
                raise _SyntaxError("expecting ',' or ']' after a record", buf.pos)
    except _SyntaxError as exc:
        yield Rejected(name, buf.where(exc.pos), f"invalid JSON ({exc.message}); later records not read")
