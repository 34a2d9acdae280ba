"""The command line end to end: a tiny open_clip model saved to disk, a synthetic VOC, predict,
prepare, and the one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from eval_synthetic import write_benchmark, write_image
from PIL import Image
from tagalign_eval.cli import main
from tagalign_eval.datasets import get_benchmark

TINY = "tagalign-tiny-ViT"
FAST = ["--short-side", "64", "--crop", "64", "--stride", "32", "--workers", "0", "--no-progress"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_voc_surgery_baseline_end_to_end(tmp_path, tiny_weights):
    write_benchmark(get_benchmark("voc"), tmp_path / "data", n=3, size=(80, 60))
    out = tmp_path / "results.json"
    result = run(
        "voc",
        "--data-root",
        tmp_path / "data",
        "--baseline",
        "surgery",
        "--model",
        TINY,
        "--pretrained",
        tiny_weights,
        "--out",
        out,
        "--save-vis",
        tmp_path / "vis",
        "--save-pred",
        tmp_path / "pred",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("protocol tagalign-v3: short side 64, crop 64, stride 32")
    payload = json.loads(out.read_text())
    r = payload["results"][0]
    assert r["benchmark"] == "voc" and r["images"] == 3
    assert r["protocol"]["bg_thresh"] == 0.45 and r["protocol"]["stride"] == 32
    assert r["model"]["baseline"] == "surgery" and len(r["model"]["fingerprint"]) == 16
    assert r["clip_blend_applied"] is False and r["versions"]["torch"]
    assert 0.0 <= r["metrics"]["mIoU"] <= 100.0 and r["metrics"]["pixels"] > 0
    assert "| VOC | Avg |" in payload["table"].splitlines()[0].replace("|  |", "|")
    # predicted label maps: same names as the ground truth, same size, class indices
    stems = (tmp_path / "data/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").read_text().split()
    pred = Image.open(tmp_path / "pred" / f"{stems[0]}.png")
    assert pred.mode == "P" and pred.size == (80, 60) and np.asarray(pred).max() < 21
    assert Image.open(tmp_path / "vis" / f"{stems[0]}.png").size[0] == 3 * 80


def test_predict_writes_pngs_with_the_image_size(tmp_path, tiny_weights):
    image = tmp_path / "photo.jpg"
    write_image(image, (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    result = run(
        "predict",
        image,
        "--classes",
        "cat,black cat,sofa",
        "--baseline",
        "surgery",
        "--model",
        TINY,
        "--pretrained",
        tiny_weights,
        "--out",
        tmp_path / "out",
        "--short-side",
        "64",
        "--crop",
        "64",
        "--stride",
        "32",
    )
    assert result.exit_code == 0, result.output
    overlay = Image.open(tmp_path / "out/photo_overlay.png")
    assert overlay.size == (70, 50)
    masks = sorted((tmp_path / "out/photo_masks").iterdir())
    assert [m.name for m in masks] == ["000_cat.png", "001_black_cat.png", "002_sofa.png"]
    union = sum(np.asarray(Image.open(m)) > 0 for m in masks)
    assert union.shape == (50, 70) and (union == 1).all()  # every pixel gets exactly one class


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["voc", "--data-root", "{tmp}", "--baseline", "surgery"],
            "no folder VOCdevkit/VOC2012/JPEGImages",
        ),
        (
            ["coco-object", "--data-root", "{tmp}", "--baseline", "surgery"],
            "tagalign-eval prepare coco-object",
        ),
        (["voc", "--data-root", "{tmp}"], None),
        (
            ["voc", "--data-root", "{tmp}", "--checkpoint", "{tmp}", "--protocol", "sclip"],
            "not a tagalign-train run",
        ),
        (
            ["voc", "--data-root", "{tmp}", "--baseline", "surgery", "--classes", " , "],
            "empty class list",
        ),
        (
            [
                "predict",
                "{tmp}/nope.jpg",
                "--classes",
                "cat",
                "--baseline",
                "surgery",
                "--model",
                TINY,
                "--pretrained",
                "none",
                "--out",
                "{tmp}/o",
            ],
            "no such image",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, expected):
    if args[0] == "voc" and expected is not None and "tagalign-train" in expected:
        write_benchmark(get_benchmark("voc"), tmp_path, n=1)
    if expected is None:  # neither --checkpoint nor --baseline
        write_benchmark(get_benchmark("voc"), tmp_path, n=1)
        expected = "exactly one of --checkpoint"
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and expected in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_prepare_coco_object_and_cityscapes(tmp_path):
    ann = tmp_path / "coco_stuff164k/annotations/val2017"
    ann.mkdir(parents=True)
    # raw stuffthingmaps: 0 person, 89 toothbrush (id 90), 91 banner (id 92), 255 unlabeled
    Image.fromarray(np.array([[0, 89, 91, 255]], np.uint8), "L").save(ann / "000001.png")
    assert run("prepare", "coco-object", "--data-root", tmp_path).exit_code == 0
    assert run("prepare", "coco-stuff", "--data-root", tmp_path).exit_code == 0
    obj = np.asarray(Image.open(ann / "000001_instanceTrainIds.png"))
    stuff = np.asarray(Image.open(ann / "000001_labelTrainIds.png"))
    assert obj.tolist() == [[1, 80, 0, 255]] and stuff.tolist() == [[0, 79, 80, 255]]
    city = tmp_path / "cityscapes/gtFine/val/bonn"
    city.mkdir(parents=True)
    Image.fromarray(np.array([[7, 26, 33, 0, 4]], np.uint8), "L").save(
        city / "bonn_000000_000019_gtFine_labelIds.png"
    )
    assert run("prepare", "cityscapes", "--data-root", tmp_path).exit_code == 0
    out = np.asarray(Image.open(city / "bonn_000000_000019_gtFine_labelTrainIds.png"))
    assert out.tolist() == [[0, 13, 18, 255, 255]]
    result = CliRunner().invoke(main, ["prepare", "cityscapes", "--data-root", tmp_path / "x"])
    assert result.exit_code == 2 and "gtFine_trainvaltest.zip" in result.output


def test_all_skips_missing_benchmarks_and_prints_the_paper_table(tmp_path, tiny_weights):
    data = tmp_path / "data"
    write_benchmark(get_benchmark("voc"), data, n=2, size=(64, 48))
    write_benchmark(get_benchmark("ade20k"), data, n=2, size=(64, 48))
    out = tmp_path / "all.json"
    result = CliRunner().invoke(
        main,
        [
            str(a)
            for a in (
                "all",
                "--data-root",
                data,
                "--baseline",
                "clip",
                "--model",
                TINY,
                "--pretrained",
                tiny_weights,
                "--out",
                out,
                "--protocol",
                "tagalign-v1",
                *FAST,
            )
        ],
    )
    assert result.exit_code == 0, result.output
    assert "skip context:" in result.output and "prepare context" in result.output
    payload = json.loads(out.read_text())
    # VOC20 reads the same files as VOC, so it is found too
    assert [r["benchmark"] for r in payload["results"]] == ["voc", "voc20", "ade20k"]
    header = payload["table"].splitlines()[0]
    assert header.index("VOC |") < header.index("VOC20") < header.index("ADE") < header.index("Avg")
    mious = [r["metrics"]["mIoU"] for r in payload["results"]]
    row = payload["table"].splitlines()[2]
    assert row.endswith(f"| {sum(mious) / 3:.1f} |")


def test_custom_folder_and_out_of_range_labels(tmp_path, tiny_weights):
    rng = np.random.default_rng(0)
    (tmp_path / "masks").mkdir()
    for i in range(2):
        write_image(
            tmp_path / "images" / f"im{i}.png", (rng.random((40, 50, 3)) * 255).astype(np.uint8)
        )
        mask = np.zeros((40, 50), np.uint8)
        mask[:, 25:] = 1
        mask[:4] = 9 if i == 1 else 255  # 9 is outside the two classes
        Image.fromarray(mask, "L").save(tmp_path / "masks" / f"im{i}.png")
    (tmp_path / "classes.txt").write_text("sky\ngrass\n")
    args = [
        "custom",
        "--images",
        tmp_path / "images",
        "--masks",
        tmp_path / "masks",
        "--class-file",
        tmp_path / "classes.txt",
        "--img-suffix",
        ".png",
        "--baseline",
        "maskclip",
        "--model",
        TINY,
        "--pretrained",
        tiny_weights,
        *FAST,
    ]
    # decoded in a worker process: the error must still arrive as one line
    strict = CliRunner().invoke(main, [str(a) for a in [*args, "--workers", "1"]])
    assert (
        strict.exit_code == 2 and "im1.png: label value(s) 9 outside the 2 classes" in strict.output
    )
    assert strict.output.startswith("error: ") and strict.output.count("\n") == 1
    out = tmp_path / "r.json"
    loose = CliRunner().invoke(
        main, [str(a) for a in [*args, "--ignore-out-of-range", "--out", out]]
    )
    assert loose.exit_code == 0, loose.output
    r = json.loads(out.read_text())["results"][0]
    assert r["out_of_range_labels"] == {"9": 4 * 50}
    assert r["metrics"]["pixels"] == 2 * 36 * 50  # ignore rows and out-of-range rows not counted
    assert "left out of the metric" in loose.output


def test_checkpoint_of_a_training_run_blends_and_is_fingerprinted(tmp_path, tiny_weights):
    """A run directory written by tagalign-train's own checkpoint writer."""
    from tagalign_train.checkpoint import write_checkpoint
    from tagalign_train.model import build_model
    from tagalign_train.model_config import CheckpointConfig

    model = build_model(TINY, tiny_weights, projector="conv")
    config = CheckpointConfig(model.config, step=10)
    write_checkpoint(tmp_path / "run", config, model.trainable_state_dict(), None, keep_last=1)
    write_benchmark(get_benchmark("voc"), tmp_path / "data", n=2, size=(64, 48))
    out = tmp_path / "r.json"
    result = run(
        "voc",
        "--data-root",
        tmp_path / "data",
        "--checkpoint",
        tmp_path / "run",
        "--out",
        out,
        *FAST,
    )
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())["results"][0]
    assert r["model"]["kind"] == "checkpoint" and r["clip_blend_applied"] is True
    assert r["model"]["checkpoint_dir"].endswith("step-0000010")
    assert r["model_config"]["model"]["projector"] == "conv"
    assert len(r["model"]["fingerprint"]) == 16
    assert "CLIP blend 0.5," in result.output


