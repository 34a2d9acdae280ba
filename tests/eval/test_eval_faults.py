"""Issue 12's battery for `tagalign-eval`: every bad input and fault a user can hit ends in exit
code 2 and one `error:` line naming the file or flag and what to do, never a traceback, and a
results file from an earlier run is never lost.

The validation cases (flags, class lists, data roots, damaged files, checkpoints, outputs) run
the console script's own click command in-process (`cli_checks.in_process`, `eval_cli`): their
outcome does not depend on the process, and a subprocess per case paid a torch import and a model
load (10-15 s each on the 2-core box). Real subprocesses (`eval_process`) remain for every
subcommand (voc, all, custom, predict, prepare) and for what depends on the process: DataLoader
worker processes (`--workers 2`) and the disk-full and read-only faults, which are real: the
command runs inside a user + mount namespace (`unshare -rm`) over a tiny tmpfs or a read-only bind
mount; those cases are skipped where namespaces are not allowed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_checks import (
    assert_runner_error,
    assert_user_error,
    cli_path,
    in_process,
    invoke_cli,
    run_cli,
)
from eval_synthetic import write_benchmark, write_image, write_mask
from PIL import Image
from tagalign_eval.datasets import get_benchmark

TINY = "tagalign-tiny-ViT"
FAST = ["--short-side", "64", "--crop", "64", "--stride", "32", "--workers", "0", "--no-progress"]
VOC = get_benchmark("voc")


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    """A good synthetic VOC (two 64x48 pairs) that no test changes."""
    root = tmp_path_factory.mktemp("voc")
    write_benchmark(VOC, root, n=2, size=(64, 48))
    return root


@pytest.fixture
def model(tiny_weights) -> list[str]:
    return ["--baseline", "surgery", "--model", TINY, "--pretrained", tiny_weights, *FAST]


def eval_cli(*args) -> subprocess.CompletedProcess:
    """`tagalign-eval args` in-process (the validation cases)."""
    return in_process(["tagalign-eval", *args])


def eval_process(*args) -> subprocess.CompletedProcess:
    """`tagalign-eval args` as a real subprocess of the installed console script."""
    return run_cli(["tagalign-eval", *args])


def _voc_pairs(root: Path) -> list[tuple[Path, Path]]:
    stems = (root / VOC.root / VOC.split).read_text().split()
    base = root / VOC.root
    return [
        (base / VOC.img_dir / f"{s}{VOC.img_suffix}", base / VOC.ann_dir / f"{s}{VOC.ann_suffix}")
        for s in stems
    ]


def _processes_naming(path: Path) -> list[int]:
    """Processes whose command line mentions `path` (DataLoader workers are forks of the CLI,
    so they carry its arguments)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(path).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


# --- flags checked when the command line is parsed (no model, no data read) -------------------

NUMERIC_FLAGS = [
    ("--batch-size", "0"),
    ("--crop-batch", "0"),
    ("--workers", "-1"),
    ("--limit", "-1"),
    ("--limit", "0"),
    ("--short-side", "0"),
    ("--max-long-side", "-5"),
    ("--crop", "0"),
    ("--stride", "-32"),
    ("--scale", "0"),
    ("--clip-blend", "2"),
    ("--bg-thresh", "1.5"),
    ("--bias", "nan"),
]


@pytest.mark.parametrize("flag, value", NUMERIC_FLAGS)
def test_every_numeric_flag_is_range_checked(voc_root, flag, value):
    """In-process (parse-time validation, nothing loads); the first case also runs the real
    console script in a subprocess."""
    args = ["voc", "--data-root", voc_root, "--baseline", "surgery", flag, value]
    assert_runner_error(
        invoke_cli(["tagalign-eval", *args]), flag, value, "tagalign-eval voc --help"
    )
    if (flag, value) == NUMERIC_FLAGS[0]:
        assert_user_error(eval_process(*args), flag, value, "tagalign-eval voc --help")


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["predict", "x.jpg", "--classes", "cat", "--out", "o", "--crop-batch", "0"], "--crop"),
        (["predict", "x.jpg", "--classes", "cat", "--out", "o", "--stride", "0"], "--stride"),
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
                "-1",
            ],
            "--ignore-index",
        ),
    ],
    ids=["predict-crop-batch", "predict-stride", "custom-ignore-index"],
)
def test_predict_and_custom_numbers_are_range_checked(args, mentions):
    """`custom` runs as a real subprocess, the predict cases in-process."""
    run = eval_process if args[0] == "custom" else eval_cli
    assert_user_error(run(*args), mentions)


