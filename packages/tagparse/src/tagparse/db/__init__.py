"""The tags.db storage layer: the only part of tagparse that writes SQL.

- `schema`: the tables (SQLAlchemy Core, one `MetaData`), format name and version.
- `sql`: statements built from those tables, compiled once to SQLite text.
- `connection`: the connection factory (one set of PRAGMAs) and `Store`, the object that runs
  every statement and holds the one transaction helper; `writelock`: writers' fair turns.
- `fileformat`: the format/version check and in-place migrations.
- `tagsdb`: `TagsDB`, opening a file and every write of the parse pipeline, vocabulary and import.
- `reads` (`Reader`, grouped in `corpus`, `labels`, `verdicts`, `review`): the read queries.
- `verdicts`: also `VerdictStore`, the review TUI's writes; `merge`: the set-based merge copy.
- `vocabmeta`: `VocabMeta`, the `vocab_*` keys of the `meta` table.

Everything else in tagparse calls methods of these classes.
"""

from tagparse.db.connection import Store
from tagparse.db.reads import Reader
from tagparse.db.tagsdb import SampleWriteStats, TagsDB, caption_hash
from tagparse.db.vocabmeta import VocabMeta

__all__ = ["Reader", "SampleWriteStats", "Store", "TagsDB", "VocabMeta", "caption_hash"]
