"""Issue 24 part 3, tagalign-eval: the surfaces added after the first battery (classify,
retrieval, the dense baselines and protocols, the numeric flags) meet bad input: a typo, an
empty or damaged file, a wrong type, a huge value, NaN/inf, a file where a folder was meant (and
back), duplicate or empty keys and columns, unicode and invalid UTF-8.

Every case ends in exit code 2 and one `error:` line naming the file/key/column/flag. The pure
validation cases run in-process (`CliRunner`; everything is checked before a model loads, so no
model is needed); `test_real_entry_point_*` run the installed console script to prove the real
entry point prints the same one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_checks import assert_runner_error, assert_user_error, run_cli
from click.testing import CliRunner
from PIL import Image
from tagalign_eval.cli import main
from tagalign_eval.imagefolder import read_class_mapping
from tagalign_eval.pairs import read_pairs

HUGE = str(2**63)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """An image folder (cat/, dog/, one PNG each) and the files the cases point at."""
    root = tmp_path_factory.mktemp("data")
    for folder in ("cat", "dog"):
        (root / "images" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8), (200, 30, 30)).save(root / "images" / folder / "a.png")
    (root / "afile").write_text("not a folder\n")
    return root


def eval_in_process(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="tagalign-eval")


# --- classify --class-map FOLDER -> NAME maps -----------------------------------------------------

MAPPINGS = [
    # (file name, content, what the error must name)
    (
        "dup.json",
        '{"cat": "cat", "dog": "dog", "cat": "kitten"}',
        ["dup.json", "key 'cat' is given twice", "'cat' and 'kitten'"],
    ),
    (
        "dup.tsv",
        "cat\tcat\ndog\tdog\ncat\tkitten\n",
        ["dup.tsv", "folder 'cat' is given twice", "line 1: 'cat'", "line 3: 'kitten'"],
    ),
    (
        "samename.json",
        '{"cat": "pet", "dog": "pet"}',
        ["samename.json", "folder 'cat'", "folder 'dog'", "both name the class 'pet'"],
    ),
    (
        "samename.tsv",
        "cat pet\ndog pet\n",
        ["samename.tsv", "line 1", "line 2", "both name the class 'pet'"],
    ),
    ("emptykey.json", '{"": "cat", "dog": "dog"}', ["emptykey.json", "an empty key"]),
    ("emptyname.json", '{"cat": " ", "dog": "dog"}', ["emptyname.json", "key 'cat'", "' '"]),
    ("number.json", '{"cat": 3, "dog": "dog"}', ["number.json", "key 'cat'", "3"]),
    ("nested.json", '{"cat": {"a": 1, "a": 2}}', ["nested.json", "key 'a' is given twice"]),
    ("nofolder.tsv", "\tcat\ndog\tdog\n", ["nofolder.tsv", "line 1", "has no folder"]),
    ("noname.tsv", "cat\ndog\tdog\n", ["noname.tsv", "line 1", "has no class name"]),
    ("array.json", '["cat", "dog"]', ["array.json", "must be a JSON object"]),
    ("broken.json", '{"cat": "cat",', ["broken.json", "not valid JSON"]),
    ("empty.json", "", ["empty.json", "not valid JSON"]),
    ("unnamed.tsv", "cat\tcat\n", ["unnamed.tsv", "names no class for folder(s) dog"]),
]


@pytest.mark.parametrize("name, content, mentions", MAPPINGS, ids=[m[0] for m in MAPPINGS])
def test_bad_class_mapping_is_refused(data, tmp_path, name, content, mentions):
    mapping = tmp_path / name
    mapping.write_text(content, encoding="utf-8")
    result = eval_in_process(
        "classify", data / "images", "--clip-model", "x", "--class-map", mapping
    )
    assert_runner_error(result, "--class-map", *mentions)


def test_class_mapping_that_is_not_utf8_or_a_folder(data, tmp_path):
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("cat\tchat noir \xe9\n".encode("latin-1"))
    result = eval_in_process("classify", data / "images", "--clip-model", "x", "--class-map", latin)
    assert_runner_error(result, "latin.tsv", "cannot read it as UTF-8")
    result = eval_in_process(
        "classify", data / "images", "--clip-model", "x", "--class-map", tmp_path
    )
    assert_runner_error(result, str(tmp_path), "is a folder")
    below_a_file = data / "afile" / "map.json"
    result = eval_in_process(
        "classify", data / "images", "--clip-model", "x", "--class-map", below_a_file
    )
    assert_runner_error(result, str(below_a_file), "no such file")


def test_class_mapping_with_a_bom_and_unicode_names_is_read(tmp_path):
    """A BOM (Notepad, Excel) is not part of the first folder's name; unicode names pass."""
    tsv = tmp_path / "names.tsv"
    tsv.write_bytes("\ufeffn01\tchat noir é\nn02\t狗\n".encode())
    assert read_class_mapping(tsv) == {"n01": "chat noir é", "n02": "狗"}
    js = tmp_path / "names.json"
    js.write_bytes('\ufeff{"n01": "chat", "n02": "狗"}'.encode())
    assert read_class_mapping(js) == {"n01": "chat", "n02": "狗"}


