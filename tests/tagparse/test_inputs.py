"""Input readers: CSV/TSV/JSONL/webdataset tar, brace expansion, and every bad-input case."""

import io
import json
import os
import tarfile
import tracemalloc

import pytest
from tagparse.errors import TagparseError
from tagparse.inputs import MAX_CAPTION_CHARS, InputOptions, InputStream, expand_braces


def _read(paths, **opts):
    stream = InputStream([str(p) for p in paths], InputOptions(**opts))
    return [(r.key, r.caption) for r in stream], stream


def write_shard(path, samples, *, with_json_only=()):
    """An img2dataset-style shard: KEY.jpg + KEY.txt + KEY.json per sample."""
    with tarfile.open(path, "w") as tar:
        for key, caption in samples:
            members = [(f"{key}.jpg", b"\xff\xd8fake-jpeg-bytes" * 20)]
            if key not in with_json_only:
                members.append((f"{key}.txt", caption.encode()))
            members.append(
                (
                    f"{key}.json",
                    json.dumps({"key": key, "caption": caption, "status": "success"}).encode(),
                )
            )
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("shards/{00000..00003}.tar", [f"shards/{i:05d}.tar" for i in range(4)]),
        ("s{8..11}.tar", ["s8.tar", "s9.tar", "s10.tar", "s11.tar"]),
        ("{a,b}/{1..2}.csv", ["a/1.csv", "a/2.csv", "b/1.csv", "b/2.csv"]),
        ("x{a,{b,c}}y", ["xay", "xby", "xcy"]),
        ("plain.csv", ["plain.csv"]),
        ("literal{x}.csv", ["literal{x}.csv"]),
        ("{3..1}", ["3", "2", "1"]),
    ],
)
def test_expand_braces(pattern, expected):
    assert expand_braces(pattern) == expected


def test_csv_defaults_to_tagalign_meta_columns(tmp_path):
    p = tmp_path / "meta.csv"
    p.write_text('filename,caption\na.jpg,"A cat, sitting"\nb.jpg,"two\nlines"\n', encoding="utf-8")
    records, _ = _read([p])
    assert records == [("a.jpg", "A cat, sitting"), ("b.jpg", "two\nlines")]


def test_csv_custom_columns_bom_and_tsv(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes("\ufeffid,url,text\n1,http://x,a dog\n".encode())
    assert _read([p], key_column="id", caption_column="text")[0] == [("1", "a dog")]
    t = tmp_path / "c.tsv"
    t.write_text("filename\tcaption\nk1\ta, comma\n")
    assert _read([t])[0] == [("k1", "a, comma")]


def test_jsonl(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"key": 7, "text": "a boat"}\n\n{"key": "b", "text": null}\n')
    assert _read([p], key_column="key", caption_column="text")[0] == [("7", "a boat"), ("b", "")]


def test_tar_shards_with_brace_expansion(tmp_path):
    write_shard(tmp_path / "00000.tar", [("000000000", "a red bus"), ("000000001", "a cat")])
    write_shard(
        tmp_path / "00001.tar", [("000010000", "a tall tree")], with_json_only={"000010000"}
    )
    records, stream = _read([tmp_path / "{00000..00001}.tar"])
    assert records == [
        ("000000000", "a red bus"),
        ("000000001", "a cat"),
        ("000010000", "a tall tree"),
    ]
    assert stream.bytes_read == stream.total_bytes
    assert stream.warnings == []


@pytest.mark.parametrize("cut", ["mid_member", "member_boundary"])
def test_truncated_tar_keeps_what_was_read_and_warns(tmp_path, cut):
    full = tmp_path / "full.tar"
    write_shard(full, [(f"{i:09d}", f"caption {i}") for i in range(20)])
    data = full.read_bytes()
    with tarfile.open(full) as tar:
        members = tar.getmembers()
    tenth = members[30]  # the first member of sample 10
    end = tenth.offset if cut == "member_boundary" else tenth.offset_data + 5
    broken = tmp_path / "00000.tar"
    broken.write_bytes(data[:end])
    records, stream = _read([broken])
    assert [k for k, _ in records] == [f"{i:09d}" for i in range(10)]
    assert stream.damaged_shards == 1
    assert "truncated tar shard" in stream.warnings[0] and "00000.tar" in stream.warnings[0]


def test_not_a_tar_file(tmp_path):
    p = tmp_path / "x.tar"
    p.write_text("hello")
    with pytest.raises(TagparseError, match="not a tar file"):
        _read([p])


def test_long_caption_is_truncated_with_warning(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("filename,caption\nlong.jpg," + "word " * 20_000 + "\nok.jpg,fine\n")
    records, stream = _read([p])
    assert len(records[0][1]) == MAX_CAPTION_CHARS and records[1] == ("ok.jpg", "fine")
    assert stream.truncated_captions == 1
    assert "long.jpg" in stream.warnings[0] and "truncated" in stream.warnings[0]


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "filename,text\na.jpg,cat\n",
            r"no column 'caption' \(columns: filename, text\); pass --caption-column",
        ),
        ("filename,caption\na.jpg,cat\nb.jpg,dog,extra\n", r"line 3: malformed CSV row \(3 fields"),
        ('filename,caption\na.jpg,"unterminated\n', r"malformed CSV"),
    ],
)
def test_bad_csv_is_reported_with_file_and_line(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(TagparseError, match=message) as e:
        _read([p])
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_non_utf8_names_file_and_line(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"filename,caption\na.jpg,a cat\nb.jpg,caf\xe9 terrace\n")
    with pytest.raises(TagparseError, match=r"latin.csv: line 3: not UTF-8 \(byte 0xe9"):
        _read([p])


def test_missing_and_unknown_inputs(tmp_path):
    with pytest.raises(TagparseError, match="no such input file"):
        _read([tmp_path / "absent.csv"])
    with pytest.raises(TagparseError, match="is a directory"):
        _read([tmp_path])
    (tmp_path / "c.parquet").write_text("x")
    with pytest.raises(TagparseError, match="pass --format"):
        _read([tmp_path / "c.parquet"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_input(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("filename,caption\n")
    p.chmod(0)
    with pytest.raises(TagparseError, match="cannot read"):
        _read([p])


def test_reading_streams_instead_of_loading_the_file(tmp_path):
    p = tmp_path / "big.csv"
    with open(p, "w") as f:
        f.write("filename,caption\n")
        f.writelines(
            f"{i:08d}.jpg,a photo of a red car parked next to a tall tree number {i}\n"
            for i in range(60_000)
        )
    size = p.stat().st_size
    tracemalloc.start()
    n = sum(1 for _ in InputStream([str(p)]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 60_000
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte file"
