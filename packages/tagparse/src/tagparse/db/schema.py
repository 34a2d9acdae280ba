"""SQLAlchemy models of the tag-label file (`tags.db`), format v1.

The spec is `docs/tag-label-format.md`; `tests/tagparse/test_format_spec.py` keeps the two in step.
Tag lists are stored as JSON text in `parses` (human-inspectable, written once per caption) and as
little-endian int32 blobs in `labels` (read by trainers for millions of samples at once).
"""

from __future__ import annotations

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

FORMAT_NAME = "tagalign-tags"
FORMAT_VERSION = 1

KINDS = ("object", "attribute")
VERDICTS = ("accept", "reject", "add")
PARSE_STATUSES = ("ok", "error")


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value metadata: format name and version, active vocabulary description."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class Sample(Base):
    """One image/caption pair, identified by the corpus key (webdataset `__key__`, filename...)."""

    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    caption: Mapped[str] = mapped_column(Text, nullable=False)
    caption_hash: Mapped[str] = mapped_column(String, nullable=False, index=True)


class Parser(Base):
    """A parser configuration; its fingerprint decides which cached parses are valid."""

    __tablename__ = "parsers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String, unique=True, nullable=False)
    backend: Mapped[str] = mapped_column(String, nullable=False)
    model: Mapped[str] = mapped_column(String, nullable=False, default="")
    prompt_id: Mapped[str] = mapped_column(String, nullable=False, default="")
    prompt_hash: Mapped[str] = mapped_column(String, nullable=False, default="")
    normalizer_version: Mapped[str] = mapped_column(String, nullable=False)
    params: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class Parse(Base):
    """The parse of one caption text by one parser (shared by every sample with that caption)."""

    __tablename__ = "parses"
    caption_hash: Mapped[str] = mapped_column(String, primary_key=True)
    parser_id: Mapped[int] = mapped_column(ForeignKey("parsers.id"), primary_key=True)
    objects: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    attributes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    raw_output: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    __table_args__ = (Index("ix_parses_parser_status", "parser_id", "status"),)


class VocabEntry(Base):
    """The active tag vocabulary: index → tag for each kind, with its corpus frequency."""

    __tablename__ = "vocab"
    kind: Mapped[str] = mapped_column(String, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (UniqueConstraint("kind", "tag", name="uq_vocab_kind_tag"),)


class Label(Base):
    """Per-sample label indices into the active vocabulary (int32 little-endian blobs)."""

    __tablename__ = "labels"
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id"), primary_key=True)
    objects: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    attributes: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class Verdict(Base):
    """A reviewer's verdict on one tag of one sample; the latest verdict per tag wins."""

    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id"), nullable=False, index=True)
    parser_id: Mapped[int | None] = mapped_column(ForeignKey("parsers.id"), nullable=True)
    tag: Mapped[str] = mapped_column(String, nullable=False)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    verdict: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
