"""Set-based copy of one tags.db into another (the SQL behind `tagparse merge`).

The source is attached read-only and copied in one transaction, so merging millions of rows takes
seconds and a killed merge leaves whole sources only. Rows are matched by their natural keys
(sample key, parser fingerprint, caption hash); a conflict keeps what the output already has (a
successful parse beats a failed one) and is counted. `pmap` (a temp table) maps the source's
parser ids to the output's.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, exists, func, insert, select
from sqlalchemy.dialects.sqlite import insert as upsert
from sqlalchemy.schema import CreateTable, DropTable

from tagparse.db.connection import Store, read_only_uri
from tagparse.db.schema import metadata
from tagparse.db.sql import ATTACH_SOURCE, DETACH_SOURCE, Sql, compile_sql


def _schema(name: str) -> dict[str, Table]:
    """The tables of `schema`, qualified by an attached database's name (`main.` or `src.`)."""
    md = MetaData()
    return {t.name: t.to_metadata(md, schema=name) for t in metadata.sorted_tables}


main, src = _schema("main"), _schema("src")
parsers, parses, samples, verdicts = (main[n] for n in ("parsers", "parses", "samples", "verdicts"))
pmap = Table(
    "pmap", MetaData(), Column("src_id", Integer), Column("dst_id", Integer), schema="temp"
)
_PARSER_COLUMNS = [c.name for c in parsers.c if c.name != "id"]
_PARSE_COLUMNS = [c.name for c in parses.c]
_PARSE_VALUES = [c for c in _PARSE_COLUMNS if c not in ("caption_hash", "parser_id")]
_VERDICT_COLUMNS = [c.name for c in verdicts.c if c.name != "id"]


def _source_parses():
    p = src["parses"].c
    return select(*(pmap.c.dst_id if c == "parser_id" else p[c] for c in _PARSE_COLUMNS)).join(
        pmap, pmap.c.src_id == p.parser_id
    )


def _add_parsers():
    s = src["parsers"]
    return (
        insert(parsers)
        .prefix_with("OR IGNORE")
        .from_select(_PARSER_COLUMNS, select(*(s.c[c] for c in _PARSER_COLUMNS)).order_by(s.c.id))
    )


def _fill_pmap():
    s = src["parsers"]
    pairs = select(s.c.id, parsers.c.id).join(parsers, parsers.c.fingerprint == s.c.fingerprint)
    return insert(pmap).from_select(["src_id", "dst_id"], pairs)


def _key_conflicts():
    s = src["samples"]
    return (
        select(func.count())
        .select_from(s.join(samples, samples.c.key == s.c.key))
        .where(samples.c.caption_hash != s.c.caption_hash)
    )


def _add_samples():
    s = src["samples"]
    cols = ["key", "caption", "caption_hash"]
    rows = select(*(s.c[c] for c in cols)).order_by(s.c.id)
    return insert(samples).prefix_with("OR IGNORE").from_select(cols, rows)


def _parse_conflicts():
    p, m = src["parses"].c, parses.c
    return (
        select(func.count())
        .select_from(src["parses"])
        .join(pmap, pmap.c.src_id == p.parser_id)
        .join(parses, (m.caption_hash == p.caption_hash) & (m.parser_id == pmap.c.dst_id))
        .where(
            m.status == "ok",
            p.status == "ok",
            (m.objects != p.objects) | (m.attributes != p.attributes),
        )
    )


def _upgrade_failed_parses():
    """A failed parse in the output gives way to a successful one from the source."""
    rows = _source_parses().where(src["parses"].c.status == "ok")
    stmt = upsert(parses).from_select(_PARSE_COLUMNS, rows)
    return stmt.on_conflict_do_update(
        index_elements=["caption_hash", "parser_id"],
        set_={c: stmt.excluded[c] for c in _PARSE_VALUES},
        where=parses.c.status == "error",
    )


def _add_parses():
    return insert(parses).prefix_with("OR IGNORE").from_select(_PARSE_COLUMNS, _source_parses())


def _add_verdicts():
    v, ss = src["verdicts"], src["samples"]
    mv = verdicts.alias("mv")
    same = exists().where(
        mv.c.sample_id == samples.c.id,
        *(mv.c[c] == v.c[c] for c in ("tag", "kind", "verdict", "created_at")),
    )
    rows = (
        select(samples.c.id, pmap.c.dst_id, v.c.tag, v.c.kind, v.c.verdict, v.c.created_at)
        .select_from(v)
        .join(ss, ss.c.id == v.c.sample_id)
        .join(samples, samples.c.key == ss.c.key)
        .outerjoin(pmap, pmap.c.src_id == v.c.parser_id)
        .where(~same)
        .order_by(v.c.created_at, v.c.id)
    )
    return insert(verdicts).from_select(_VERDICT_COLUMNS, rows)


_STEPS = {  # in this order; each counts the rows it changed (or, for conflicts, found)
    "parsers_added": Sql(_add_parsers),
    "pmap": Sql(_fill_pmap),
    "key_conflicts": Sql(_key_conflicts),
    "samples_added": Sql(_add_samples),
    "parse_conflicts": Sql(_parse_conflicts),
    "parses_upgraded": Sql(_upgrade_failed_parses),
    "parses_added": Sql(_add_parses),
    "verdicts_added": Sql(_add_verdicts),
}
_COUNTS = ("key_conflicts", "parse_conflicts")


class MergeTarget(Store):
    """The output file of a merge, open on one connection for the whole merge."""

    def copy_from(self, source: Path) -> dict[str, int]:
        """Copy one source in one transaction; counts keyed like `merge.SourceSummary`."""
        self.execute(ATTACH_SOURCE, (read_only_uri(source),))
        try:
            with self.transaction() as tx:
                return self._copy(tx)
        finally:
            self.execute(DETACH_SOURCE)

    def _copy(self, tx: Store) -> dict[str, int]:
        tx.execute(compile_sql(DropTable(pmap, if_exists=True)))
        tx.execute(compile_sql(CreateTable(pmap)))
        n: dict[str, int] = {}
        for name, stmt in _STEPS.items():
            cursor = tx.execute(stmt.text)
            n[name] = cursor.fetchone()[0] if name in _COUNTS else cursor.rowcount
        del n["pmap"]
        n["parses_added"] += n.pop("parses_upgraded")
        return n
