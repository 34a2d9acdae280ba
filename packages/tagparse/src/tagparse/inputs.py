"""Stream (key, caption) records from CSV/TSV, JSONL and webdataset tar shards.

Records are read one at a time so a 12M-caption corpus never sits in memory. Bad input stops the
run with a `TagparseError` naming the file and line (the pipeline first commits what it has);
recoverable damage — an over-long caption, a truncated tar shard — becomes a warning and the run
goes on with what could be read.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tagparse.errors import TagparseError
from tagparse.parsing import ParseResult
from tagparse.samplekey import split_key

MAX_CAPTION_CHARS = 10_000
FORMATS = ("csv", "tsv", "jsonl", "tar")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".tar": "tar",
}
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
_TAR_BLOCK = 512


@dataclass(frozen=True)
class InputOptions:
    """How to read inputs; the defaults match TagAlign's meta CSV (`filename,caption`)."""

    format: str | None = None  # one of FORMATS; None = from each file's extension
    key_column: str = "filename"
    caption_column: str = "caption"


@dataclass(frozen=True)
class Record:
    key: str
    caption: str
    where: str  # "file: line N" or "shard.tar: member", for messages


@dataclass(frozen=True)
class ParsedRecord(Record):
    """A record read and parsed upstream (`--distributor ray`): `result` is None when its caption
    was not sent (cached or empty), so the writer never sends it again."""

    result: ParseResult | None = None


