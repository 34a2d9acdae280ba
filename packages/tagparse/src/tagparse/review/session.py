"""The state of one review, without any UI: the order, the position, the current sample, scores.

The Textual app renders a `ReviewSession`; tests and the benchmark drive it directly. Each move
costs a few indexed lookups; only opening the review and changing the tag filter read whole tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tagparse.db import TagsDB
from tagparse.db.schema import KINDS
from tagparse.db.verdicts import VerdictItem, VerdictStore
from tagparse.errors import TagparseError
from tagparse.review.order import build_order
from tagparse.review.samples import SampleView, Tag, load_sample, parser_labels
from tagparse.review.stats import ParserScore, parser_scores

# Samples to review before a precision near 50% is known to ±5 points (95% Wilson/normal interval).
DEFAULT_TARGET = 385


class ReviewSession:
    def __init__(
        self,
        db_path: str | Path,
        *,
        parsers: Sequence[str] = (),
        order: str = "random",
        seed: int = 0,
        tag_filter: str | None = None,
        target: int = DEFAULT_TARGET,
    ):
        db = TagsDB.open(db_path)
        self.path = db.path
        self.reader = db.reader()
        db.close()
        wanted = [db.resolve_parser(name).id for name in parsers] if parsers else None
        self.parsers = parser_labels(self.reader, wanted)
        self.store = VerdictStore(self.path)
        self.order_name, self.seed, self.target = order, seed, target
        self.reviewed: set[int] = set(self.store.reviewed_ids().tolist())
        self.vocab: dict[str, list[str]] = {k: [] for k in KINDS}
        for kind, tag, _count in self.reader.vocab_rows():
            self.vocab[kind].append(tag)
        self.tag_filter: str | None = None
        self.order = np.empty(0, dtype=np.int64)
        self.pos = 0
        self.current: SampleView | None = None
        self.scores: list[ParserScore] = []
        if not self.set_filter(tag_filter):
            self.close()
            raise TagparseError(
                f"{self.path}: no sample has the tag {tag_filter!r}; check --filter"
            )
        self.refresh_scores()

    def close(self) -> None:
        self.reader.close()
        self.store.close()

    # -- navigation ------------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return len(self.order) == 0

    def set_filter(self, tag: str | None) -> bool:
        """Rebuild the order for samples with `tag` (None: all); False (order kept) if no match."""
        order = build_order(
            self.reader,
            str(self.path),
            self.order_name,
            self.seed,
            list(self.parsers),
            self.store.reviewed_ids(),
            tag or None,
        )
        if tag and len(order) == 0:
            return False
        self.order, self.tag_filter = order, tag or None
        self.goto(self.first_unreviewed(0) or 0)
        return True

    def goto(self, pos: int) -> None:
        if self.empty:
            return
        self.pos = max(0, min(pos, len(self.order) - 1))
        self.reload()

    def reload(self) -> None:
        """Re-read the current sample and its verdicts (after a write or a move)."""
        sid = int(self.order[self.pos])
        self.current = load_sample(self.reader, sid, self.parsers, self.store.latest(sid))

    def first_unreviewed(self, start: int) -> int | None:
        """Position of the first sample without a verdict at or after `start`, wrapping around."""
        reviewed = np.fromiter(self.reviewed, dtype=np.int64, count=len(self.reviewed))
        n = len(self.order)
        for begin, end in ((start, n), (0, start)):
            for lo in range(begin, end, 4096):
                chunk = self.order[lo : min(lo + 4096, end)]
                fresh = ~np.isin(chunk, reviewed)
                if fresh.any():
                    return lo + int(np.argmax(fresh))
        return None

    def position_of(self, sample_id: int) -> int | None:
        hits = np.flatnonzero(self.order == sample_id)
        return int(hits[0]) if len(hits) else None

    # -- verdicts --------------------------------------------------------------------------------
    def record(self, items: Sequence[VerdictItem]) -> None:
        """Write one action's verdicts on the current sample, then refresh what they change."""
        if not items or self.current is None:
            return
        self.store.record(self.current.id, items)
        self.reviewed.add(self.current.id)
        self.reload()
        self.refresh_scores()

    def verdict_for(self, tag: Tag, verdict: str) -> VerdictItem:
        parser_id = self.current.first_parser_with(tag) if self.current else None
        return VerdictItem(tag[0], tag[1], verdict, parser_id)

    def undo(self) -> int | None:
        """Undo the latest action and move to its sample; returns that sample id."""
        sid = self.store.undo()
        if sid is None:
            return None
        if not self.store.is_reviewed(sid):
            self.reviewed.discard(sid)
        pos = self.position_of(sid)
        if pos is not None:
            self.pos = pos
        if not self.empty:
            self.reload()
        self.refresh_scores()
        return sid

    def refresh_scores(self) -> None:
        self.scores = [s for s in parser_scores(self.reader, self.parsers) if s.kind == "all"]

    def tag_kind(self, text: str) -> Tag:
        """`a:red` / `o:dog` pick the kind; otherwise the vocabulary decides (objects first)."""
        text = " ".join(text.split()).lower()
        prefix, sep, rest = text.partition(":")
        if sep and prefix in ("a", "attr", "attribute"):
            return "attribute", rest.strip()
        if sep and prefix in ("o", "obj", "object"):
            return "object", rest.strip()
        if text not in self.vocab["object"] and text in self.vocab["attribute"]:
            return "attribute", text
        return "object", text

    def in_vocab(self, tag: Tag) -> bool:
        return tag[1] in self.vocab[tag[0]]
