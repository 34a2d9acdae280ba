"""The tags.db storage layer: the only part of tagparse that writes SQL.

- `schema`: the tables (SQLAlchemy models), format name and version.
- `connection`: the connection factory (one set of PRAGMAs) and transaction helpers.
- `fileformat`: the format/version check and in-place migrations.
- `tagsdb`: `TagsDB`, opening a file and every write of the parse pipeline, vocabulary and import.
- `reads` (`Reader`, grouped in `corpus`, `labels`, `verdicts`, `review`): the read queries.
- `verdicts`: also `VerdictStore`, the review TUI's writes; `merge`: the set-based merge copy.

Everything else in tagparse calls methods of these classes.
"""

from tagparse.db.reads import Reader
from tagparse.db.tagsdb import SampleWriteStats, TagsDB, caption_hash

__all__ = ["Reader", "SampleWriteStats", "TagsDB", "caption_hash"]
