"""One `error:` line for a damaged row of tags.db: which table, which row, what to do.

A tags.db that was edited by hand, copied half-way or written by another program can hold a
parse whose `objects` is not a JSON list of strings, or a label blob that is not a whole number
of int32 indices (or points past the vocabulary). The readers check the rows they decode and
raise these errors instead of a traceback (or, worse, labels shifted into the next sample).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete

from tagparse.db.schema import parses
from tagparse.db.sql import compile_sql
from tagparse.errors import TagparseError


class NotTagList(Exception):
    """A stored tag list that is not a JSON list of strings; the message says what it is."""


def tag_list(text: object) -> list[str]:
    """A stored tag list (JSON text) decoded; NotTagList saying what is wrong with it."""
    if not isinstance(text, str):
        raise NotTagList(f"is {type(text).__name__}, not JSON text")
    try:
        tags = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotTagList(f"is not JSON ({exc})") from None
    check_tags(tags)
    return tags


def check_tags(tags: object) -> None:
    """NotTagList unless `tags` is a list of strings (what a stored tag list must decode to)."""
    if not isinstance(tags, list):
        raise NotTagList(f"is a JSON {type(tags).__name__}, not a list of strings")
    bad = next((t for t in tags if not isinstance(t, str)), None)
    if bad is not None:
        raise NotTagList(f"holds {json.dumps(bad)}, not only strings")


def decoded_parse(
    objects: object, attributes: object, damaged: Callable[[str], TagparseError]
) -> tuple[list[str], list[str]]:
    """Both stored tag lists of a parse, or the error `damaged(problem)` (the caller knows which
    row it read, and looks up what the error names only when there is one)."""
    decoded = []
    for name, text in (("objects", objects), ("attributes", attributes)):
        try:
            decoded.append(tag_list(text))
        except NotTagList as exc:
            raise damaged(f"{name} {exc}") from None
    return decoded[0], decoded[1]


def damaged_parse(
    db_path: Path, key: str, parser_id: int, caption_hash: str, problem: str
) -> TagparseError:
    """The error for a parse (table `parses`) that cannot be decoded: delete it, parse again."""
    fix = compile_sql(
        delete(parses).where(parses.c.parser_id == parser_id, parses.c.caption_hash == caption_hash)
    )
    return TagparseError(
        f"{db_path}: table parses, the parse of sample {key!r} (parser_id {parser_id}, "
        f'caption_hash {caption_hash}): {problem}; delete it (sqlite3 {db_path} "{fix}") '
        f"and re-run `tagparse run` on its input to parse it again, then `tagparse vocab`"
    )


def damaged_labels(db_path: Path, key: str, sample_id: int, problem: str) -> TagparseError:
    """The error for a label row (table `labels`): labels are derived, `tagparse vocab` rebuilds
    every one of them from the parses."""
    return TagparseError(
        f"{db_path}: table labels, sample {key!r} (sample_id {sample_id}): {problem}; "
        f"rebuild the labels with `tagparse vocab --db {db_path}`"
    )
