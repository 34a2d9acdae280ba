"""`tagalign-eval classify`: top-k accuracy against brute force, the checkpoint's image embedding
against the trainer's own training step, the command end to end on real image files against a
reference computed from open_clip and the trainer directly, and the one-line errors."""

import json

import pytest
import torch
import torch.nn.functional as F
from cli_checks import assert_user_error, in_process, run_cli
from click.testing import CliRunner
from eval_global import TINY, brute_recall, clip_reference, trained_run, training_reference
from eval_global import write_images as write_folder
from PIL import Image
from tagalign_eval import ranking
from tagalign_eval.classify import classify
from tagalign_eval.cli import main
from tagalign_eval.embedding import checkpoint_encoder, embed_images
from tagalign_eval.models import load_eval_model
from tagalign_train.backbone import MODEL_CONFIG_DIR

NAMES = {"c0": "red circle", "c1": "blue square", "c2": "green triangle", "c3": "cat"}
NAMES |= {"c4": "dog", "c5": "sofa"}
QUIET = ["--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_weights):
    return trained_run(tmp_path_factory.mktemp("train"), tiny_weights)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six class folders of 3 images each, PNG and JPEG; returns (root, paths, targets)."""
    root = tmp_path_factory.mktemp("folder") / "val"
    paths, targets = [], []
    for c, folder_name in enumerate(sorted(NAMES)):
        suffix = ".jpg" if c % 2 else ".png"
        images = write_folder(root / folder_name, 3, seed=c, suffix=suffix)
        paths += images
        targets += [c] * len(images)
    return root, paths, targets


def test_top_k_accuracy_is_brute_force_top_k(monkeypatch):
    monkeypatch.setattr(ranking, "QUERY_CHUNK", 7)  # several chunks, one of them short
    g = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(40, 8, generator=g), dim=-1)
    classes = F.normalize(torch.randn(9, 8, generator=g), dim=-1)
    targets = torch.randint(0, 9, (40,), generator=g)
    got = ranking.recall_at_k(images, classes, targets, torch.arange(9), (1, 5, 20))
    sim = images @ classes.T
    for k in (1, 5, 20):
        assert got[k] == pytest.approx(
            brute_recall(sim, targets.tolist(), list(range(9)), k), abs=1e-3
        )
    assert got[20] == 100.0  # k beyond the 9 classes counts them all


def test_checkpoint_image_embedding_is_the_one_training_computes(run, folder):
    _, paths, _ = folder
    loaded = load_eval_model(str(run))
    encoder = checkpoint_encoder(loaded, "run")
    got = embed_images(encoder, paths, device=torch.device("cpu"), batch_size=4, workers=0)
    want, _ = training_reference(run)
    assert torch.allclose(got, want(paths), atol=1e-5)
    # the projector was trained: the embedding is not the frozen head's (the identity start)
    model = loaded.model
    with Image.open(paths[0]) as image:
        x = encoder.transform(image.convert("RGB"))[None]
    frozen = F.normalize(model.baseline_features(model.backbone_features(x)).mean((2, 3)), dim=-1)
    assert not torch.allclose(got[:1], frozen, atol=1e-4)


def _reference_accuracy(embed_images_fn, embed_texts_fn, paths, targets, templates):
    names = [NAMES[f] for f in sorted(NAMES)]
    prompts = embed_texts_fn([t.format(n) for n in names for t in templates])
    classes = F.normalize(prompts.reshape(len(names), len(templates), -1).mean(1), dim=-1)
    sim = embed_images_fn(paths) @ classes.T
    return {f"top{k}": brute_recall(sim, targets, list(range(len(names))), k) for k in (1, 5)}


def test_classify_command_checkpoint_and_clip_side_by_side(tmp_path, run, folder, tiny_weights):
    root, paths, targets = folder
    mapping = tmp_path / "names.txt"
    mapping.write_text("".join(f"{k}\t{v}\n" for k, v in NAMES.items()) + "extra\tunused\n")
    templates_file = tmp_path / "templates.txt"
    templates_file.write_text("a drawing of a {}.\n\n")
    out = tmp_path / "results" / "cls.json"
    args = [
        "classify",
        root,
        "--checkpoint",
        run,
        "--clip-model",
        TINY,
        "--pretrained",
        tiny_weights,
    ]
    args += [
        "--class-map",
        mapping,
        "--template",
        "a photo of a {}.",
        "--template-file",
        templates_file,
    ]
    args += ["--out", out, "--workers", "0", "--batch-size", "5", "--no-progress"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["images"] == 18 and payload["classes"]["names"] == list(NAMES.values())
    assert payload["templates"] == ["a photo of a {}.", "a drawing of a {}."]
    ckpt, clip = payload["models"]
    assert ckpt["label"] == "run" and ckpt["model"]["kind"] == "checkpoint"
    assert clip["label"] == f"CLIP {TINY}" and clip["model"]["baseline"] == "clip"
    templates = payload["templates"]
    for record, (images_fn, texts_fn) in (
        (ckpt, training_reference(run)),
        (clip, clip_reference(tiny_weights)),
    ):
        want = _reference_accuracy(images_fn, texts_fn, paths, targets, templates)
        assert record["metrics"] == pytest.approx(want, abs=1e-3)
    table = payload["table"].splitlines()
    assert table[0] == "|  | Top-1 | Top-5 |" and len(table) == 4
    assert table[2].startswith(f"| run | {ckpt['metrics']['top1']:.1f} |")
    assert result.output.startswith(payload["table"]) and f"wrote {out}" in result.output


def test_python_api_with_fewer_than_five_classes_has_no_top5(tmp_path, tiny_weights):
    for c in ("cat", "dog", "sofa"):
        write_folder(tmp_path / "val" / c, 2, seed=len(c))
    result = classify(
        tmp_path / "val", clip_model=TINY, pretrained=tiny_weights, workers=0, progress=False
    )
    assert result.ks == (1,) and result.class_names == ("cat", "dog", "sofa")
    (scores,) = result.scores
    assert set(scores.metrics) == {"top1"} and scores.images_per_s > 0
    assert result.table.splitlines()[0] == "|  | Top-1 |"
    # the same CLIP as an open_clip `local-dir:` folder scores the same
    local = tmp_path / "clip-dir"
    local.mkdir()
    config = {"model_cfg": json.loads((MODEL_CONFIG_DIR / f"{TINY}.json").read_text())}
    (local / "open_clip_config.json").write_text(json.dumps(config | {"preprocess_cfg": {}}))
    torch.save(torch.load(tiny_weights), local / "open_clip_pytorch_model.bin")
    again = classify(tmp_path / "val", clip_model=f"local-dir:{local}", workers=0, progress=False)
    assert again.scores[0].metrics == scores.metrics and again.scores[0].label == "CLIP clip-dir"


def _bad_folder(tmp_path, case):
    root = tmp_path / "val"
    write_folder(root / "cat", 2, seed=0)
    extra = []
    if case == "empty class":
        (root / "dog").mkdir()
        (root / "dog" / "notes.txt").write_text("no images here")
    elif case == "unreadable image":
        (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
        extra = ["--workers", "1"]  # the error crosses from a decoding worker as one line
    elif case == "unnamed folder":
        (tmp_path / "names.txt").write_text("dog\tdog\n")
        extra = ["--class-map", tmp_path / "names.txt"]
    elif case == "bad template":
        extra = ["--template", "a photo"]
    elif case == "no model":
        return [root]
    elif case == "missing checkpoint":
        return [root, "--checkpoint", tmp_path / "nope-run"]
    return [root, *extra, "--clip-model", TINY]


@pytest.mark.parametrize(
    "case, mentions",
    [
        ("missing root", ["nope", "no such folder"]),
        ("empty class", ["dog", "without images"]),
        ("unreadable image", ["broken.jpg", "not a readable image"]),
        ("unnamed folder", ["names.txt", "cat", "FOLDER<tab>NAME"]),
        ("bad template", ["'a photo'", "{}"]),
        ("no model", ["--checkpoint", "--clip-model"]),
        ("missing checkpoint", ["nope-run", "tagalign-train"]),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, tiny_weights, case, mentions):
    """The first case runs the real console script in a subprocess, the others in-process
    (`in_process`: the same click command, without a torch import per case)."""
    if case == "missing root":
        args = [tmp_path / "nope", "--clip-model", TINY]
    else:
        args = _bad_folder(tmp_path, case)
    run = run_cli if case == "missing root" else in_process
    proc = run(
        ["tagalign-eval", "classify", "--pretrained", tiny_weights, *QUIET, *args],
        env={"OMP_NUM_THREADS": "1"},
    )
    assert_user_error(proc, *mentions)