@pytest.mark.parametrize(
    "root, mentions",
    [("afile", ["afile is a file"]), ("nope", ["nope: no such folder"])],
    ids=["root-is-a-file", "root-missing"],
)
def test_classify_root_that_is_not_a_folder(data, root, mentions):
    assert_runner_error(eval_in_process("classify", data / root, "--clip-model", "x"), *mentions)


@pytest.mark.parametrize(
    "content, mentions",
    [
        (b"", ["no templates"]),
        (b"\xff\xfe{}\n", ["cannot read it as UTF-8"]),
        (b"a photo of a {kind}\n", ["not a format string"]),
        (b"a photo\n", ["'a photo'", "not a format string"]),
    ],
    ids=["empty", "not-utf8", "named-field", "no-braces"],
)
def test_bad_templates_file(data, tmp_path, content, mentions):
    templates = tmp_path / "templates.txt"
    templates.write_bytes(content)
    result = eval_in_process(
        "classify", data / "images", "--clip-model", "x", "--template-file", templates
    )
    assert_runner_error(result, *mentions)


# --- retrieval pair files ----------------------------------------------------------------------

PAIRS = [
    # (file name, content, what the error must name)
    ("dupcol.csv", "image,caption,image\na.png,a cat,b.png\n", ["column 'image' is named twice"]),
    ("emptycol.csv", "image,,caption\na.png,x,a cat\n", ["column 2 has no name"]),
    ("trailing.csv", "image,caption,\na.png,a cat,\n", ["column 3 has no name"]),
    ("extra.csv", "image,caption\na.png,a dog, running\n", ["line 2", "more fields", "quote"]),
    ("fewer.csv", "image,caption\na.png\n", ["line 2", "fewer fields"]),
    ("nocol.csv", "file,text\na.png,a cat\n", ["no column(s) image, caption"]),
    ("empty.csv", "", ["no column(s) image, caption"]),
    ("headeronly.csv", "image,caption\n", ["no pairs"]),
    ("blankcaption.csv", "image,caption\na.png,  \n", ["line 2", "caption is empty"]),
    ("missingimage.csv", "image,caption\nnope.png,a cat\n", ["line 2", "nope.png does not exist"]),
    (
        "dupkey.jsonl",
        '{"image": "a.png", "image": "b.png", "caption": "x"}\n',
        ["line 1", "'image' is given twice"],
    ),
    ("list.jsonl", '["a.png", "a cat"]\n', ["line 1", 'needs the keys "image" and "caption"']),
    ("broken.jsonl", '{"image": "a.png", "caption": \n', ["line 1", "not valid JSON"]),
    ("numbercaption.jsonl", '{"image": "a.png", "caption": 7}\n', ["line 1", "not a string"]),
    ("pairs.txt", "image,caption\na.png,a cat\n", ["unknown pair file type"]),
]


@pytest.mark.parametrize("name, content, mentions", PAIRS, ids=[p[0] for p in PAIRS])
def test_bad_pair_file_is_refused(tmp_path, name, content, mentions):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    pairs = tmp_path / name
    pairs.write_text(content, encoding="utf-8")
    result = eval_in_process("retrieval", pairs, "--clip-model", "x")
    assert_runner_error(result, name, *mentions)


