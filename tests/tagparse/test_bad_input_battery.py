"""Issue 12, tagparse: bad inputs through the real `tagparse` CLI end in one `error:` line (exit 2,
no traceback) that names the file/row/key, and leave every tags.db exactly as it was — same rows
per table, same content, `integrity_check` ok — and no new empty tags.db behind.

A parametrized group runs its first case as a real subprocess of the console script and the
others in-process through the same click command (`tagparse_cli`): the outcome of these
validation cases does not depend on the process, and an interpreter start per case was most of
the file's time."""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess

import pytest
from cli_checks import assert_user_error, cli_path, db_snapshot, in_process, run_cli
from tagsdb_factory import make_tagsdb, wordsplit_cli, write_captions


@pytest.fixture
def db(tmp_path):
    return make_tagsdb(tmp_path / "tags.db")


def tagparse_cli(request: pytest.FixtureRequest, *args) -> subprocess.CompletedProcess:
    """`tagparse args`: a real subprocess for a test's first (or only) parameter set, in-process
    (`cli_checks.in_process`) for the others."""
    callspec = getattr(request.node, "callspec", None)
    first = callspec is None or not any(callspec.indices.values())
    return (run_cli if first else in_process)(["tagparse", *args])


def assert_unchanged(db_path, before):
    after = db_snapshot(db_path)
    assert after == before
    assert after["integrity_check"] == "ok"


def tag_files(tmp_path, labels: dict, tags=("cat", "dog", "bird")):
    tag_list = tmp_path / "object_list.csv"
    tag_list.write_text("index,tag\n" + "".join(f"{i},{t}\n" for i, t in enumerate(tags)))
    index = tmp_path / "object_index.json"
    index.write_text(json.dumps(labels))
    return tag_list, index


def import_tagalign(db_path, tag_list, index):
    args = ["import-tagalign", "--db", db_path, "--tags", tag_list, "--labels", index]
    return run_cli(["tagparse", *args, "--no-progress"])


# -- 1: a failed import-tagalign loses nothing -------------------------------------------------


def test_import_with_an_index_out_of_range_keeps_the_old_vocabulary(db, tmp_path):
    before = db_snapshot(db)
    assert before["rows:vocab"] > 0 and before["rows:labels"] == 20
    labels = {f"img{i}.jpg": [i % 3] for i in range(500)}
    labels["img250.jpg"] = [0, 7]  # in the middle: earlier entries must not be written
    tag_list, index = tag_files(tmp_path, labels)
    proc = import_tagalign(db, tag_list, index)
    assert_user_error(proc, "object_index.json", "'img250.jpg'", "0..2")
    assert_unchanged(db, before)


def test_import_that_fails_creates_no_tags_db(tmp_path):
    tag_list, index = tag_files(tmp_path, {"a.jpg": [0], "b.jpg": "cat"})
    proc = import_tagalign(tmp_path / "new.db", tag_list, index)
    assert_user_error(proc, "'b.jpg'")
    assert db_snapshot(tmp_path / "new.db") == {}


def test_import_with_a_boolean_index_is_an_error(tmp_path):
    tag_list, index = tag_files(tmp_path, {"a.jpg": [True]})  # json `true` is not tag 1
    assert_user_error(import_tagalign(tmp_path / "new.db", tag_list, index), "'a.jpg'")


# -- 3: silent wrong results become errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--objects", "-3"], "--objects"),
        (["--objects", "0"], "--objects"),
        (["--min-count", "-1"], "--min-count"),
        (["--min-count", "0"], "--min-count"),
        (["--attributes", "-1"], "--attributes"),
        (["--object", "5"], "--object"),  # a typo of --objects
    ],
)
def test_vocab_refuses_out_of_range_sizes(request, db, flags, named):
    before = db_snapshot(db)
    assert_user_error(tagparse_cli(request, "vocab", "--db", db, *flags), named, "--help")
    assert_unchanged(db, before)


def test_vocab_with_no_attributes_is_allowed(db):
    proc = run_cli(["tagparse", "vocab", "--db", db, "--objects", "3", "--attributes", "0"])
    assert proc.returncode == 0, proc.stderr
    assert "3 objects, 0 attributes" in proc.stdout


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ("index,tag\n0,cat\n1,dog\n1,bird\n", ["line 4", "tag index 1", "line 3"]),
        ("tag\ncat\ndog\ncat\n", ["line 4", "'cat'", "line 2"]),
    ],
)
def test_import_refuses_a_repeated_tag_index_or_name(db, tmp_path, rows, named):
    before = db_snapshot(db)
    tag_list, index = tag_files(tmp_path, {"a.jpg": [0]})
    tag_list.write_text(rows)
    assert_user_error(import_tagalign(db, tag_list, index), "object_list.csv", *named)
    assert_unchanged(db, before)


