"""(image, caption) pair files for retrieval: JSONL lines `{"image": path, "caption": text}` and
CSV files with `image,caption` columns, one pair per line or row.

An image listed several times (several captions, as in COCO's and Flickr30k's 5 per image) is one
gallery image with all those captions. Relative image paths resolve against the pair file's own
folder, so a split file travels with its images. Every row is checked when the files are read,
before a model loads; a bad row is one error naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tagalign_eval.errors import EvalError
from tagalign_eval.uniquejson import loads_unique


@dataclass(frozen=True)
class CaptionPairs:
    """Caption `j` is `captions[j]`, of image `images[caption_image[j]]`."""

    images: tuple[Path, ...]
    captions: tuple[str, ...]
    caption_image: tuple[int, ...]
    sources: tuple[str, ...]
    """The pair files read, in order."""


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, object, object]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = loads_unique(line, f"{path} line {number}")
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "image" not in row or "caption" not in row:
            raise EvalError(
                f'{path} line {number}: needs the keys "image" and "caption", e.g. '
                '{"image": "a.jpg", "caption": "a dog"}'
            )
        yield number, row["image"], row["caption"]


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, object, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    _check_header(path, header)
    missing = [c for c in ("image", "caption") if c not in header]
    if missing:
        raise EvalError(
            f"{path} line 1: no column(s) {', '.join(missing)} in the header; the first row "
            "must name the columns image,caption"
        )
    for row in reader:
        number = reader.line_num
        if row["image"] is None or row["caption"] is None:
            raise EvalError(f"{path} line {number}: fewer fields than the header's columns")
        if None in row:  # DictReader's key for fields past the header's
            raise EvalError(
                f"{path} line {number}: more fields than the header's columns; quote a "
                'caption that holds a comma ("a dog, running")'
            )
        yield number, row["image"], row["caption"]


def _check_header(path: Path, header: Sequence[str]) -> None:
    """A column named twice or not at all: csv.DictReader would keep the last of two `image`
    columns and key a nameless one by "", silently reading another column than meant."""
    seen: dict[str, int] = {}
    for number, name in enumerate(header, 1):
        if not name.strip():
            raise EvalError(
                f"{path} line 1: column {number} has no name; name every column of the header "
                "(image,caption,...) or remove the empty one"
            )
        if name in seen:
            raise EvalError(
                f"{path} line 1: column {name!r} is named twice (columns {seen[name]} and "
                f"{number}); give each column one name"
            )
        seen[name] = number


def _read(path: Path) -> Iterator[tuple[int, object, object]]:
    if path.is_dir():
        raise EvalError(f"{path} is a folder; pass a .jsonl or .csv file of image,caption pairs")
    if not path.is_file():
        raise EvalError(f"{path}: no such pair file; pass a .jsonl or .csv file of image,caption")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Excel, Notepad) is not data
    except (UnicodeDecodeError, OSError) as exc:
        raise EvalError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, text)
    if path.suffix.lower() == ".jsonl":
        return _jsonl_rows(path, text)
    raise EvalError(f"{path}: unknown pair file type; name it .jsonl or .csv")


def read_pairs(files: Sequence[str | Path]) -> CaptionPairs:
    """Every pair of `files`; images are deduplicated by resolved path, in first-seen order."""
    if not files:
        raise EvalError("no pair file given; pass a .jsonl or .csv file of image,caption pairs")
    index: dict[Path, int] = {}
    captions: list[str] = []
    owner: list[int] = []
    for name in files:
        path = Path(name)
        for number, image, caption in _read(path):
            where = f"{path} line {number}"
            if not isinstance(image, str) or not image.strip():
                raise EvalError(f"{where}: the image is empty or not a path string")
            if not isinstance(caption, str) or not caption.strip():
                raise EvalError(f"{where}: the caption is empty or not a string")
            image_path = (path.parent / image.strip()).resolve()
            if not image_path.is_file():
                raise EvalError(f"{where}: image {image_path} does not exist; fix the path")
            owner.append(index.setdefault(image_path, len(index)))
            captions.append(caption.strip())
    if not captions:
        raise EvalError(f"{', '.join(map(str, files))}: no pairs; add image,caption rows")
    return CaptionPairs(tuple(index), tuple(captions), tuple(owner), tuple(map(str, files)))