def expand_braces(pattern: str) -> list[str]:
    """Shell-style brace expansion: `a{1,2}` and zero-padded ranges `shards/{00000..00099}.tar`."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, end = 0, -1
    for i in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[i], 0)
        if depth == 0:
            end = i
            break
    if end < 0:
        return [pattern]
    prefix, body, suffix = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    options = _brace_options(body)
    if options is None:  # a literal "{x}": keep it, expand the rest
        return [prefix + "{" + body + "}" + rest for rest in expand_braces(suffix)]
    return [out for opt in options for out in expand_braces(prefix + opt + suffix)]


def _brace_options(body: str) -> list[str] | None:
    m = _RANGE.match(body)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        padded = any(len(s.lstrip("-")) > 1 and s.lstrip("-").startswith("0") for s in m.groups())
        width = max(len(s) for s in m.groups()) if padded else 0
        step = 1 if b >= a else -1
        return [str(i).zfill(width) for i in range(a, b + step, step)]
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(body[last:i])
            last = i + 1
    if not parts:
        return None
    return parts + [body[last:]]


def resolve_inputs(patterns: Sequence[str]) -> list[Path]:
    """Expand braces and globs; every resulting path must be a readable file."""
    if not patterns:
        raise TagparseError("no input given; pass --input FILE (csv, tsv, jsonl or tar shards)")
    paths: list[Path] = []
    for pattern in patterns:
        for name in expand_braces(pattern):
            matches = sorted(glob.glob(name)) if glob.has_magic(name) else [name]
            if not matches:
                raise TagparseError(f"{name}: no input file matches; check the pattern")
            paths.extend(Path(m) for m in matches)
    for p in paths:
        if not p.exists():
            raise TagparseError(
                f"{p}: no such input file; check the path "
                "(quote brace patterns such as 'shards/{00000..00009}.tar')"
            )
        if p.is_dir():
            raise TagparseError(f"{p}: is a directory; pass the caption files inside it")
        if not os.access(p, os.R_OK):
            raise TagparseError(f"{p}: cannot read the input file (permission denied)")
    return paths


def detect_format(path: Path, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise TagparseError(
                f"unknown input format {explicit!r}; choose one of {', '.join(FORMATS)}"
            )
        return explicit
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise TagparseError(
            f"{path}: cannot tell the input format from the extension; "
            f"pass --format {'|'.join(FORMATS)}"
        )
    return fmt


class InputStream:
    """Records of several input files in order, with bytes-read progress and collected warnings."""

    def __init__(
        self,
        patterns: Sequence[str],
        options: InputOptions | None = None,
        on_warning: Callable[[str], None] | None = None,
    ):
        self.options = options or InputOptions()
        self.paths = resolve_inputs(patterns)
        self.formats = [detect_format(p, self.options.format) for p in self.paths]
        self.total_bytes = sum(p.stat().st_size for p in self.paths)
        self.truncated_captions = 0
        self.damaged_shards = 0
        self.warnings: list[str] = []
        self._on_warning = on_warning
        self._done_bytes = 0
        self._current: BinaryIO | None = None

    @property
    def bytes_read(self) -> int:
        pos = self._current.tell() if self._current is not None and not self._current.closed else 0
        return self._done_bytes + pos

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._on_warning:
            self._on_warning(message)

    def __iter__(self) -> Iterator[Record]:
        readers = {
            "csv": self._delimited,
            "tsv": self._delimited,
            "jsonl": self._jsonl,
            "tar": self._tar,
        }
        for path, fmt in zip(self.paths, self.formats):
            try:
                with open(path, "rb") as f:
                    self._current = f
                    yield from readers[fmt](path, f, fmt)
            except OSError as e:
                raise TagparseError(
                    f"{path}: cannot read ({e.strerror or e}); check the file"
                ) from None
            finally:
                self._current = None
                self._done_bytes += path.stat().st_size

    def _record(self, key: str, caption: str, where: str) -> Record:
        if len(caption) > MAX_CAPTION_CHARS:
            self.truncated_captions += 1
            if self.truncated_captions <= 5:
                self.warn(
                    f"{where}: caption of {len(caption):,} characters for key {key!r} "
                    f"truncated to {MAX_CAPTION_CHARS:,}"
                )
            caption = caption[:MAX_CAPTION_CHARS]
        return Record(key, caption, where)

    # -- CSV / TSV -----------------------------------------------------------------------------
    def _delimited(self, path: Path, f: BinaryIO, fmt: str) -> Iterator[Record]:
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))
        reader = csv.reader(
            _utf8_lines(path, f), delimiter="\t" if fmt == "tsv" else ",", strict=True
        )
        opts = self.options
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            for column, flag in (
                (opts.caption_column, "--caption-column"),
                (opts.key_column, "--key-column"),
            ):
                if column not in header:
                    raise TagparseError(
                        f"{path}: no column {column!r} (columns: {', '.join(header)}); "
                        f"pass {flag} NAME"
                    )
            ki, ci = header.index(opts.key_column), header.index(opts.caption_column)
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise TagparseError(
                        f"{path}: line {reader.line_num}: malformed {fmt.upper()} row "
                        f"({len(row)} fields, the header has {len(header)}); "
                        "fix the quoting or remove the row"
                    )
                yield self._record(row[ki], row[ci], f"{path}: line {reader.line_num}")
        except csv.Error as e:
            raise TagparseError(
                f"{path}: line {reader.line_num}: malformed {fmt.upper()} ({e}); "
                "fix the quoting or remove the row"
            ) from None

    # -- JSONL ---------------------------------------------------------------------------------
    def _jsonl(self, path: Path, f: BinaryIO, _fmt: str) -> Iterator[Record]:
        opts = self.options
        for lineno, line in enumerate(_utf8_lines(path, f), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise TagparseError(
                    f"{path}: line {lineno}: not valid JSON ({e.msg}); fix or remove the line"
                ) from None
            if not isinstance(obj, dict):
                raise TagparseError(f"{path}: line {lineno}: expected a JSON object per line")
            for field, flag in (
                (opts.key_column, "--key-column"),
                (opts.caption_column, "--caption-column"),
            ):
                if field not in obj:
                    raise TagparseError(
                        f"{path}: line {lineno}: no field {field!r}; pass {flag} NAME"
                    )
            where = f"{path}: line {lineno}"
            key = _json_key(obj[opts.key_column], opts.key_column, where)
            caption = _json_text(obj[opts.caption_column], opts.caption_column, where)
            yield self._record(key, caption, where)

    # -- webdataset tar shards -------------------------------------------------------------------
    def _tar(self, path: Path, f: BinaryIO, _fmt: str) -> Iterator[Record]:
        """Samples of an img2dataset shard: members `KEY.ext`, caption from KEY.txt or KEY.json."""
        try:
            tar = tarfile.open(fileobj=f, mode="r|")  # noqa: SIM115 -- closed by the `with` below
        except tarfile.TarError as e:
            raise TagparseError(
                f"{path}: not a tar file ({e}); pass webdataset .tar shards"
            ) from None
        key, parts, samples, end = None, {}, 0, 0
        with tar:
            for name, data, member_end in _tar_members(tar):
                if name is None:  # the shard broke off mid-member; what was read is kept
                    self.damaged_shards += 1
                    end = -1
                    break
                end = member_end
                k, ext = split_key(name)
                if k != key:
                    if key is not None:
                        samples += 1
                        yield self._tar_record(path, key, parts)
                    key, parts = k, {}
                if data is not None:
                    parts[ext] = data
            if key is not None and (end >= 0 or parts):  # a cut-off last sample needs its caption
                samples += 1
                yield self._tar_record(path, key, parts)
        size = path.stat().st_size
        if end >= 0 and 0 < size < end + 2 * _TAR_BLOCK:
            self.damaged_shards += 1
            reason = "no end-of-archive marker"
        elif end < 0:
            reason = "cut off inside a member"
        else:
            return
        self.warn(
            f"{path}: truncated tar shard after {samples} samples ({reason}); kept them; "
            "re-download the shard"
        )

    def _tar_record(self, path: Path, key: str, parts: dict[str, bytes]) -> Record:
        where = f"{path}: {key}"
        if "txt" in parts:
            return self._record(key, _decode(parts["txt"], f"{where}.txt").strip(), where)
        if "json" in parts:
            try:
                meta = json.loads(_decode(parts["json"], f"{where}.json"))
            except json.JSONDecodeError as e:
                raise TagparseError(
                    f"{where}.json: not valid JSON ({e.msg}); re-create the shard"
                ) from None
            column = self.options.caption_column
            caption = meta.get(column) if isinstance(meta, dict) else None
            return self._record(key, _json_text(caption, column, f"{where}.json").strip(), where)
        return self._record(
            key, "", where
        )  # an image without a caption: recorded as a failed sample


_CAPTION_EXTS = ("txt", "json")


def _json_text(value: object, field: str, where: str) -> str:
    """A JSON caption must be a string (null: no caption, a failed sample); a number or a list
    stored as its Python repr would be parsed as if someone had written it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TagparseError(
            f"{where}: field {field!r} is a JSON {_json_type(value)} "
            f"({json.dumps(value)[:40]}), not a string; store captions as JSON strings"
        )
    return value


