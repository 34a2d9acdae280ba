"""Export (JSONL, TagAlign files) and import of TagAlign's reference tag files, round trip."""

import json
from pathlib import Path

import pytest
from tagparse.db import TagsDB
from tagparse.errors import TagparseError
from tagparse.export import export_jsonl, export_tagalign
from tagparse.jsonstream import iter_json_object
from tagparse.pipeline import run_parse
from tagparse.reader import load_labels
from tagparse.tagalign_import import IMPORT_BACKEND, import_tagalign, read_tag_list
from tagparse.vocab import build_vocab
from wordsplit_backend import BACKEND, wordsplit  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("wordsplit")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "captions.csv"


@pytest.fixture
def parsed_db(tmp_path):
    path = tmp_path / "tags.db"
    run_parse(path, [str(EXAMPLE)], BACKEND, {}, progress=False)
    return path


def label_sets(path):
    labels = load_labels(path)
    return {
        key: {labels.vocab["object"][j] for j in labels.labels["object"].row(i)}
        for i, key in enumerate(labels.keys)
    }


def test_export_jsonl(parsed_db, tmp_path):
    n = export_jsonl(TagsDB.open(parsed_db), str(tmp_path / "out.jsonl"))
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert n == len(lines) == 62
    first = lines[0]
    assert first["key"] == "img_0001.jpg" and first["status"] == "ok"
    assert "kitten" in first["objects"] and "brown" in first["attributes"]


def test_tagalign_export_then_import_round_trip(parsed_db, tmp_path):
    build_vocab(TagsDB.open(parsed_db), 40, 10, progress=False)
    n_tags, n_samples = export_tagalign(TagsDB.open(parsed_db), tmp_path / "ta")
    assert (n_tags, n_samples) == (40, 62)
    summary = import_tagalign(
        tmp_path / "imported.db",
        tmp_path / "ta" / "object_list.csv",
        tmp_path / "ta" / "object_index.json",
        captions=str(EXAMPLE),
        progress=False,
    )
    assert (summary.tags, summary.samples, summary.parse_conflicts) == (40, 62, 0)
    assert label_sets(tmp_path / "imported.db") == label_sets(parsed_db)
    original, imported = load_labels(parsed_db), load_labels(tmp_path / "imported.db")
    assert imported.vocab["object"] == original.vocab["object"]  # TagAlign's indices are kept
    db = TagsDB.open(tmp_path / "imported.db")
    assert db.resolve_parser(IMPORT_BACKEND).backend == IMPORT_BACKEND
    con = db.raw()
    caption = con.execute("SELECT caption FROM samples WHERE key='img_0001.jpg'").fetchone()[0]
    con.close()
    assert caption.startswith("A small kitten")


def test_import_without_captions_and_with_basename_keys(tmp_path):
    (tmp_path / "object_list.csv").write_text("object\ndog\ncat\nbench\n")
    (tmp_path / "index.json").write_text(
        json.dumps(
            {
                "http://img.example/a/1.jpg": [0, 2],
                "http://img.example/b/2.jpg": [1],
                "http://img.example/3.jpg": [0, 2],
            }
        )
    )
    s = import_tagalign(
        tmp_path / "t.db",
        tmp_path / "object_list.csv",
        tmp_path / "index.json",
        basename=True,
        progress=False,
    )
    assert (s.samples, s.new_samples) == (3, 3)
    assert label_sets(tmp_path / "t.db") == {
        "1.jpg": {"dog", "bench"},
        "2.jpg": {"cat"},
        "3.jpg": {"dog", "bench"},
    }
    con = TagsDB.open(tmp_path / "t.db").raw()
    assert (
        con.execute("SELECT COUNT(*) FROM parses").fetchone()[0] == 2
    )  # equal tag lists share a parse
    assert con.execute("SELECT tag, count FROM vocab ORDER BY idx").fetchall() == [
        ("dog", 2),
        ("cat", 1),
        ("bench", 2),
    ]
    con.close()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("dog\ncat\n", ["dog", "cat"]),
        ("object\ndog\ncat\n", ["dog", "cat"]),
        ("index,tag\n1,cat\n0,dog\n", ["dog", "cat"]),
        (",0\n0,dog\n1,cat\n", ["dog", "cat"]),
        ("0,dog\n1,cat\n", ["dog", "cat"]),
    ],
)
def test_tag_list_layouts(tmp_path, text, expected):
    (tmp_path / "l.csv").write_text(text)
    assert read_tag_list(tmp_path / "l.csv") == expected


def test_streaming_json_reader_matches_json_load(tmp_path):
    data = {f"img/{i:05d}.jpg": list(range(i % 7)) for i in range(500)}
    data['we"ird, key: {x}'] = [1]
    (tmp_path / "i.json").write_text(json.dumps(data, indent=1))
    assert dict(iter_json_object(tmp_path / "i.json", chunk_size=7)) == data
    (tmp_path / "e.json").write_text("{}")
    assert list(iter_json_object(tmp_path / "e.json")) == []


def test_import_errors(tmp_path):
    (tmp_path / "l.csv").write_text("dog\ncat\n")
    (tmp_path / "bad.json").write_text('{"a.jpg": [0, 5]}')
    with pytest.raises(TagparseError, match=r"'a.jpg': expected a list of tag indices in 0..1"):
        import_tagalign(
            tmp_path / "t.db", tmp_path / "l.csv", tmp_path / "bad.json", progress=False
        )
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(TagparseError, match="expected a JSON object"):
        import_tagalign(
            tmp_path / "t.db", tmp_path / "l.csv", tmp_path / "list.json", progress=False
        )
