"""The members of a top-level JSON object, one at a time, without loading the file.

TagAlign's published `{filename: [tag indices]}` file for CC12M is a single JSON object of
gigabytes; `json.load` would hold all of it (and its Python objects) in memory at once. Python's
decoder can read one value at an offset (`raw_decode`), so this reads the text in chunks and
decodes key, colon, value, comma in turn, asking for more text when a value runs past the end
of what has been read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tagparse.errors import TagparseError

_WHITESPACE = " \t\r\n"


def iter_json_object(path: Path, chunk_size: int = 1 << 20) -> Iterator[tuple[str, Any]]:
    """(key, value) for each member of the JSON object in `path`, in file order; a file that is
    not such an object, or not UTF-8, is a one-line TagparseError naming it."""
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 -- closed by the `with` below
    except FileNotFoundError:
        raise TagparseError(f"{path}: no such label JSON file") from None
    with f:
        yield from _ObjectReader(f, path, chunk_size).members()


class _ObjectReader:
    """A read position in a file's text: `buf[pos:]` is read but not yet decoded."""

    def __init__(self, f: TextIO, path: Path, chunk_size: int):
        self.f, self.path, self.chunk_size = f, path, chunk_size
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.eof = "", 0, False

    def members(self) -> Iterator[tuple[str, Any]]:
        if self._next_char() != "{":
            raise TagparseError(f"{self.path}: expected a JSON object {{filename: [tag indices]}}")
        self.pos += 1
        if self._next_char() == "}":
            return
        while True:
            key = self._value()
            if self._next_char() != ":" or not isinstance(key, str):
                raise TagparseError(f"{self.path}: malformed JSON object near key {key!r}")
            self.pos += 1
            self._next_char()
            yield key, self._value()
            separator = self._next_char()
            self.pos += 1
            if separator == "}":
                return
            if separator != ",":
                raise TagparseError(f"{self.path}: malformed JSON object after key {key!r}")
            self._next_char()

    def _need(self, n_chars: int = 1) -> None:
        """At least `n_chars` characters read after `pos` (fewer at the end of the file)."""
        while not self.eof and len(self.buf) - self.pos < n_chars:
            try:
                more = self.f.read(self.chunk_size)
            except UnicodeDecodeError:
                raise TagparseError(
                    f"{self.path}: not UTF-8; re-encode the JSON as UTF-8"
                ) from None
            self.eof = not more
            self.buf, self.pos = self.buf[self.pos :] + more, 0

    def _next_char(self) -> str:
        """The next character that is not whitespace (moved to, not consumed); "" at the end."""
        self._need()
        while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
            self.pos += 1
            self._need()
        return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def _value(self) -> Any:
        """The next JSON value; one cut by the end of what was read is retried with more text."""
        ahead = self.chunk_size
        while True:
            self._need(ahead)
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number at the very end might continue
                    self.pos = end
                    return value
            except json.JSONDecodeError as e:
                if self.eof:
                    raise TagparseError(
                        f"{self.path}: not a JSON object of tag lists ({e.msg}); "
                        "pass TagAlign's {filename: [tag indices]} file"
                    ) from None
            ahead = len(self.buf) - self.pos + self.chunk_size