def _json_key(value: object, field: str, where: str) -> str:
    """A sample key: a JSON string, or an integer id (written in decimal)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TagparseError(
        f"{where}: field {field!r} is a JSON {_json_type(value)} ({json.dumps(value)[:40]}); "
        "a sample key must be a string or an integer"
    )


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _tar_members(tar: tarfile.TarFile) -> Iterator[tuple]:
    """(name, caption bytes or None, end offset) per file member; (None, None, -1) if cut off."""
    it = iter(tar)
    while True:
        try:
            member = next(it)
            if not member.isfile():
                continue
            data = None
            if split_key(member.name)[1] in _CAPTION_EXTS:
                data = tar.extractfile(member).read()
        except StopIteration:
            return
        except (tarfile.TarError, EOFError):  # reported by the caller, with the sample count
            yield None, None, -1
            return
        yield member.name, data, member.offset_data + -(-member.size // _TAR_BLOCK) * _TAR_BLOCK


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TagparseError(
            f"{where}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-encode the caption as UTF-8"
        ) from None


def _utf8_lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """Decode line by line so a bad byte is reported with its line number."""
    for lineno, raw in enumerate(f, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TagparseError(
                f"{path}: line {lineno}: not UTF-8 (byte 0x{raw[e.start]:02x} at column "
                f"{e.start + 1}); convert the file to UTF-8, e.g. "
                f"`iconv -f latin1 -t utf-8`"
            ) from None