def test_unknown_protocol_and_benchmark_are_one_line(voc_root):
    proc = eval_cli("voc", "--data-root", voc_root, "--baseline", "surgery", "--protocol", "v9")
    assert_user_error(proc, "--protocol", "'v9'", "tagalign-v3")
    assert_user_error(eval_cli("vocc", "--data-root", voc_root), "no such command 'vocc'")


# --- --classes (issue case 3) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, mentions",
    [
        ("{tmp}/thirty.txt", ["has 30 names but benchmark 'voc' has 21 classes"]),
        ("background,cat,cat", ["'cat' is given twice"]),
        ("{tmp}/nothere/classes.txt", ["class file", "nothere/classes.txt does not exist"]),
        ("missing.txt", ["class file missing.txt does not exist"]),
        ("", ["--classes is empty"]),
        ("  ", ["--classes is empty"]),
        ("background", ["only 'background'"]),
        ("{tmp}/binary.txt", ["binary.txt is not UTF-8 text"]),
        ("{tmp}", ["is a folder"]),
    ],
    ids=[
        "more-names",
        "duplicate",
        "missing-path",
        "missing-txt",
        "empty",
        "blank",
        "background-only",
        "not-utf8",
        "folder",
    ],
)
def test_bad_class_lists_are_refused(voc_root, model, tmp_path, value, mentions):
    (tmp_path / "thirty.txt").write_text("".join(f"class {i}\n" for i in range(30)))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00cat\n\x80")
    classes = value.format(tmp=tmp_path)
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--classes", classes)
    assert_user_error(proc, *mentions)


def test_fewer_class_names_need_ignore_out_of_range(voc_root, model, tmp_path):
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--classes", "background,cat")
    assert_user_error(proc, "has 2 names", "21 classes", "--ignore-out-of-range")


def test_classes_apply_to_every_benchmark_of_all(voc_root, model):
    """`all --classes` with a list that fits no found benchmark is an error, not a skip (a
    real subprocess: `all`'s one)."""
    proc = eval_process("all", "--data-root", voc_root, *model, "--classes", "background,cat")
    assert_user_error(proc, "--classes has 2 names but benchmark 'voc'")


# --- --data-root, benchmarks, checkpoint, device -----------------------------------------------


def test_data_root_that_does_not_exist_or_lacks_the_layout(model, tmp_path):
    proc = eval_cli("voc", "--data-root", tmp_path / "nope", *model)
    assert_user_error(proc, f"--data-root {tmp_path / 'nope'} is not a folder")
    proc = eval_cli("voc", "--data-root", tmp_path, *model)
    assert_user_error(proc, "no folder VOCdevkit/VOC2012/JPEGImages", "expected under --data-root")
    proc = eval_cli("all", "--data-root", tmp_path, *model)
    assert_user_error(proc, "no benchmark found under --data-root")


def test_all_stops_at_a_broken_benchmark_instead_of_skipping_it(model, tmp_path):
    """A benchmark that is there but broken (a mask deleted) is an error; only a benchmark
    that is not under --data-root at all is skipped (with a `skip` line)."""
    write_benchmark(VOC, tmp_path, n=3)
    _voc_pairs(tmp_path)[1][1].unlink()
    proc = eval_cli("all", "--data-root", tmp_path, *model, "--benchmarks", "voc,ade20k")
    assert_user_error(proc, "1 image(s) without a mask", _voc_pairs(tmp_path)[1][0].name)


def test_benchmark_named_twice(voc_root, model):
    proc = eval_cli("all", "--data-root", voc_root, *model, "--benchmarks", "voc,voc20,voc")
    assert_user_error(proc, "voc named twice")


