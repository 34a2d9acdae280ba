"""`tagparse score`: the FACTUAL gold-reading rule, P/R/F1 by hand, the CLI on a real tags.db."""

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tagparse.cli import main
from tagparse.db import TagsDB, caption_hash
from tagparse.errors import TagparseError
from tagparse.parsing import ParseResult, ParserSpec
from tagparse.score import PRF, GoldRow, gold_tags, read_gold, score_db, score_predictions

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "factual_sample.csv"


def test_gold_rule_on_hand_written_scene_graphs():
    objects, attributes = gold_tags(
        "( Women , sit on , bench ) , ( bench , is , Wooden ) , ( people , is , 2 ) , "
        "( dogs , is , three ) , ( traffic lights ) , ( tennis player , hold , rackets )"
    )
    # subjects and non-`is` objects are objects; 1-tuples too; last word singularized, lowercased
    assert objects == {
        "woman",
        "bench",
        "people",
        "dog",
        "traffic light",
        "tennis player",
        "racket",
    }
    # `is` objects are attributes, except numbers (digits or number words)
    assert attributes == {"wooden"}


def test_is_relation_is_case_insensitive_and_only_exact():
    objects, attributes = gold_tags("( car , IS , red ) , ( car , is on , road )")
    assert objects == {"car", "road"}
    assert attributes == {"red"}


def test_malformed_tuple_is_reported():
    with pytest.raises(ValueError, match="2 parts"):
        gold_tags("( man , ride )")


def test_prf_by_hand():
    gold = [
        GoldRow("c1", frozenset({"man", "horse"}), frozenset({"brown"})),
        GoldRow("c2", frozenset({"cat"}), frozenset({"black", "small"})),
        GoldRow("c3", frozenset({"tree"}), frozenset()),
    ]
    preds = [
        (["Men", "horse", "field"], ["brown"]),  # objects tp 2 of 3 (men -> man), attr 1/1
        (["cat"], ["black", "fluffy"]),  # tp 1/1, attr 1/2
        None,
    ]  # no parse: nothing predicted, gold still counted
    objects, attributes = score_predictions(gold, preds)
    assert (objects.tp, objects.n_pred, objects.n_gold) == (3, 4, 4)
    assert objects.precision == pytest.approx(3 / 4) and objects.recall == pytest.approx(3 / 4)
    assert (attributes.tp, attributes.n_pred, attributes.n_gold) == (2, 3, 3)
    assert attributes.f1 == pytest.approx(2 / 3)
    assert PRF().f1 == 0.0


def test_read_gold_sample_and_errors(tmp_path):
    rows = read_gold(SAMPLE)
    assert len(rows) == 54
    by_caption = {r.caption: r for r in rows}
    girl = by_caption["young girl sitting on a bed"]
    assert girl.objects == {"girl", "bed"} and girl.attributes == {"young"}
    assert any(not r.attributes and len(r.objects) == 1 for r in rows)  # a 1-tuple row

    no_col = tmp_path / "g.csv"
    no_col.write_text("caption,graph\nx,( a )\n", encoding="utf-8")
    with pytest.raises(TagparseError, match="missing column.*scene_graph"):
        read_gold(no_col)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        'caption,scene_graph\nok,"( a , b , c )"\nbroken,"( a , b )"\n', encoding="utf-8"
    )
    with pytest.raises(TagparseError, match=r"bad.csv: line 3: bad scene_graph"):
        read_gold(bad)
    with pytest.raises(TagparseError, match="no such gold file"):
        read_gold(tmp_path / "missing.csv")


def _db_with_parses(path, parses: dict[str, tuple[list, list]], status="ok") -> TagsDB:
    db = TagsDB.open(path, create=True)
    db.add_samples([(f"k{i}", c) for i, c in enumerate(parses)])
    pid = db.register_parser(ParserSpec(backend="hand", normalizer_version="1+test"))
    db.write_parses(
        pid, [(caption_hash(c), ParseResult(o, a, status=status)) for c, (o, a) in parses.items()]
    )
    return db


def test_score_db_matches_rows_by_caption(tmp_path):
    gold = tmp_path / "gold.csv"
    with gold.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "region_id", "caption", "scene_graph"])
        w.writerow([1, 1, "a white dog on grass", "( dog , on , grass ) , ( dog , is , white )"])
        w.writerow([2, 2, "two cats", "( cats , is , 2 )"])
        w.writerow([3, 3, "never parsed", "( moon )"])
    db_path = tmp_path / "tags.db"
    _db_with_parses(
        db_path, {"a white dog on grass": (["dog", "grass"], ["white"]), "two cats": (["cat"], [])}
    )
    report = score_db(gold, db_path)
    assert report.rows == 3 and report.unparsed == 1
    assert (report.objects.tp, report.objects.n_pred, report.objects.n_gold) == (3, 3, 4)
    assert (report.attributes.tp, report.attributes.n_pred, report.attributes.n_gold) == (1, 1, 1)

    result = CliRunner().invoke(
        main, ["score", "--gold", str(gold), "--db", str(db_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["objects"]["recall"] == pytest.approx(3 / 4) and data["unparsed"] == 1
    table = CliRunner().invoke(main, ["score", "--gold", str(gold), "--db", str(db_path)]).output
    assert "objects" in table and "0.750" in table and "1 without a parse" in table


def test_score_cli_errors_are_one_line(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text('caption,scene_graph\nzebra,"( zebra )"\n', encoding="utf-8")
    db_path = tmp_path / "tags.db"
    _db_with_parses(db_path, {"something else": (["x"], [])})
    runner = CliRunner()
    none = runner.invoke(main, ["score", "--gold", str(gold), "--db", str(db_path)])
    assert none.exit_code == 2 and "none of the 1 gold captions has a parse" in none.output
    missing = runner.invoke(
        main, ["score", "--gold", str(tmp_path / "x.csv"), "--db", str(db_path)]
    )
    assert missing.exit_code == 2 and "no such gold file" in missing.output
    wrong = runner.invoke(
        main, ["score", "--gold", str(gold), "--db", str(db_path), "--parser", "zzz"]
    )
    assert wrong.exit_code == 2 and "no parser matches" in wrong.output
    assert "Traceback" not in none.output + missing.output + wrong.output