@pytest.mark.parametrize(
    ("caption", "kind"),
    [("5", "number"), ("[1, 2]", "array"), ('{"en": "a cat"}', "object"), ("true", "boolean")],
)
def test_jsonl_caption_that_is_not_a_string(request, db, tmp_path, caption, kind):
    before = db_snapshot(db)
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(f'{{"filename": "a.jpg", "caption": {caption}}}\n')
    proc = tagparse_cli(request, "run", "--backend", "nltk", "--input", jsonl, "--db", db)
    assert_user_error(proc, "c.jsonl: line 1", "'caption'", kind, "JSON strings")
    assert_unchanged(db, before)


def test_jsonl_key_that_is_a_list(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"filename": ["a"], "caption": "a cat"}\n')
    new = tmp_path / "new.db"
    proc = run_cli(["tagparse", "run", "--backend", "nltk", "--input", jsonl, "--db", new])
    assert_user_error(proc, "c.jsonl: line 1", "'filename'", "array")
    assert db_snapshot(new) == {}  # 11: nothing left behind


@pytest.mark.parametrize(
    "graph", ["cat on a mat", "( cat ) , dog", "( cat , is , black ) )", "  "], ids=repr
)
def test_score_refuses_an_unparseable_gold_scene_graph(request, db, tmp_path, graph):
    gold = tmp_path / "gold.csv"
    gold.write_text(
        f'caption,scene_graph\na red car number 1 near a tall tree,"( car )"\nx,"{graph}"\n'
    )
    proc = tagparse_cli(request, "score", "--gold", gold, "--db", db)
    assert_user_error(proc, "gold.csv: line 3", "scene_graph")


# -- 10: tracebacks for user mistakes ------------------------------------------------------------


def test_export_jsonl_to_a_directory(db, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(["tagparse", "export", "--db", db, "--format", "jsonl", "-o", out])
    assert_user_error(proc, str(out), "is a directory")
    assert list(out.iterdir()) == []


def test_export_tagalign_to_an_existing_file(db, tmp_path):
    out = tmp_path / "taken.txt"
    out.write_text("keep me")
    proc = run_cli(["tagparse", "export", "--db", db, "--format", "tagalign", "-o", out])
    assert_user_error(proc, str(out), "is a file", "folder")
    assert out.read_text() == "keep me"


def test_export_jsonl_replaces_an_existing_file_whole(db, tmp_path):
    out = tmp_path / "tags.jsonl"
    out.write_text("old\n" * 1000)
    proc = run_cli(["tagparse", "export", "--db", db, "--format", "jsonl", "-o", out])
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 20
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("value", "command"),
    [
        ("one", ["stats", "--db", "{db}"]),
        ("1.0", ["stats", "--db", "{db}"]),
        ("", ["stats", "--db", "{db}"]),
        ("one", ["vocab", "--db", "{db}"]),
        ("one", ["export", "--db", "{db}", "--format", "jsonl", "-o", "-"]),
        ("one", ["merge", "{db}", "-o", "{other}"]),
        ("one", ["merge", "{other_src}", "-o", "{db}"]),
    ],
    ids=lambda c: repr(c) if isinstance(c, str) else " ".join(c[:2]),
)
def test_format_version_that_is_not_an_integer(request, db, tmp_path, value, command):
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (value,))
    con.commit()
    con.close()
    before = db_snapshot(db)
    other_src = make_tagsdb(tmp_path / "src" / "tags.db", n=3)
    names = {"db": db, "other": tmp_path / "merged.db", "other_src": other_src}
    proc = tagparse_cli(request, *(a.format(**names) for a in command))
    assert_user_error(proc, str(db), "'format_version'", repr(value), "restore")
    assert_unchanged(db, before)
    assert db_snapshot(tmp_path / "merged.db") == {}


