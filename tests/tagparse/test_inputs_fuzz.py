"""Fuzz the caption readers (`tagparse.inputs`): arbitrary bytes and arbitrary rows end in records
(an empty caption becomes a recorded failed sample) or in the project's own `TagparseError` —
never another exception, which the CLI would print as a traceback."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tagparse.errors import TagparseError
from tagparse.inputs import InputOptions, InputStream

EXAMPLES = 400  # per test; 6 tests: 2,400 examples in about 30 s on a busy core
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
# Captions, keys, names: short text with the characters that break parsers most often.
TRICKY = st.one_of(TEXT, st.sampled_from(['"', '""', ",", "\t", "\n", "\r\n", "\x00", "\ufeff"]))


def read_all(
    data: bytes, suffix: str, options: InputOptions | None = None, *, errors_ok: bool = True
) -> list:
    """Every record of one input file holding `data`; a one-line TagparseError is an accepted
    outcome (and gives no records) when `errors_ok`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        warnings: list[str] = []
        try:
            records = list(InputStream([str(path)], options, warnings.append))
        except TagparseError as e:
            assert errors_ok, f"valid input refused: {e}"
            assert str(e) and "\n" not in str(e).strip(), repr(str(e))  # one line
            return []
    for r in records:
        assert isinstance(r.key, str) and isinstance(r.caption, str)
    return records


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".tar"]))
def test_arbitrary_bytes(data, suffix):
    read_all(data, suffix)


@FUZZ
@given(
    header=st.lists(TRICKY, max_size=4),
    rows=st.lists(st.lists(TRICKY, max_size=5), max_size=8),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_arbitrary_csv_rows(header, rows, delimiter):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["filename", "caption", *header])
    writer.writerows(rows)
    read_all(out.getvalue().encode("utf-8"), ".csv" if delimiter == "," else ".tsv")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            st.fixed_dictionaries({"filename": JSON_VALUES, "caption": JSON_VALUES}),
            st.dictionaries(TEXT, JSON_VALUES, max_size=3),
            JSON_VALUES,
        ),
        max_size=6,
    ),
    garbage=st.lists(TRICKY, max_size=2),
)
def test_arbitrary_jsonl_rows(lines, garbage):
    text = "\n".join([json.dumps(line) for line in lines] + garbage)
    records = read_all(text.encode("utf-8"), ".jsonl")
    assert len(records) <= len(lines)


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MEMBER_NAMES = st.one_of(
    st.builds(
        lambda key, ext: f"{key}.{ext}",
        st.text("abc0./_-", min_size=1, max_size=8),
        st.sampled_from(["txt", "json", "jpg", "cls", "TXT", ""]),
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12),
)
MEMBER_DATA = st.one_of(
    st.binary(max_size=60),
    TEXT.map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"caption": JSON_VALUES}).map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(
    members=st.lists(st.tuples(MEMBER_NAMES, MEMBER_DATA), max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=6000)),
)
def test_arbitrary_tar_members_and_truncation(members, cut):
    data = tar_bytes(members)
    read_all(data if cut is None else data[:cut], ".tar")


@FUZZ
@given(
    data=st.binary(max_size=1500),
    fmt=st.sampled_from(["csv", "tsv", "jsonl", "tar"]),
    key=st.sampled_from(["filename", "key", "", "caption"]),
    caption=st.sampled_from(["caption", "text", "", "filename"]),
)
def test_arbitrary_bytes_with_explicit_options(data, fmt, key, caption):
    read_all(data, ".dat", InputOptions(fmt, key, caption))


VALID_FIELD = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
            max_size=30),
    st.sampled_from(['"', '""', ",", "\t", "\n", "\r\n", "\ufeff", " padded "]),
)  # fmt: skip


@FUZZ
@given(
    rows=st.lists(st.tuples(VALID_FIELD, VALID_FIELD), max_size=8),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_well_formed_csv_reads_back_every_row(rows, bom, newline):
    """The other half of the promise: valid input loses nothing, whatever its characters."""
    out = io.StringIO(newline="")
    # csv's minimal quoting leaves a lone CR unquoted, which no CSV reader can tell from a line
    # break: quote every field then, as any CSV writer that keeps CRs must.
    lone_cr = any("\r" in field for row in rows for field in row)
    quoting = csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL
    writer = csv.writer(out, lineterminator=newline, quoting=quoting)
    writer.writerow(["filename", "caption"])
    writer.writerows(rows)
    data = ("\ufeff" if bom else "") + out.getvalue()
    records = read_all(data.encode("utf-8"), ".csv", errors_ok=False)
    assert [(r.key, r.caption) for r in records] == rows