@pytest.mark.parametrize("kind", ["tags.db", "empty-folder", "missing"])
def test_checkpoint_that_is_not_a_run(voc_root, tmp_path, kind):
    import sqlite3

    path = tmp_path / kind
    if kind == "tags.db":
        sqlite3.connect(path).execute("CREATE TABLE meta (key TEXT)").connection.close()
    elif kind == "empty-folder":
        path.mkdir()
    proc = eval_cli("voc", "--data-root", voc_root, "--checkpoint", path, *FAST)
    expected = "does not exist" if kind == "missing" else "not a tagalign-train run"
    assert_user_error(proc, str(path), expected, "tagalign-train")


def test_device_that_is_not_there(voc_root, model):
    import torch

    assert_user_error(
        eval_cli("voc", "--data-root", voc_root, *model, "--device", "gpu"),
        "--device 'gpu' is not a device",
        "use cpu, cuda",
    )
    if torch.cuda.is_available():
        bad, expected = f"cuda:{torch.cuda.device_count()}", "pick one of them"
    else:
        bad, expected = "cuda", "no CUDA GPU is visible here; use --device cpu"
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--device", bad)
    assert_user_error(proc, f"--device {bad}", expected)


def test_template_that_is_not_a_format_string(voc_root, model):
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--template", "a {kind} of {}")
    assert_user_error(proc, "--template 'a {kind} of {}'", "{{")


# --- damaged files in a data root (issue case 10) ----------------------------------------------


@pytest.mark.slow  # runs the model over the data
@pytest.mark.parametrize("workers", ["0", "2"])
def test_undecodable_image_is_named(model, tmp_path, workers):
    write_benchmark(VOC, tmp_path / "data", n=2)
    image = _voc_pairs(tmp_path / "data")[1][0]
    image.write_text("this is not a JPEG\n")
    results = tmp_path / "results.json"
    results.write_text('{"earlier": "run"}')
    run = eval_process if workers != "0" else eval_cli  # worker processes: a real process
    proc = run(
        "voc", "--data-root", tmp_path / "data", *model, "--workers", workers, "--out", results
    )
    assert_user_error(proc, str(image), "not a readable image", "re-extract it")
    assert json.loads(results.read_text()) == {"earlier": "run"}  # nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "results.json"]
    assert not _processes_naming(tmp_path)  # no image-decoding worker left running