# -- 11: failed commands leave no empty tags.db; score's hint is a working command -----------------


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--backend", "nltk", "--input", "{bad_csv}", "--db", "{new}"],
        ["run", "--backend", "no-such-backend", "--input", "{good_csv}", "--db", "{new}"],
        ["run", "--backend", "nltk", "--input", "{good_csv}", "--db", "{new}", "--shard", "4/2"],
        ["vocab", "--db", "{new}"],
        ["stats", "--db", "{new}"],
        ["merge", "{bad_csv}", "-o", "{new}"],
        ["score", "--gold", "{bad_csv}", "--db", "{new}"],
        ["review", "--db", "{new}", "--report"],
    ],
    ids=lambda c: " ".join(c[:3]),
)
def test_failed_command_leaves_no_tags_db(request, tmp_path, command):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("filename,text\na.jpg,a cat\n")  # no caption column
    good_csv = write_captions(tmp_path / "good.csv", 3)
    new = tmp_path / "sub" / "new.db"
    names = {"bad_csv": bad_csv, "good_csv": good_csv, "new": new}
    proc = tagparse_cli(request, *(a.format(**names) for a in command))
    assert_user_error(proc)
    assert db_snapshot(new) == {}
    assert not any(p.name.startswith("new.db") for p in tmp_path.rglob("*"))


