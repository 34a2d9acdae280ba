"""The parser backend interface: a batch of captions in, objects + attributes out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tagparse.parsing import ParseResult, ParserSpec


class Backend(Protocol):
    """A caption parser. Implementations must be picklable-free to construct in worker processes."""

    spec: ParserSpec

    def parse_batch(self, captions: Sequence[str]) -> list[ParseResult]:
        """Parse captions in order; never raise for one bad caption (return a failure instead)."""
        ...
