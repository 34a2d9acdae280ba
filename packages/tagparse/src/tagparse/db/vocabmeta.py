"""`VocabMeta`: the `vocab_*` keys of the `meta` table, written by `tagparse vocab` and import.

They say which vocabulary the `labels` rows index (its fingerprint, which trainers compare), which
parser's parses it was built from, with which minimum count, and when: the reader replays review
verdicts recorded after `built_at`. One dataclass, so a key is spelled once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tagparse.errors import FormatError

PREFIX = "vocab_"


@dataclass(frozen=True)
class VocabMeta:
    fingerprint: str
    parser: str  # fingerprint of the parser whose parses the vocabulary was built from
    min_count: int
    built_at: float  # time.time() of the build

    def to_meta(self) -> dict[str, str]:
        """The `meta` rows, as text (key `vocab_<field>`)."""
        return {
            f"{PREFIX}fingerprint": self.fingerprint,
            f"{PREFIX}parser": self.parser,
            f"{PREFIX}min_count": str(self.min_count),
            f"{PREFIX}built_at": str(self.built_at),
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, str], path: Path) -> VocabMeta | None:
        """The stored vocabulary description; None when no vocabulary was built yet."""
        fingerprint = meta.get(f"{PREFIX}fingerprint")
        if not fingerprint:
            return None
        return cls(
            fingerprint,
            meta.get(f"{PREFIX}parser", ""),
            int(_number(meta, "min_count", path)),
            _number(meta, "built_at", path),
        )


def _number(meta: Mapping[str, str], field: str, path: Path) -> float:
    text = meta.get(f"{PREFIX}{field}") or "0"
    try:
        return float(text)
    except ValueError:
        raise FormatError(
            f"{path}: meta key '{PREFIX}{field}' is {text!r}, not a number; the file is damaged "
            f"or was edited by hand: rebuild the vocabulary with `tagparse vocab --db {path}`"
        ) from None
