"""The one format/version check of a tags.db, and the in-place migration of older files.

Readers refuse a file of a newer format version with an upgrade hint; writers bring an older file
up to `FORMAT_VERSION` inside the caller's transaction, so a failed migration leaves the file as
it was. Migrations from version N to N+1 are registered in `MIGRATIONS[N]`; format v1 is the first
released version, so the table is empty.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import bindparam, column, select, table, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.schema import CreateIndex, CreateTable

from tagparse.db.connection import Store, connect
from tagparse.db.schema import CREATION_ORDER, FORMAT_NAME, FORMAT_VERSION, meta
from tagparse.db.sql import Sql, compile_sql, values_of
from tagparse.errors import FormatError, TagparseError

SQLITE_MAGIC = b"SQLite format 3\x00"

Executor = sqlite3.Connection | Store  # anything with `.execute(sql, params)`

MIGRATIONS: dict[int, Callable[[Store], None]] = {}

_sqlite_master = table("sqlite_master", column("type"), column("name"))
_TABLE_NAMES = Sql(lambda: select(_sqlite_master.c.name).where(_sqlite_master.c.type == "table"))
_READ_META = Sql(lambda: select(meta.c.key, meta.c.value))
_ADD_META = Sql(lambda: insert(meta).values(values_of(("key", "value"))))
_SET_VERSION = Sql(
    lambda: update(meta).where(meta.c.key == "format_version").values(value=bindparam("v"))
)


def check_is_sqlite(
    path: Path, *, empty_ok: bool = True, advice: str = "pass a tags.db written by tagparse"
) -> None:
    """Refuse a file that is not SQLite before SQLite gets to misread it (an empty file is new)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise TagparseError(
            f"{path}: cannot read ({e.strerror}); check the path and permissions"
        ) from None
    if head != SQLITE_MAGIC and (head or not empty_ok):
        raise FormatError(f"{path}: not an SQLite file; {advice}")


def table_names(con: Executor) -> set[str]:
    return {r[0] for r in con.execute(_TABLE_NAMES.text)}


def read_meta(con: Executor) -> dict[str, str] | None:
    """The `meta` table as a dict; None when the file has no such table."""
    if meta.name not in table_names(con):
        return None
    return dict(con.execute(_READ_META.text).fetchall())


def stored_version(path: Path, meta: dict[str, str] | None) -> int:
    """The format version a tags.db declares; a foreign SQLite file is a `FormatError`."""
    if meta is None:
        raise FormatError(f"{path}: an SQLite file but not a tags.db (no meta table)")
    if meta.get("format_name") != FORMAT_NAME:
        raise FormatError(f"{path}: format {meta.get('format_name')!r} is not {FORMAT_NAME!r}")
    text = meta.get("format_version", "0")
    try:
        return int(text)
    except ValueError:
        raise FormatError(
            f"{path}: meta key 'format_version' is {text!r}, not an integer; the file is damaged "
            "or was edited by hand: restore it from a copy"
        ) from None


def require_readable(path: Path, version: int) -> None:
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path}: tags.db format v{version} is newer than this tagparse reads "
            f"(v{FORMAT_VERSION}); upgrade tagparse (pip install -U tagparse)"
        )


def file_version(path: Path, *, advice: str = "pass a tags.db written by tagparse") -> int:
    """Check an existing file read-only and return its version (no migration, no creation)."""
    if not path.exists():
        raise TagparseError(f"{path}: no such tags.db; run `tagparse run --db {path}` first")
    check_is_sqlite(path, empty_ok=False, advice=advice)
    con = connect(path, read_only=True)
    try:
        return stored_version(path, read_meta(con))
    finally:
        con.close()


def check_readable(path: Path) -> None:
    """For read-only use: a tags.db of exactly this version (an older one needs a writer to
    migrate it, which a read-only open must not do)."""
    version = file_version(path)
    require_readable(path, version)
    if version < FORMAT_VERSION:
        raise FormatError(
            f"{path}: tags.db format v{version} is older than v{FORMAT_VERSION}; migrate it with "
            f"a command that writes, e.g. `tagparse vocab --db {path}`, on a writable copy"
        )


def create_missing_tables(tx: Store) -> None:
    """CREATE the schema's tables (and their indexes) that the file lacks, in `CREATION_ORDER`:
    the same DDL text, so the same `sqlite_master`, as every earlier release wrote."""
    present = table_names(tx)
    for t in CREATION_ORDER:
        if t.name not in present:
            tx.execute(compile_sql(CreateTable(t)))
            for index in sorted(t.indexes, key=lambda i: i.name):
                tx.execute(compile_sql(CreateIndex(index)))


def init_or_migrate(tx: Store, path: Path, create: bool) -> None:
    """Inside the caller's transaction: create a new file's tables, or check and migrate one."""
    stored = read_meta(tx)
    if stored is None:
        if table_names(tx) - {"sqlite_sequence"}:
            stored_version(path, stored)  # raises: some other program's SQLite file
        if not create:
            raise TagparseError(f"{path}: empty file; run `tagparse run --db {path}` first")
        create_missing_tables(tx)
        tx.executemany(
            _ADD_META.text,
            [
                ("format_name", FORMAT_NAME),
                ("format_version", str(FORMAT_VERSION)),
                ("created_at", str(time.time())),
            ],
        )
        return
    version = stored_version(path, stored)
    require_readable(path, version)
    if version < FORMAT_VERSION:
        for v in range(version, FORMAT_VERSION):
            if v not in MIGRATIONS:
                raise FormatError(f"{path}: no migration from format v{v}; re-create the file")
            MIGRATIONS[v](tx)
        tx.execute(_SET_VERSION.text, (str(FORMAT_VERSION),))
    create_missing_tables(tx)  # tables added within the version are created if missing
