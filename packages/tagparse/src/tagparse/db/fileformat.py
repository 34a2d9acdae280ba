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

from sqlalchemy import Connection

from tagparse.db.connection import connect
from tagparse.db.schema import FORMAT_NAME, FORMAT_VERSION, Base
from tagparse.errors import FormatError, TagparseError

SQLITE_MAGIC = b"SQLite format 3\x00"

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


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


def table_names(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def read_meta(con: sqlite3.Connection) -> dict[str, str] | None:
    """The `meta` table as a dict; None when the file has no such table."""
    if "meta" not in table_names(con):
        return None
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


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


def init_or_migrate(conn: Connection, path: Path, create: bool) -> None:
    """Inside the caller's transaction: create a new file's tables, or check and migrate one."""
    raw = conn.connection.driver_connection
    meta = read_meta(raw)
    if meta is None:
        if table_names(raw) - {"sqlite_sequence"}:
            stored_version(path, meta)  # raises: some other program's SQLite file
        if not create:
            raise TagparseError(f"{path}: empty file; run `tagparse run --db {path}` first")
        Base.metadata.create_all(conn)
        raw.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("format_name", FORMAT_NAME),
                ("format_version", str(FORMAT_VERSION)),
                ("created_at", str(time.time())),
            ],
        )
        return
    version = stored_version(path, meta)
    require_readable(path, version)
    if version < FORMAT_VERSION:
        for v in range(version, FORMAT_VERSION):
            if v not in MIGRATIONS:
                raise FormatError(f"{path}: no migration from format v{v}; re-create the file")
            MIGRATIONS[v](raw)
        raw.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(FORMAT_VERSION),))
    Base.metadata.create_all(conn)  # tables added within the version are created if missing