@pytest.mark.slow  # runs the model over the data
def test_truncated_mask_is_named(model, tmp_path):
    write_benchmark(VOC, tmp_path, n=2)
    mask = _voc_pairs(tmp_path)[0][1]
    data = mask.read_bytes()
    mask.write_bytes(data[: len(data) // 2])
    proc = eval_cli("voc", "--data-root", tmp_path, *model)
    assert_user_error(proc, str(mask), "not a readable mask", "truncated", "re-extract it")


@pytest.mark.slow  # runs the model over the data
def test_truncated_mask_of_a_prepared_benchmark_says_prepare_again(model, tmp_path):
    spec = get_benchmark("coco-object")
    write_benchmark(spec, tmp_path, n=1)
    mask = next((tmp_path / spec.root / spec.ann_dir).glob(f"*{spec.ann_suffix}"))
    mask.write_bytes(mask.read_bytes()[:40])
    proc = eval_cli("coco-object", "--data-root", tmp_path, *model)
    assert_user_error(proc, str(mask), "re-run `tagalign-eval prepare coco-object")


@pytest.mark.slow  # runs the model over the data
def test_mask_and_image_of_different_sizes(model, tmp_path):
    write_benchmark(VOC, tmp_path, n=2, size=(40, 30))
    write_mask(_voc_pairs(tmp_path)[1][1], np.zeros((20, 30), np.int64), VOC)
    proc = eval_cli("voc", "--data-root", tmp_path, *model)
    assert_user_error(proc, str(_voc_pairs(tmp_path)[1][1]), "mask is 30x20", "image is 40x30")


@pytest.mark.slow  # runs the model over the data
def test_rgb_mask_where_class_indices_are_expected(model, tmp_path):
    write_benchmark(VOC, tmp_path, n=1)
    mask = _voc_pairs(tmp_path)[0][1]
    write_image(mask, np.zeros((30, 40, 3), np.uint8))
    assert_user_error(eval_cli("voc", "--data-root", tmp_path, *model), str(mask), "mode RGB")


# --- custom benchmark (issue case 11) ----------------------------------------------------------


def test_custom_folders_that_do_not_exist(model, tmp_path):
    (tmp_path / "classes.txt").write_text("sky\ngrass\n")
    proc = eval_cli(
        "custom",
        "--images",
        tmp_path / "nope",
        "--masks",
        tmp_path,
        "--class-file",
        tmp_path / "classes.txt",
        *model,
    )
    line = assert_user_error(proc, "--images", str(tmp_path / "nope"), "does not exist")
    assert ".//" not in line
    proc = eval_cli(
        "custom",
        "--images",
        tmp_path,
        "--masks",
        tmp_path,
        "--class-file",
        tmp_path / "none.txt",
        *model,
    )
    assert_user_error(proc, "--class-file", "none.txt")


def test_custom_layout_errors_print_plain_paths(tiny_weights, tmp_path):
    """Through the Python API a custom spec's folders are absolute: no `.//` prefix."""
    from tagalign_eval import EvalError, ModelSpec, SuiteRequest, run_suite
    from tagalign_eval.datasets import BenchmarkSpec

    (tmp_path / "classes.txt").write_text("sky\ngrass\n")
    spec = BenchmarkSpec(
        name="custom",
        root=".",
        img_dir=str(tmp_path / "images"),
        ann_dir=str(tmp_path / "masks"),
        classes=str(tmp_path / "classes.txt"),
    )
    request = SuiteRequest([spec], tmp_path, ModelSpec(baseline="surgery"))
    with pytest.raises(EvalError) as err:
        run_suite(request)
    assert ".//" not in str(err.value) and f"{tmp_path / 'images'}" in str(err.value)


# --- outputs: --out, --markdown, --save-*, predict --out ---------------------------------------


def test_out_that_is_a_folder_or_below_a_file(voc_root, model, tmp_path):
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--out", tmp_path)
    assert_user_error(proc, f"--out {tmp_path} is a folder")
    (tmp_path / "afile").write_text("x")
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--markdown", tmp_path / "afile/t.md")
    assert_user_error(proc, "--markdown", "afile is a file, not a folder")
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--save-vis", tmp_path / "afile")
    assert_user_error(proc, "--save-vis", "is a file; pass a folder")
    same = tmp_path / "r.json"
    proc = eval_cli("voc", "--data-root", voc_root, *model, "--out", same, "--markdown", same)
    assert_user_error(proc, "--out and --markdown are the same file")


def test_predict_checks_its_inputs_and_out_before_the_model_loads(model, tmp_path):
    photo = tmp_path / "photo.jpg"
    write_image(photo, np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "out.png").write_bytes(b"")
    predict = ["predict", "--classes", "cat,sofa", *model[:6]]
    proc = eval_cli(*predict, photo, "--out", tmp_path / "out.png")
    assert_user_error(proc, f"--out {tmp_path / 'out.png'} is a file", "pass a folder")
    proc = eval_cli(*predict, photo, tmp_path / "notes.txt", "--out", tmp_path / "o")
    assert_user_error(proc, str(tmp_path / "notes.txt"), "not a readable image")
    (tmp_path / "b").mkdir()
    write_image(tmp_path / "b/photo.jpg", np.zeros((20, 30, 3), np.uint8))
    proc = eval_cli(*predict, photo, tmp_path / "b/photo.jpg", "--out", tmp_path / "o")
    assert_user_error(proc, "have the same name", "photo_*.png")
    assert not (tmp_path / "o").exists()


# --- real read-only and disk-full faults (a mount namespace) ----------------------------------


def _namespaces_work() -> bool:
    try:
        probe = ["unshare", "-rm", "true"]
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="needs `unshare -rm` (user + mount namespaces)"
)


def run_with_mount(mount: str, *args, after: str = "true") -> subprocess.CompletedProcess:
    """`tagalign-eval args` in a private mount namespace: the shell command `mount` first, then
    the CLI, then `after` (which sees the namespace's mounts); the CLI's exit code is returned."""
    argv = shlex.join([cli_path("tagalign-eval"), *(str(a) for a in args)])
    script = f"{mount} && {{ {argv}; rc=$?; {after}; exit $rc; }}"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def read_only(folder: Path) -> str:
    return f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"


@needs_namespaces
@pytest.mark.parametrize("flag", ["--out", "--markdown", "--save-pred"])
def test_outputs_in_a_read_only_folder_are_refused_up_front(voc_root, model, tmp_path, flag):
    target = tmp_path / "ro" / ("pred" if flag == "--save-pred" else "result")
    target.parent.mkdir()
    proc = run_with_mount(
        read_only(tmp_path / "ro"), "voc", "--data-root", voc_root, *model, flag, target
    )
    assert_user_error(proc, f"{flag} {target}", "not writable", "choose a path")
    assert "protocol" not in proc.stdout  # refused before the evaluation ran


@needs_namespaces
def test_predict_out_in_a_read_only_folder(model, tmp_path):
    photo = tmp_path / "photo.jpg"
    write_image(photo, np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "ro").mkdir()
    proc = run_with_mount(
        read_only(tmp_path / "ro"),
        "predict",
        photo,
        "--classes",
        "cat",
        *model[:6],
        "--out",
        tmp_path / "ro/overlays",
    )
    assert_user_error(proc, "--out", "not writable")


@pytest.mark.slow  # runs the model over the data
@needs_namespaces
def test_disk_full_writing_results_keeps_the_earlier_file(voc_root, model, tmp_path):
    """The disk fills up during the run: the write fails as one line, the old results stay."""
    disk = tmp_path / "disk"
    disk.mkdir()
    earlier = '{"earlier": "run"}'
    mount = (
        f"mount -t tmpfs -o size=64k tmpfs {disk} && printf '%s' '{earlier}' > {disk}/r.json"
        f" && {{ dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null || true; }}"
    )
    after = f"cp {disk}/r.json {tmp_path}/seen.json; ls -A {disk} > {tmp_path}/left.txt"
    proc = run_with_mount(
        mount, "voc", "--data-root", voc_root, *model, "--out", disk / "r.json", after=after
    )
    assert_user_error(proc, str(disk / "r.json"), "No space left on device", "free space")
    assert "voc: mIoU" in proc.stdout  # the evaluation itself ran
    assert (tmp_path / "seen.json").read_text() == earlier  # nothing lost
    assert (tmp_path / "left.txt").read_text().split() == ["filler", "r.json"]  # no temporary


# --- prepare ------------------------------------------------------------------------------------


def _raw_coco(root: Path) -> Path:
    ann = root / "coco_stuff164k/annotations/val2017"
    ann.mkdir(parents=True)
    Image.fromarray(np.array([[0, 89, 91, 255]], np.uint8), "L").save(ann / "000001.png")
    return ann


def test_prepare_truncated_raw_label_is_named(tmp_path):
    ann = _raw_coco(tmp_path)
    Image.fromarray(np.zeros((40, 60), np.uint8), "L").save(ann / "000002.png")
    data = (ann / "000002.png").read_bytes()
    (ann / "000002.png").write_bytes(data[: len(data) // 2])
    proc = eval_cli("prepare", "coco-stuff", "--data-root", tmp_path)
    assert_user_error(proc, str(ann / "000002.png"), "not a readable label PNG", "re-extract")


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe not json", b'{"images": [{"phase": "val"}], "annos_segmentation": []}'],
    ids=["not-utf8", "image-without-size"],
)
def test_prepare_context_with_a_damaged_json(tmp_path, payload):
    devkit = tmp_path / "VOCdevkit/VOC2010"
    devkit.mkdir(parents=True)
    (devkit / "trainval_merged.json").write_bytes(payload)
    proc = eval_cli("prepare", "context", "--data-root", tmp_path)
    assert_user_error(proc, "trainval_merged.json: not a Detail trainval_merged.json")


@needs_namespaces
def test_prepare_in_a_read_only_data_root(tmp_path):
    ann = _raw_coco(tmp_path)
    proc = run_with_mount(read_only(tmp_path), "prepare", "coco-object", "--data-root", tmp_path)
    assert_user_error(proc, str(ann / "000001_instanceTrainIds.png"), "cannot write it")
    assert sorted(p.name for p in ann.iterdir()) == ["000001.png"]  # no temporary left
