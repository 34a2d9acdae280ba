"""Export tags.db to JSONL or to TagAlign's reference files (`tagalign_import` reads those back).

TagAlign's published tags (github.com/Qinying-Liu/TagAlign, README "Train and Evaluate") are a tag
list CSV (`object_list.csv`, row i = tag index i) and a JSON `{filename: [tag indices]}`; its
dataset looks labels up by the file name's basename.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from tagparse.atomic import atomic_path
from tagparse.db import TagsDB
from tagparse.db.damage import NotTagList, damaged_parse, tag_list
from tagparse.errors import TagparseError
from tagparse.reader import load_labels


def export_jsonl(db: TagsDB, out: str, parser: str | None = None) -> int:
    """One JSON line per sample: key, caption, status, objects, attributes (of one parser)."""
    p = db.resolve_parser(parser)
    n = 0
    with db.reader() as r, _open_out(out) as f:
        for key, caption, status, objs, attrs, error, h in r.samples_with_parse(p.id):
            line = {"key": key, "caption": caption, "status": status or "missing"}
            for name, text in (("objects", objs), ("attributes", attrs)):
                try:
                    line[name] = tag_list(text) if text else []
                except NotTagList as exc:
                    raise damaged_parse(db.path, key, p.id, h, f"{name} {exc}") from None
            if error:
                line["error"] = error
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            n += 1
    return n


def export_tagalign(db: TagsDB, out_dir: str | Path, kinds: str = "object") -> tuple[int, int]:
    """Write `object_list.csv` and `object_index.json` from the active vocabulary and labels.

    With kinds="all", attributes follow objects in one tag list (attribute i -> n_objects + i).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TagparseError(
            f"{out}: is a file; the tagalign export writes a folder (object_list.csv and "
            "object_index.json): pass -o a folder path"
        )
    labels = load_labels(db.path)
    out.mkdir(parents=True, exist_ok=True)
    tags = list(labels.vocab["object"]) + (
        list(labels.vocab["attribute"]) if kinds == "all" else []
    )
    with _open_out(out / "object_list.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "tag"])
        w.writerows(enumerate(tags))
    offset = len(labels.vocab["object"])
    with _open_out(out / "object_index.json") as f:
        f.write("{")
        for i, key in enumerate(labels.keys):
            idx = labels.labels["object"].row(i).tolist()
            if kinds == "all":
                idx += (labels.labels["attribute"].row(i) + offset).tolist()
            f.write(
                ("," if i else "") + f"\n{json.dumps(key, ensure_ascii=False)}: {json.dumps(idx)}"
            )
        f.write("\n}\n")
    return len(tags), len(labels)


@contextmanager
def _open_out(path: str | Path, newline: str | None = None) -> Iterator[TextIO]:
    """A text file to write atomically (a failed export leaves the old file or none), or stdout
    for "-"."""
    if str(path) == "-":
        yield sys.stdout
        return
    path = Path(path)
    if path.is_dir():
        raise TagparseError(f"{path}: is a directory; pass -o a file name, e.g. {path}/tags.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as f:
        yield f
