"""`tagparse merge`: union of tags.db files parsed in shards (`tagparse run --shard I/N`).

Each source is copied with set-based SQL in one transaction (`tagparse.db.merge`), so merging
millions of rows takes seconds and a killed merge leaves whole sources only. Rows are matched by
their natural keys (sample key, parser fingerprint, caption hash); a conflict keeps what the
output already has (a successful parse beats a failed one) and is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tagparse.db import TagsDB
from tagparse.db.fileformat import file_version
from tagparse.db.merge import MergeTarget
from tagparse.db.schema import FORMAT_VERSION
from tagparse.errors import TagparseError


@dataclass
class SourceSummary:
    path: str
    samples_added: int = 0
    parsers_added: int = 0
    parses_added: int = 0
    verdicts_added: int = 0
    key_conflicts: int = 0  # same key, different caption: the output's caption stays
    parse_conflicts: int = 0  # same caption and parser, different tags: the output's parse stays


@dataclass
class MergeSummary:
    out: str
    sources: list[SourceSummary] = field(default_factory=list)
    vocab_cleared: bool = False

    @property
    def conflicts(self) -> int:
        return sum(s.key_conflicts + s.parse_conflicts for s in self.sources)

    def lines(self) -> list[str]:
        out = [
            f"{s.path}: +{s.samples_added:,} samples, +{s.parses_added:,} parses, "
            f"+{s.parsers_added} parsers, +{s.verdicts_added:,} verdicts; conflicts: "
            f"{s.key_conflicts:,} keys with another caption, "
            f"{s.parse_conflicts:,} parses with other tags"
            for s in self.sources
        ]
        out.append(
            f"merged {len(self.sources)} file(s) into {self.out}; {self.conflicts:,} conflicts "
            "(the first file's rows were kept)"
        )
        if self.vocab_cleared:
            out.append(f"the vocabulary was cleared; run `tagparse vocab --db {self.out}`")
        return out


def merge_dbs(sources: list[str | Path], out: str | Path) -> MergeSummary:
    """Merge `sources` into `out` (created if missing); sources must have this format version."""
    out = Path(out)
    if not sources:
        raise TagparseError("nothing to merge; pass one or more tags.db files")
    for src in sources:
        if Path(src).resolve() == out.resolve():
            raise TagparseError(f"{src}: is also the output; choose another -o file")
        _check_source(Path(src))
    db = TagsDB.open(out, create=True)  # creates, validates or migrates the output
    db.close()
    summary = MergeSummary(str(out))
    target = MergeTarget(out)
    try:
        for src in map(Path, sources):
            summary.sources.append(SourceSummary(str(src), **target.copy_from(src)))
    finally:
        target.close()
    if any(s.samples_added or s.parses_added or s.verdicts_added for s in summary.sources):
        summary.vocab_cleared = db.clear_vocab()
    db.close()
    return summary


def _check_source(path: Path) -> None:
    """Same format and version as this tagparse (an older source would need a migration first)."""
    version = file_version(path, advice="pass tags.db files written by tagparse")
    if version != FORMAT_VERSION:
        hint = (
            "upgrade tagparse"
            if version > FORMAT_VERSION
            else f"migrate it first (`tagparse stats --db {path}` opens and migrates it)"
        )
        raise TagparseError(
            f"{path}: format v{version}, but merging needs v{FORMAT_VERSION}; {hint}"
        )