def test_prepare_context_from_detail_json(tmp_path):
    from eval_synthetic import rle_encode
    from tagalign_eval.prepare import rle_decode

    rng = np.random.default_rng(0)
    blob = rng.random((30, 45)) > 0.5
    assert (rle_decode(rle_encode(blob)) == blob).all()  # long irregular runs round-trip
    devkit = tmp_path / "VOCdevkit/VOC2010"
    devkit.mkdir(parents=True)
    left = np.zeros((6, 8), bool)
    left[:, :4] = True
    corner = np.zeros((6, 8), bool)
    corner[:2, 6:] = True
    data = {
        "images": [
            {
                "image_id": 2008000002,
                "file_name": "2008_000002.jpg",
                "height": 6,
                "width": 8,
                "phase": "val",
            },
            {
                "image_id": 2008000003,
                "file_name": "2008_000003.jpg",
                "height": 6,
                "width": 8,
                "phase": "train",
            },
        ],
        "annos_segmentation": [
            {"image_id": 2008000002, "category_id": 2, "segmentation": rle_encode(left)},
            {"image_id": 2008000002, "category_id": 458, "segmentation": rle_encode(corner)},
            {"image_id": 2008000002, "category_id": 7, "segmentation": rle_encode(~left)},
            {"image_id": 2008000002, "category_id": 458, "segmentation": rle_encode(corner)},
        ],
    }
    (devkit / "trainval_merged.json").write_text(json.dumps(data))
    result = run("prepare", "context", "--data-root", tmp_path)
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(devkit / "SegmentationClassContext/2008_000002.png"))
    # category 2 (aeroplane) -> 1; 7 is not one of the 59 -> background 0; 458 (wood) -> 59
    expected = np.where(left, 1, 0)
    expected[corner] = 59
    assert out.tolist() == expected.tolist()
    assert (devkit / "ImageSets/SegmentationContext/val.txt").read_text() == "2008_000002\n"
    assert get_benchmark("context").class_list().names[59] == "wood"


def test_the_cli_and_the_benchmark_layouts_import_without_torch():
    """`tagalign-eval --help` lists the benchmarks; importing torch for that took seconds."""
    code = (
        "import sys, tagalign_eval, tagalign_eval.cli, tagalign_eval.datasets; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