def test_score_hint_is_a_command_that_works(db, tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text('caption,scene_graph\na brown dog,"( dog ) , ( dog , is , brown )"\n')
    line = assert_user_error(
        run_cli(["tagparse", "score", "--gold", gold, "--db", db]), "tagparse run"
    )
    hint = shlex.split(line.split("`")[1])
    assert hint[:2] == ["tagparse", "run"]
    argv = wordsplit_cli(*hint[1:], "--no-progress")
    rerun = subprocess.run(argv, capture_output=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    scored = run_cli(["tagparse", "score", "--gold", gold, "--db", db, "--json"])
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["objects"]["recall"] == 1.0


# -- own cases: what a careful user still gets wrong -----------------------------------------------


def test_caption_file_passed_as_db(tmp_path):
    """`--db captions.csv --input tags.db`: swapped arguments must not touch the CSV."""
    csv = write_captions(tmp_path / "captions.csv", 3)
    text = csv.read_text()
    proc = run_cli(["tagparse", "run", "--backend", "nltk", "--input", csv, "--db", csv])
    assert_user_error(proc, "captions.csv", "not an SQLite file")
    assert csv.read_text() == text


def test_merge_into_another_programs_sqlite_file(db, tmp_path):
    other = tmp_path / "firefox.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE moz_places(url)")
    con.commit()
    con.close()
    before = db_snapshot(other)
    assert_user_error(run_cli(["tagparse", "merge", db, "-o", other]), "firefox.sqlite", "tags.db")
    assert db_snapshot(other) == before


@pytest.mark.parametrize(
    "flags",
    [
        ["--workers", "0"],
        ["--batch-size", "0"],
        ["--limit", "-1"],
        ["--timeout", "0"],
        ["--concurrency", "0"],
        ["--max-tokens", "0"],
        ["--temperature", "-0.5"],
        ["--shard", "1/1"],
    ],
    ids=lambda f: " ".join(f),
)
def test_run_refuses_out_of_range_numbers(request, db, tmp_path, flags):
    before = db_snapshot(db)
    csv = write_captions(tmp_path / "c.csv", 3)
    proc = tagparse_cli(request, "run", "--backend", "nltk", "--input", csv, "--db", db, *flags)
    assert_user_error(proc, flags[0])
    assert_unchanged(db, before)


def test_stats_top_negative(db):
    assert_user_error(run_cli(["tagparse", "stats", "--db", db, "--top", "-1"]), "--top")


def test_export_to_a_closed_pipe_is_quiet(tmp_path):
    """`tagparse export -o - | head -1`: the reader leaving is not a crash."""
    db = make_tagsdb(tmp_path / "big.db", n=5000)  # more than a pipe buffer holds
    tagparse = shlex.quote(cli_path("tagparse"))
    script = f"{tagparse} export --db {shlex.quote(str(db))} --format jsonl -o - | head -1"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert "Traceback" not in proc.stderr and proc.stderr == "", proc.stderr
    assert json.loads(proc.stdout)["key"]


def test_db_that_is_a_directory(tmp_path):
    assert_user_error(run_cli(["tagparse", "stats", "--db", tmp_path]), "is a directory")


# -- issue 24 part 3: the vLLM launcher flags, huge counts, NaN/inf -------------------------------


@pytest.mark.parametrize(
    "value, named",
    [
        ("", "--vllm-python is empty"),
        ("{tmp}/nope", "no such file"),
        ("{tmp}", "a folder without bin/python"),
        ("{tmp}/notes.txt", "cannot run"),
        ("{tmp}/notes.txt/python", "no such file"),
    ],
    ids=["empty", "missing", "folder-not-a-venv", "not-executable", "below-a-file"],
)
def test_vllm_python_that_is_not_a_python(request, tmp_path, value, named):
    (tmp_path / "notes.txt").write_text("not a python\n")
    write_captions(tmp_path / "c.csv", 2)
    args = ["run", "--backend", "vllm", "--model", "m", "--input", tmp_path / "c.csv"]
    args += ["--db", tmp_path / "t.db", "--vllm-python", value.format(tmp=tmp_path)]
    proc = tagparse_cli(request, *args)
    assert_user_error(proc, named)
    assert db_snapshot(tmp_path / "t.db") == {}


@pytest.mark.parametrize(
    "flags",
    [
        ["--data-parallel-size", "0"],
        ["--data-parallel-size", str(2**63)],
        ["--tensor-parallel-size", "nan"],
        ["--concurrency", str(2**63)],
        ["--chunk-size", str(2**63)],
        ["--workers", str(2**63)],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--temperature", "inf"],
        ["--max-tokens", str(2**63)],
    ],
    ids=lambda f: " ".join(f) if isinstance(f, list) else f,
)
def test_run_refuses_huge_and_non_finite_numbers_in_process(tmp_path, flags):
    """Parse-time checks, in-process (`--timeout nan` passed the old `x>0` check)."""
    from cli_checks import assert_runner_error
    from click.testing import CliRunner
    from tagparse.cli import main

    args = ["run", "--backend", "vllm", "--input", "c.csv", "--db", str(tmp_path / "t.db")]
    result = CliRunner().invoke(main, [*args, *flags], prog_name="tagparse")
    assert_runner_error(result, flags[0], "see `tagparse run --help`")
    assert db_snapshot(tmp_path / "t.db") == {}


@pytest.mark.parametrize(
    ("backend", "flags", "named"),
    [
        ("spacy", ["--temperature", "0.7"], "--temperature"),
        ("nltk", ["--base-url", "http://127.0.0.1:1/v1", "--api-key-env", "K"], "--api-key-env"),
        ("spacy", ["--data-parallel-size", "2"], "--data-parallel-size"),
        ("openai", ["--vllm-python", "/usr/bin/python3"], "--vllm-python"),
        ("vllm", ["--base-url", "http://127.0.0.1:1/v1"], "--base-url"),
        ("nltk", ["--prompt", "tags-v1"], "--prompt"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_run_refuses_another_backends_flags(tmp_path, backend, flags, named):
    """A flag the chosen backend does not take changed nothing and used to pass without a word;
    it is refused before anything is read or written (issue 20, item 3)."""
    from cli_checks import assert_runner_error
    from click.testing import CliRunner
    from tagparse.cli import main

    write_captions(tmp_path / "c.csv", 2)
    args = ["run", "--backend", backend, "--input", str(tmp_path / "c.csv")]
    args += ["--db", str(tmp_path / "t.db"), "--no-progress", *flags]
    result = CliRunner().invoke(main, args, prog_name="tagparse")
    line = assert_runner_error(result, named, f"not an option of --backend {backend}", "--model")
    assert "(--backend " in line, line  # the backend(s) the flag belongs to
    assert ("drop it" in line) == (len(flags) == 2), line
    assert db_snapshot(tmp_path / "t.db") == {}


def test_run_refuses_another_backends_flag_as_a_real_command(tmp_path):
    write_captions(tmp_path / "c.csv", 2)
    args = ["tagparse", "run", "--backend", "spacy", "--input", tmp_path / "c.csv"]
    proc = run_cli([*args, "--db", tmp_path / "t.db", "--max-tokens", "64"])
    assert_user_error(proc, "--max-tokens: not an option of --backend spacy")
    assert db_snapshot(tmp_path / "t.db") == {}


def test_run_parse_refuses_another_backends_option_through_the_api(tmp_path):
    from tagparse.errors import TagparseError
    from tagparse.pipeline import run_parse

    write_captions(tmp_path / "c.csv", 2)
    with pytest.raises(TagparseError, match="--temperature: not an option of --backend nltk"):
        run_parse(tmp_path / "t.db", [str(tmp_path / "c.csv")], "nltk", {"temperature": 0.5})
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize("flags", [["--seed", "-1"], ["--seed", str(2**63)], ["--target", "0"]])
def test_review_seed_and_target_are_range_checked(request, db, flags):
    before = db_snapshot(db)
    proc = tagparse_cli(request, "review", "--db", db, "--report", *flags)
    assert_user_error(proc, flags[0], "range")
    assert_unchanged(db, before)
