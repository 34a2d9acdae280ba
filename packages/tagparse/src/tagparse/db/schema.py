"""The tables of the tag-label file (`tags.db`), format v1, declared once as SQLAlchemy Core.

Every statement of `tagparse.db` is built from these `Table`s, so a column has one name, here.
The spec is `docs/tag-label-format.md`; `tests/tagparse/test_format_spec.py` keeps the two in
step, and the DDL compiled from them is the v1 schema as written by every earlier release
(`tests/tagparse/test_db.py` compares `sqlite_master`). Tag lists are stored as JSON text in
`parses` (human-inspectable, written once per caption) and as little-endian int32 blobs in
`labels` (read by trainers for millions of samples at once).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

FORMAT_NAME = "tagalign-tags"
FORMAT_VERSION = 1

KINDS = ("object", "attribute")
VERDICTS = ("accept", "reject", "add")
PARSE_STATUSES = ("ok", "error")

metadata = MetaData()

# Key/value metadata: format name and version, active vocabulary description (`VocabMeta`).
meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# One image/caption pair, identified by the corpus key (webdataset `__key__`, filename...).
samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String, unique=True, nullable=False),
    Column("caption", Text, nullable=False),
    Column("caption_hash", String, nullable=False, index=True),
)

# A parser configuration; its fingerprint decides which cached parses are valid.
parsers = Table(
    "parsers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String, unique=True, nullable=False),
    Column("backend", String, nullable=False),
    Column("model", String, nullable=False),
    Column("prompt_id", String, nullable=False),
    Column("prompt_hash", String, nullable=False),
    Column("normalizer_version", String, nullable=False),
    Column("params", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The parse of one caption text by one parser (shared by every sample with that caption).
parses = Table(
    "parses",
    metadata,
    Column("caption_hash", String, primary_key=True),
    Column("parser_id", ForeignKey("parsers.id"), primary_key=True),
    Column("objects", Text, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("raw_output", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("error", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_parses_parser_status", "parser_id", "status"),
)

# The active tag vocabulary: index -> tag for each kind, with its corpus frequency.
vocab = Table(
    "vocab",
    metadata,
    Column("kind", String, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("tag", String, nullable=False),
    Column("count", Integer, nullable=False),
    UniqueConstraint("kind", "tag", name="uq_vocab_kind_tag"),
)

# Per-sample label indices into the active vocabulary (int32 little-endian blobs).
labels = Table(
    "labels",
    metadata,
    Column("sample_id", ForeignKey("samples.id"), primary_key=True),
    Column("objects", LargeBinary, nullable=False),
    Column("attributes", LargeBinary, nullable=False),
)

# A reviewer's verdict on one tag of one sample; the latest verdict per tag wins.
verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sample_id", ForeignKey("samples.id"), nullable=False, index=True),
    Column("parser_id", ForeignKey("parsers.id"), nullable=True),
    Column("tag", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("verdict", String, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The order v1 files have always been created in (references first), so that a new file is laid
# out page for page as before: the same `sqlite_master`, root pages included.
CREATION_ORDER = tuple(
    metadata.tables[name]
    for name in ("meta", "samples", "parsers", "vocab", "parses", "labels", "verdicts")
)


@dataclass(frozen=True)
class Parser:
    """One row of `parsers`, as commands that pick a parser by name see it."""

    id: int
    fingerprint: str
    backend: str
    model: str
    prompt_id: str
    prompt_hash: str
    normalizer_version: str
    params: str
    created_at: float
