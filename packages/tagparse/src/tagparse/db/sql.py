"""Core statements compiled once to SQLite text, to run on the sqlite3 driver connection.

The statements of `tagparse.db` are built from the `Table`s of `schema` (so a column is named in
one place) and executed by sqlite3 directly: compiling costs ~0.2 ms, executing a cached text
costs what hand-written SQL costs, which keeps the figures of `bench/bench_scale.py` (bulk label
writes, the vocab scan, the label reader) and `bench/bench_rerun.py` (cache look-ups per batch).
Parameters are positional (`?`) in the order `compiled.positiontup` gives, which for the
statements here is the order the columns or `bindparam`s are written in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, Join, bindparam
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class _Compiler(SQLiteCompiler):
    """Values written into a statement (`status == "ok"`, `LIMIT 1`) are inlined as SQL
    literals; only `bindparam(name)`s, which carry no value, become `?` parameters."""

    def visit_bindparam(self, bindparam: BindParameter, **kw: Any) -> str:
        if not bindparam.required:
            kw["literal_binds"] = True
        return super().visit_bindparam(bindparam, **kw)


_DIALECT = sqlite.dialect(paramstyle="qmark")
_DIALECT.statement_compiler = _Compiler


def compile_sql(stmt: ClauseElement) -> str:
    """SQLite text of a Core statement or DDL element."""
    return str(stmt.compile(dialect=_DIALECT))


class Sql:
    """A statement built and compiled on first use, then reused as text (import stays cheap)."""

    def __init__(self, build: Callable[[], ClauseElement]):
        self._build = build
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = compile_sql(self._build())
        return self._text


class SqlIn:
    """A statement with `IN (...)` lists, compiled once per list lengths (a batch size).

    `build` takes one list of `bindparam`s per IN list; pass the parameters in the order they
    appear in the statement, each list's items in its place.
    """

    def __init__(self, build: Callable[..., ClauseElement], lists: int = 1):
        self._build = build
        self._lists = lists
        self._compiled = lru_cache(maxsize=64)(self._compile)

    def _compile(self, sizes: tuple[int, ...]) -> str:
        lists = [[bindparam(f"in{i}_{k}") for k in range(n)] for i, n in enumerate(sizes)]
        return compile_sql(self._build(*lists))

    def text(self, *sizes: int) -> str:
        assert len(sizes) == self._lists, "one size per IN list"
        return self._compiled(sizes)


class CrossJoin(Join):
    """An inner join written `CROSS JOIN`: SQLite then keeps the tables in the written order
    (its documented planner control), for joins that must start from the smaller side."""

    inherit_cache = True


@compiles(CrossJoin, "sqlite")
def _cross_join(join: CrossJoin, compiler: SQLCompiler, **kw: Any) -> str:
    kw["asfrom"] = True
    left, right = compiler.process(join.left, **kw), compiler.process(join.right, **kw)
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


# The statements Core does not build (transaction control, PRAGMAs, ATTACH), typed here once.
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
WAL_CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"
ATTACH_SOURCE = "ATTACH DATABASE ? AS src"  # the source of a merge, as schema `src`
DETACH_SOURCE = "DETACH DATABASE src"


def pragma(setting: str) -> str:
    """`PRAGMA name=value` for one of tagparse's own settings (never user input)."""
    return f"PRAGMA {setting}"


def values_of(columns: Sequence[str]) -> dict[str, BindParameter]:
    """`{column: ?}` for an INSERT's `.values(...)`, parameters in the order given."""
    return {c: bindparam(c) for c in columns}