def test_pair_file_that_is_not_utf8_a_folder_or_missing(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("image,caption\na.png,caf\xe9\n".encode("latin-1"))
    assert_runner_error(
        eval_in_process("retrieval", latin, "--clip-model", "x"), "cannot read it as UTF-8"
    )
    assert_runner_error(eval_in_process("retrieval", tmp_path, "--clip-model", "x"), "is a folder")
    missing = tmp_path / "nope.jsonl"
    assert_runner_error(
        eval_in_process("retrieval", missing, "--clip-model", "x"), "no such pair file"
    )


def test_pair_csv_with_a_bom_and_unicode_is_read(tmp_path):
    """Excel writes a UTF-8 BOM before the header: it is not part of the column name `image`."""
    Image.new("RGB", (8, 8)).save(tmp_path / "狗.png")
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_bytes("\ufeffimage,caption\n狗.png,un chien é\n".encode())
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_bytes('\ufeff{"image": "狗.png", "caption": "a dog"}\n'.encode())
    pairs = read_pairs([csv_file, jsonl])
    assert pairs.images == ((tmp_path / "狗.png").resolve(),)
    assert pairs.captions == ("un chien é", "a dog") and pairs.caption_image == (0, 0)


# --- flags of classify / retrieval / the dense baselines and protocols ---------------------------

FLAGS = [
    (["classify", "{images}", "--clip-model", "x", "--batch-size", HUGE], "--batch-size"),
    (["classify", "{images}", "--clip-model", "x", "--batch-size", "0"], "--batch-size"),
    (["classify", "{images}", "--clip-model", "x", "--batch-size", "nan"], "--batch-size"),
    (["classify", "{images}", "--clip-model", "x", "--workers", HUGE], "--workers"),
    (["classify", "{images}", "--clip-model", "x", "--workers", "-1"], "--workers"),
    (["retrieval", "p.csv", "--clip-model", "x", "--batch-size", HUGE], "--batch-size"),
    (["retrieval", "p.csv", "--clip-model", "x", "--workers", "inf"], "--workers"),
    (["voc", "--baseline", "sclp"], "--baseline"),
    (["voc", "--baseline", "SCLIP"], "--baseline"),
    (["voc", "--baseline", "sclip", "--protocol", "SCLIP"], "--protocol"),
    (["voc", "--baseline", "naclip", "--batch-size", HUGE], "--batch-size"),
    (["voc", "--baseline", "clearclip", "--crop-batch", HUGE], "--crop-batch"),
    (["voc", "--baseline", "sclip", "--limit", HUGE], "--limit"),
    (["voc", "--baseline", "sclip", "--short-side", HUGE], "--short-side"),
    (["voc", "--baseline", "sclip", "--stride", "1e9"], "--stride"),
    (["voc", "--baseline", "sclip", "--scale", "inf"], "--scale"),
    (["voc", "--baseline", "sclip", "--scale", "nan"], "--scale"),
    (["voc", "--baseline", "sclip", "--bias", "-inf"], "--bias"),
    (["voc", "--baseline", "sclip", "--clip-blend", "nan"], "--clip-blend"),
    (["voc", "--baseline", "sclip", "--bg-thresh", "inf"], "--bg-thresh"),
    (
        [
            "custom",
            "--images",
            ".",
            "--masks",
            ".",
            "--class-file",
            __file__,
            "--ignore-index",
            HUGE,
        ],
        "--ignore-index",
    ),
    (["predict", "x.jpg", "--classes", "cat", "--out", "o", "--crop-batch", HUGE], "--crop-batch"),
    (["classify", "{images}", "--clip-model", "x", "--device", "cpu", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize("args, flag", FLAGS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in FLAGS])
def test_flag_values_are_refused_at_parse_time(data, args, flag):
    result = eval_in_process(*(a.format(images=data / "images") for a in args))
    assert_runner_error(result, flag, "see `tagalign-eval")


def test_classify_out_that_is_a_folder_or_below_a_file(data, tmp_path):
    result = eval_in_process("classify", data / "images", "--clip-model", "x", "--out", tmp_path)
    assert_runner_error(result, f"--out {tmp_path} is a folder")
    below = data / "afile" / "r.json"
    result = eval_in_process("classify", data / "images", "--clip-model", "x", "--out", below)
    assert_runner_error(result, "--out", "afile is a file, not a folder")


# --- the real entry point ------------------------------------------------------------------------


def test_real_entry_point_refuses_a_duplicate_class_key(data, tmp_path):
    mapping = tmp_path / "dup.json"
    mapping.write_text(json.dumps({"cat": "cat", "dog": "dog"})[:-1] + ', "cat": "kitten"}')
    proc = run_cli(
        ["tagalign-eval", "classify", data / "images", "--clip-model", "x", "--class-map", mapping]
    )
    assert_user_error(proc, "dup.json", "key 'cat' is given twice", "'kitten'")


def test_real_entry_point_refuses_a_duplicate_csv_column_and_a_huge_batch(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\ufeffimage,caption,caption\na.png,a cat,a dog\n", encoding="utf-8")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    proc = run_cli(["tagalign-eval", "retrieval", pairs, "--clip-model", "x"])
    assert_user_error(proc, "pairs.csv", "column 'caption' is named twice")
    proc = run_cli(["tagalign-eval", "retrieval", pairs, "--clip-model", "x", "--batch-size", HUGE])
    assert_user_error(proc, "--batch-size", HUGE)
