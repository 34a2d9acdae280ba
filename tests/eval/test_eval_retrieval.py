"""`tagalign-eval retrieval`: recall@k on a hand-made similarity matrix and against brute force,
the command end to end on JSONL + CSV pair files with real images (several captions per image),
against a reference computed from open_clip and the trainer directly, and the one-line errors."""

import json

import pytest
import torch
import torch.nn.functional as F
from cli_checks import assert_user_error, in_process, run_cli
from click.testing import CliRunner
from eval_global import (
    TINY,
    brute_recall,
    clip_reference,
    trained_run,
    training_reference,
    write_images,
)
from tagalign_eval import ranking
from tagalign_eval.cli import main
from tagalign_eval.retrieval import retrieval, retrieval_recalls

QUIET = ["--workers", "0", "--no-progress"]


def test_recall_on_a_hand_made_similarity_matrix():
    # 3 images x 5 captions; captions 0,1 are image 0's, 2 is image 1's, 3,4 are image 2's
    sim = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.3, 0.2],  # image 0: its caption 0 ranks first
            [0.7, 0.6, 0.5, 0.4, 0.3],  # image 1: its caption 2 ranks third
            [0.1, 0.2, 0.3, 0.05, 0.9],  # image 2: its caption 4 ranks first
        ]
    )
    owner = torch.tensor([0, 0, 1, 2, 2])
    images = torch.arange(3)
    i2t = ranking.hits_at_k(sim, images, owner, (1, 2, 3, 10))
    assert i2t == {1: 2, 2: 2, 3: 3, 10: 3}  # k=10 > 5 captions: the whole gallery
    # captions rank their image: 1st, 3rd, 2nd, 3rd, 1st
    t2i = ranking.hits_at_k(sim.T, owner, images, (1, 2, 3, 10))
    assert t2i == {1: 2, 2: 3, 3: 5, 10: 5}


def test_recall_from_embeddings_is_brute_force(monkeypatch):
    monkeypatch.setattr(ranking, "QUERY_CHUNK", 4)
    g = torch.Generator().manual_seed(1)
    images = F.normalize(torch.randn(11, 6, generator=g), dim=-1)
    owner = torch.cat([torch.arange(11), torch.randint(0, 11, (19,), generator=g)])
    texts = F.normalize(images[owner] + 0.8 * torch.randn(30, 6, generator=g), dim=-1)
    got = retrieval_recalls(images, texts, owner, (1, 5, 10))
    sim = images @ texts.T
    for k in (1, 5, 10):
        assert got[f"i2t_R@{k}"] == pytest.approx(
            brute_recall(sim, range(11), owner.tolist(), k), abs=1e-3
        )
        want = brute_recall(sim.T, owner.tolist(), list(range(11)), k)
        assert got[f"t2i_R@{k}"] == pytest.approx(want, abs=1e-3)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_weights):
    return trained_run(tmp_path_factory.mktemp("train"), tiny_weights)


def test_retrieval_command_jsonl_and_csv_side_by_side(tmp_path, run, tiny_weights):
    a = write_images(tmp_path / "a" / "imgs", 4, seed=0)
    b = write_images(tmp_path / "b", 3, seed=1, suffix=".jpg")
    jsonl = tmp_path / "a" / "pairs.jsonl"
    rows = [("imgs/img0.png", "a red circle"), ("imgs/img0.png", "a round red thing")]
    rows += [("imgs/img1.png", "a blue square"), ("imgs/img2.png", "a cat"), ("imgs/img3.png", "x")]
    jsonl.write_text("".join(json.dumps({"image": i, "caption": c}) + "\n" for i, c in rows))
    csv_file = tmp_path / "b" / "pairs.csv"
    csv_file.write_text(
        'image,caption,source\nimg0.jpg,"a dog, sitting",web\nimg1.jpg,a sofa,web\n'
        "img2.jpg,a tree,web\n../a/imgs/img1.png,a bluish square,web\n"
    )
    out = tmp_path / "ret.json"
    args = ["retrieval", jsonl, csv_file, "--checkpoint", run, "--clip-model", TINY]
    args += ["--pretrained", tiny_weights, "--out", out, "--batch-size", "3", *QUIET]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["images"] == 7 and payload["captions"] == 9  # img1.png listed in both files
    images = [a[0], a[1], a[2], a[3], b[0], b[1], b[2]]
    captions = [c for _, c in rows] + ["a dog, sitting", "a sofa", "a tree", "a bluish square"]
    owner = [0, 0, 1, 2, 3, 4, 5, 6, 1]
    ckpt, clip = payload["models"]
    for record, (images_fn, texts_fn) in (
        (ckpt, training_reference(run)),
        (clip, clip_reference(tiny_weights)),
    ):
        sim = images_fn(images) @ texts_fn(captions).T
        for k in (1, 5, 10):
            i2t = brute_recall(sim, range(7), owner, k)
            t2i = brute_recall(sim.T, owner, list(range(7)), k)
            assert record["metrics"][f"i2t_R@{k}"] == pytest.approx(i2t, abs=1e-3)
            assert record["metrics"][f"t2i_R@{k}"] == pytest.approx(t2i, abs=1e-3)
    assert ckpt["metrics"]["i2t_R@10"] == 100.0  # 10 > 9 captions: clamped to the gallery
    header = payload["table"].splitlines()[0]
    assert header.startswith("|  | Image→Text R@1 |") and header.endswith("Text→Image R@10 |")
    assert result.output.startswith(payload["table"])


def test_python_api_clip_only(tmp_path, tiny_weights):
    write_images(tmp_path, 2, seed=3)
    pairs = tmp_path / "p.csv"
    pairs.write_text("image,caption\nimg0.png,one\nimg1.png,two\n")
    result = retrieval([pairs], clip_model=TINY, pretrained=tiny_weights, ks=(1,), workers=0)
    assert (result.images, result.captions, result.ks) == (2, 2, (1,))
    (scores,) = result.scores
    assert set(scores.metrics) == {"i2t_R@1", "t2i_R@1"}
    assert result.to_dict()["models"][0]["label"] == f"CLIP {TINY}"


BAD_PAIRS = [
    ("p.jsonl", '{"image": "img0.png", "caption": "a"}\n{"image": "img0.png"}\n', ["line 2"]),
    ("p.jsonl", '{"image": "img0.png", "caption": "a"}\nnot json\n', ["line 2", "JSON"]),
    ("p.csv", "image,text\nimg0.png,a\n", ["p.csv", "caption", "image,caption"]),
    ("p.csv", "image,caption\nimg0.png,a\nimg9.png,b\n", ["line 3", "img9.png"]),
    ("p.csv", "image,caption\nimg0.png,  \n", ["line 2", "caption is empty"]),
    ("p.csv", "image,caption\nbroken.png,a\n", ["broken.png", "not a readable image"]),
    ("p.txt", "img0.png a\n", ["p.txt", ".jsonl or .csv"]),
]


@pytest.mark.parametrize("name, text, mentions", BAD_PAIRS)
def test_bad_input_is_one_error_line(tmp_path, tiny_weights, name, text, mentions):
    write_images(tmp_path, 1, seed=0)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / name).write_text(text)
    # the first case through the real console script, the others in-process (the same command)
    run = run_cli if (name, text) == BAD_PAIRS[0][:2] else in_process
    proc = run(
        ["tagalign-eval", "retrieval", tmp_path / name, "--clip-model", TINY]
        + ["--pretrained", tiny_weights, *QUIET],
        env={"OMP_NUM_THREADS": "1"},
    )
    assert_user_error(proc, *mentions)
