"""`--report` figures against precision and recall worked out by hand on a fixture's verdicts."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.db.verdicts import VerdictItem, VerdictStore
from tagparse.review.stats import wilson

# Latest verdicts per sample; the fixture parses are in conftest.SAMPLES.
VERDICTS = {
    "img001": [
        ("object", "dog", "accept"),
        ("object", "frisbee", "accept"),
        ("object", "park", "reject"),
        ("attribute", "brown", "accept"),
        ("attribute", "red", "reject"),
        ("object", "leash", "add"),
    ],
    "img002": [
        ("object", "child", "accept"),
        ("object", "football", "accept"),
        ("object", "ball", "reject"),
        ("object", "grass", "accept"),
        ("attribute", "green", "accept"),
    ],
    "img006": [
        ("object", "car", "reject"),
        ("object", "car", "accept"),  # the later verdict wins
        ("object", "tree", "accept"),
        ("attribute", "red", "accept"),
    ],
}


@pytest.fixture
def reviewed_db(tags_db):
    store = VerdictStore(tags_db)
    ids = dict(store.con.execute("SELECT key, id FROM samples"))
    for key, items in VERDICTS.items():
        for kind, tag, verdict in items:
            store.record(ids[key], [VerdictItem(kind, tag, verdict)])
    store.close()
    return tags_db


def test_wilson_matches_the_textbook_interval():
    lo, hi = wilson(
        7, 8
    )  # 7/8: centre (p + z²/2n)/(1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n)
    assert (round(lo, 4), round(hi, 4)) == (0.5291, 0.9776)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(5, 5)[1] == pytest.approx(1.0)


def test_report_json_matches_hand_counts(reviewed_db):
    out = CliRunner().invoke(
        main, ["review", "--db", str(reviewed_db), "--report", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    rows = {(r["parser"].split(":")[0], r["kind"]): r for r in report["scores"]}
    # spaCy objects: img001 dog✓ frisbee✓ park✗, img002 child✓ football✓ grass✓,
    # img006 car✓ tree✓ -> 7/8
    spacy_obj = rows[("spacy", "object")]
    assert (spacy_obj["tp"], spacy_obj["judged"]) == (7, 8)
    assert spacy_obj["precision"] == pytest.approx(7 / 8)
    assert (round(spacy_obj["precision_lo"], 4), round(spacy_obj["precision_hi"], 4)) == (
        0.5291,
        0.9776,
    )
    # confirmed objects: dog frisbee leash | child football grass | car tree = 8;
    # spaCy found 7 (not leash)
    assert (spacy_obj["found"], spacy_obj["confirmed"]) == (7, 8)
    # LLM objects: dog✓ frisbee✓ | child✓ ball✗ grass✓ | car✓ tree✓ -> 6/7;
    # found 6 of 8 (no leash, football)
    llm_obj = rows[("openai", "object")]
    assert (llm_obj["tp"], llm_obj["judged"], llm_obj["found"], llm_obj["confirmed"]) == (
        6,
        7,
        6,
        8,
    )
    # attributes (both parsers): brown✓ red✗ | green✓ | red✓ -> 3/4
    assert (rows[("spacy", "attribute")]["tp"], rows[("spacy", "attribute")]["judged"]) == (3, 4)
    assert rows[("spacy", "all")]["precision"] == pytest.approx(10 / 12)
    assert rows[("spacy", "all")]["samples"] == 3
    assert report["most_rejected"][:3] == [
        {"kind": "attribute", "tag": "red", "rejected": 1, "judged": 2},
        {"kind": "object", "tag": "ball", "rejected": 1, "judged": 1},
        {"kind": "object", "tag": "park", "rejected": 1, "judged": 1},
    ]
    assert len(report["verdicts"]) == 15
    assert [v["latest"] for v in report["verdicts"] if v["tag"] == "car"] == [False, True]


def test_report_table_csv_and_export(reviewed_db, tmp_path):
    runner = CliRunner()
    table = runner.invoke(main, ["review", "--db", str(reviewed_db), "--report"])
    assert table.exit_code == 0
    assert (
        " 87.5% [ 52.9,  97.8]" in table.output and "park (object): rejected 1 of 1" in table.output
    )
    export = tmp_path / "verdicts.csv"
    out = runner.invoke(
        main,
        [
            "review",
            "--db",
            str(reviewed_db),
            "--report",
            "--format",
            "csv",
            "--parser",
            "spacy",
            "--export",
            str(export),
        ],
    )
    assert out.exit_code == 0
    rows = list(csv.DictReader(out.stdout.splitlines()))
    assert [(r["kind"], r["tp"], r["judged"]) for r in rows] == [
        ("object", "7", "8"),
        ("attribute", "3", "4"),
        ("all", "10", "12"),
    ]
    exported = list(csv.DictReader(export.open()))
    assert (
        len(exported) == 15
        and exported[0]["key"] == "img001"
        and exported[0]["verdict"] == "accept"
    )


def test_review_of_a_missing_db_is_a_one_line_error(tmp_path):
    out = CliRunner().invoke(main, ["review", "--db", str(tmp_path / "nope.db"), "--report"])
    assert out.exit_code == 2
    db = tmp_path / "nope.db"
    assert out.output.strip().splitlines() == [
        f"error: {db}: no such tags.db; run `tagparse run --db {db}` first"
    ]
